"""``cfcam evaluate`` gets ``cfcam explain``'s guarantees (issue 22, item 4): one run per output folder, signals
stop it cleanly with 128 + N, ``run.json`` says honestly what the folder holds (written first as "running",
an earlier run's files removed), unusable folders and absurd options refused before any work, manifest paths
kept inside ``--data``."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfcam import cli
from cfcam.cli.lock import FolderLock
from cfcam.cli.runstate import REPORT_FILES

pytestmark = pytest.mark.slow  # whole `cfcam evaluate` runs: `make test` runs them, `make test-fast` does not

ROOT = Path(__file__).resolve().parents[2]
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
SMALL = ["--n", "2", "--subset", "1", "--methods", "centre", "--no-plots", "--quiet"]


def run_json(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def test_a_finished_run_says_finished_and_replaces_an_earlier_runs_files(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.csv", "metrics.png", "table.md"):
        (out / name).write_text("an earlier run's\n")
    assert cli.main(["evaluate", "-o", str(out), *SMALL]) == 0
    info = run_json(out)
    assert info["status"] == "finished" and info["n"] == 2
    assert not (out / "metrics.png").exists()  # --no-plots: the earlier run's plot is not passed off as this one's
    assert "an earlier run's" not in (out / "summary.csv").read_text()
    assert "removed an earlier run's summary.csv, table.md, metrics.png" in capsys.readouterr().err
    assert set(os.listdir(out)) <= set(REPORT_FILES)  # no lock, no temporary file left


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("the first run's\n")
    with FolderLock(out, "evaluate"):
        code = cli.main(["evaluate", "-o", str(out), *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "in use by another cfcam evaluate run" in err and f"process {os.getpid()}" in err
    assert (out / "summary.csv").read_text() == "the first run's\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a folder nobody may write to (/proc/self)")
def test_an_unwritable_folder_is_refused_before_the_work(capsys):
    code = cli.main(["evaluate", "-o", "/proc/self", *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "-o/--output: cannot write in /proc/self" in err


def test_a_full_disk_is_found_before_the_work(tmp_path, capsys, monkeypatch):
    import errno

    from cfcam.cli import runstate
    from cfcam.evaluation import engine

    def full(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def never(*a, **k):
        raise AssertionError("the work started")

    monkeypatch.setattr(runstate.RunState, "start", full)
    monkeypatch.setattr(engine.Evaluation, "run", never)
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), *SMALL])
    assert code == 2 and "No space left" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, bound", [
    ("--n", "1000000000000", "from 1 to 5000"), ("--subset", "99999999", "from 1 to 5000"),
    ("--slow-n", "99999999", "from 1 to 5000"), ("--randomisation-seeds", "100000", "from 1 to 100"),
    ("--steps", "10000000", "from 2 to 1001"), ("--batch-size", "100000", "from 1 to 256"),
    ("--seed", "99999999999999999999", "from 0 to 4294967295"), ("--workers", "0", "from 1 to 64"),
    ("--workers", "many", "from 1 to 64"),
])
def test_absurd_values_are_refused_at_once_naming_the_flag_and_the_bound(tmp_path, capsys, option, value, bound):
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), option, value])
    err = capsys.readouterr().err
    assert code == 2 and f"argument {option}: expected an integer {bound}" in err
    assert not (tmp_path / "out").exists()


@POSIX
@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_signal_stops_the_run_and_run_json_says_where(tmp_path, sig, code):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("an earlier run's\n")
    script = f"""
        import os, signal, sys
        import cfcam.evaluation.faithfulness as fa
        real = fa.deletion_insertion_curves
        def curves(*a, **k):
            os.kill(os.getpid(), signal.{sig})
            return real(*a, **k)
        fa.deletion_insertion_curves = curves
        from cfcam.cli import main
        sys.exit(main(sys.argv[1:]))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), "evaluate", "-o", str(out), *SMALL],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and f"stopped by {sig}" in proc.stderr
    info = run_json(out)
    assert info["status"] == "interrupted" and info["stopped_by"] == sig
    assert info["stage"].startswith("centre: deletion") and "work done" in info["stage"]  # the metric running
    assert sorted(os.listdir(out)) == ["run.json"]  # the earlier run's summary is not passed off as this one's


@POSIX
def test_after_ctrl_c_the_program_ends_at_once(tmp_path):
    """The ``cfcam`` program (``cli.console``) ends right after the run has cleaned up and said so, without the
    interpreter's tear-down (which took 10-60 s after a long evaluation): an atexit handler never runs."""
    out = tmp_path / "out"
    script = """
        import atexit, os, signal, sys
        import cfcam.evaluation.faithfulness as fa
        atexit.register(lambda: print("TORN DOWN", file=sys.stderr))
        real = fa.deletion_insertion_curves
        def curves(*a, **k):
            os.kill(os.getpid(), signal.SIGINT)
            return real(*a, **k)
        fa.deletion_insertion_curves = curves
        from cfcam.cli import console
        console(sys.argv[1:])
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), "evaluate", "-o", str(out), *SMALL],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 130, proc.stderr
    assert "stopped by SIGINT" in proc.stderr and "TORN DOWN" not in proc.stderr
    assert run_json(out)["status"] == "interrupted" and sorted(os.listdir(out)) == ["run.json"]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and f"\nPPid:\t{pid}\n" in status:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_ctrl_c_in_a_terminal_stops_the_worker_processes_too(tmp_path):
    """Ctrl-C reaches every process of the terminal's group: the workers leave it to the parent, which ends
    them, writes run.json and exits 130; no worker is left running."""
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cfcam", "evaluate", "-o", str(out), "--n", "12", "--subset", "4",
                             "--methods", "gradcam,cfcam-reference,layercam", "--workers", "2", "--no-plots",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = [c for c in _children(proc.pid) if "spawn_main" in _read(f"/proc/{c}/cmdline")]
            time.sleep(0.2)
        assert len(workers) == 2, "the two workers did not start"
        time.sleep(3)  # inside their first method
        os.killpg(proc.pid, signal.SIGINT)
        stopped = time.monotonic()
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err and "Traceback" not in err
    assert took < 60, took  # about 1 s on a quiet machine; generous for a busy one
    assert run_json(out)["status"] == "interrupted" and sorted(os.listdir(out)) == ["run.json"]
    time.sleep(0.5)
    alive = [w for w in workers if _read(f"/proc/{w}/status") and "State:\tZ" not in _read(f"/proc/{w}/status")]
    assert not alive, f"workers still running: {alive}"


def test_a_finished_program_exits_normally(tmp_path):
    out = tmp_path / "out"
    script = """
        import atexit, sys
        atexit.register(lambda: print("TORN DOWN", file=sys.stderr))
        from cfcam.cli import console
        console(sys.argv[1:])
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), "evaluate", "-o", str(out), *SMALL],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0 and "TORN DOWN" in proc.stderr


def _data(folder: Path) -> Path:
    (folder / "scans").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "scans" / "a.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder.parent / "outside.png")
    return folder


def test_manifest_paths_must_stay_inside_the_data_folder(tmp_path, capsys):
    data = _data(tmp_path / "data")
    outside = tmp_path / "outside.png"
    (data / "manifest.csv").write_text(f"image\nscans/a.png\n../outside.png\n{outside}\nscans/../../outside.png\n",
                                       encoding="utf-8")
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), "--data", str(data), "--methods", "centre",
                     "--subset", "1", "--no-plots", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    for line, cell in ((3, "../outside.png"), (4, str(outside)), (5, "scans/../../outside.png")):
        said = [ln for ln in err.splitlines() if f"manifest line {line} " in ln]
        assert len(said) == 1 and cell in said[0], err
        assert "absolute path" in said[0] or "leads outside" in said[0]
    info = run_json(tmp_path / "out")
    assert [s["line"] for s in info["skipped"]] == [3, 4, 5] and len(info["images"]) == 1


def test_a_manifest_over_the_row_limit_is_refused_before_reading_images(tmp_path, capsys, monkeypatch):
    from cfcam.cli import evaluate

    data = _data(tmp_path / "data")
    monkeypatch.setattr(evaluate, "MAX_N", 3)
    (data / "manifest.csv").write_text("image\n" + "scans/a.png\n" * 4, encoding="utf-8")
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), "--data", str(data), "--methods", "centre"])
    err = capsys.readouterr().err
    assert code == 2 and "more than 3 rows" in err and "--n" in err
