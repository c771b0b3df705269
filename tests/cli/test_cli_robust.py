"""``cfcam explain`` when things go wrong (issue 11): odd names, signals, concurrent runs, limits.

Each test drives the real command, in a subprocess where a signal or a second process is involved. Where a
test needs the run to be at a given point, the child patches one function to say so (or to send the
signal itself), so nothing depends on timing.
"""

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfcam import cli
from cfcam.cli.escape import csv_cell, printable
from cfcam.cli.lock import LOCK_NAME, FolderLock

ROOT = Path(__file__).resolve().parents[2]
TESTIMGS = ROOT / "testimgs"
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and file names")


def read_summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def copies(folder: Path, names) -> list[Path]:
    """The test images copied under ``names`` (str or bytes, cycling through testimgs/)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(TESTIMGS.glob("*.png"))
    paths = []
    for i, name in enumerate(names):
        target = os.path.join(os.fsencode(folder), os.fsencode(name))
        shutil.copyfile(sources[i % len(sources)], target)
        paths.append(Path(os.fsdecode(target)))
    return paths


def run_child(code: str, *args, **kwargs) -> subprocess.Popen:
    """``python -c code args...`` with the repository importable, stdout/stderr piped as text."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", cwd=ROOT, **kwargs)


# a child that runs `cfcam explain argv...` after patching load_image to call hook(n) before the n-th image
# (images are read ahead of the model in worker threads, cfcam.cli.batches, so hook(n) runs while earlier
# images may still be in the model: which of them are done by then is not fixed)
CHILD = """
import os, signal, sys, time
import cfcam.cli.batches as ex
real, calls = ex.load_image, []
def hook(n):
{hook}
def load_image(path, **kw):
    calls.append(path)
    hook(len(calls))
    return real(path, **kw)
ex.load_image = load_image
from cfcam.cli import main
sys.exit(main(sys.argv[1:]))
"""


def child_with_hook(hook: str, *args) -> subprocess.Popen:
    return run_child(CHILD.format(hook=textwrap.indent(textwrap.dedent(hook), "    ")), "explain", *args)


# -- 1. names that are not UTF-8 ------------------------------------------------------------------------------

@pytest.mark.slow
@POSIX
def test_non_utf8_name_is_explained_and_the_summary_replaces_an_old_one(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("macOS file systems refuse names that are not UTF-8")
    copies(tmp_path / "in", [b"bad\xff\xfe.png", b"plain.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("file,error\nsomeone_elses.png,\n")  # an older run's summary
    proc = subprocess.run([sys.executable, "-m", "cfcam", "explain", tmp_path / "in", "-o", out, "--method",
                           "gradcam"], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = read_summary(out)
    assert [Path(r["file"]).name for r in rows] == ["bad\\xff\\xfe.png", "plain.png"]
    assert rows[0]["error"] == "" and rows[0]["overlay"] == "bad\\xff\\xfe_gradcam.png"
    assert os.path.exists(os.path.join(os.fsencode(out), b"bad\xff\xfe_gradcam.png"))  # the real name on disk
    assert b"Traceback" not in proc.stderr
    proc.stdout.decode("utf-8")  # plain UTF-8 on stdout: the odd bytes are shown escaped


# -- 4. signals ------------------------------------------------------------------------------------------------

@pytest.mark.slow
@POSIX
def test_sigterm_mid_run_writes_the_summary_and_exits_143(tmp_path):
    copies(tmp_path / "in", [f"img{i}.png" for i in range(5)])
    out = tmp_path / "out"
    child = child_with_hook("""
        if n == 3:
            os.kill(os.getpid(), signal.SIGTERM)
    """, tmp_path / "in", "-o", out, "--method", "gradcam", "--batch-size", "1")
    try:
        stdout, stderr = child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode == 143, stderr
    rows = {Path(r["file"]).name: r for r in read_summary(out)}
    stopped = "not explained: the run was stopped by SIGTERM"
    for i in (2, 3, 4):  # img2 was being read when the signal came
        assert rows[f"img{i}.png"]["error"] == stopped
    done = [f"img{i}" for i in (0, 1) if rows[f"img{i}.png"]["error"] == ""]
    assert all(rows[f"img{i}.png"]["error"] in ("", stopped) for i in (0, 1))
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    assert f"{len(done)} of 5 image(s) explained" in stdout and f"not reached: {5 - len(done)}" in stdout
    assert sorted(p.name for p in out.iterdir()) == [f"{d}_gradcam.png" for d in done] + ["summary.csv"]


@pytest.mark.slow
@POSIX
@pytest.mark.parametrize("batch", [1, 3])
def test_sigterm_while_a_written_overlay_is_being_recorded_keeps_its_row(tmp_path, batch):
    copies(tmp_path / "in", [f"img{i}.png" for i in range(5)])
    out = tmp_path / "out"
    code = """
        import os, signal, sys
        import cfcam.cli.batches as ex
        real, calls = ex.make_row, []
        def make_row(*args):
            calls.append(1)
            if len(calls) == 2:  # img1's overlay is on disk, its row is being made
                os.kill(os.getpid(), signal.SIGTERM)
            return real(*args)
        ex.make_row = make_row
        from cfcam.cli import main
        sys.exit(main(sys.argv[1:]))
    """
    child = run_child(code, "explain", tmp_path / "in", "-o", out, "--method", "gradcam", "--batch-size", batch,
                      "--quiet")
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 143, stderr
    done = {r["overlay"] for r in read_summary(out) if r["error"] == ""}
    assert "img1_gradcam.png" in done
    assert {p.name for p in out.iterdir()} == done | {"summary.csv"}  # a row for every overlay on disk


@pytest.mark.slow
@POSIX
def test_double_ctrl_c_still_writes_the_summary_and_exits_130(tmp_path):
    copies(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    code = """
        import os, signal, sys
        import cfcam.cli.batches as ex, cfcam.cli.runlog as rl
        real_load, real_write = ex.load_image, rl.write_text_atomic
        def load_image(path, **kw):
            if path.name == "b.png":
                os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C
            return real_load(path, **kw)
        def write_text_atomic(text, path):
            if "stopped by" in text:
                os.kill(os.getpid(), signal.SIGINT)  # the second, while the summary is being written
            return real_write(text, path)
        ex.load_image, rl.write_text_atomic = load_image, write_text_atomic
        from cfcam.cli import main
        sys.exit(main(sys.argv[1:]))
    """
    child = run_child(code, "explain", tmp_path / "in", "-o", out, "--method", "gradcam", "--batch-size", "1")
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    errors = [r["error"] for r in read_summary(out)]
    stopped = "not explained: the run was stopped by SIGINT"
    assert errors[0] in ("", stopped) and errors[1:] == [stopped] * 2  # a.png may still be in the model
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file, no lock left


@pytest.mark.slow
@POSIX
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path):
    code = """
        import os, signal, sys
        import cfcam.world.models as ex
        def load_model(*a, **k):
            os.kill(os.getpid(), signal.SIGINT)
        ex.load_model = load_model
        from cfcam.cli import main
        sys.exit(main(sys.argv[1:]))
    """
    child = run_child(code, "explain", TESTIMGS, "-o", tmp_path / "out")
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 130
    assert stderr.strip() == "cfcam: stopped by SIGINT" and stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_summary_is_kept_up_to_date_during_the_run(tmp_path):
    copies(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    child = child_with_hook("""
        if n == 3:
            import csv
            rows = list(csv.DictReader(open(sys.argv[4] + "/summary.csv", encoding="utf-8")))
            print([r["error"] for r in rows], flush=True)
    """, tmp_path / "in", "-o", out, "--method", "gradcam", "--batch-size", "1", "--quiet")
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr
    seen = eval(stdout.strip())  # what summary.csv said while the third image was being read
    ahead = "not explained: the run ended before this image"
    assert seen[2] == ahead and all(e in ("", ahead) for e in seen)  # earlier ones done or still in the model
    assert [r["error"] for r in read_summary(out)] == ["", "", ""]


# -- 5. concurrent runs --------------------------------------------------------------------------------------

def test_a_second_run_into_a_busy_folder_is_refused_and_loses_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("the first run's summary\n")
    with FolderLock(out):
        code = cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(out), "--method", "gradcam"])
        err = capsys.readouterr().err
    assert code == 2
    assert "in use by another cfcam explain run" in err and f"process {os.getpid()}" in err
    assert (out / "summary.csv").read_text() == "the first run's summary\n"
    assert sorted(os.listdir(out)) == ["summary.csv"]  # the lock file went with the lock
    assert cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(out), "--method", "gradcam",
                     "--quiet"]) == 0  # free again


@POSIX
def test_a_killed_run_never_leaves_the_folder_locked(tmp_path):
    child = run_child("""
        import sys, time
        from cfcam.cli.lock import FolderLock
        FolderLock(sys.argv[1]).acquire()
        print("locked", flush=True)
        time.sleep(600)
    """, tmp_path)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match="in use"):
            FolderLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait(timeout=60)
    assert (tmp_path / LOCK_NAME).exists()  # SIGKILL: the file stays, the lock does not
    with FolderLock(tmp_path):
        pass
    assert not (tmp_path / LOCK_NAME).exists()


# -- 6. long stems -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [232, 245, 251])
def test_long_stems_give_distinct_outputs_that_fit(tmp_path, capsys, length):
    names = ["a" * length + ".png", "a" * (length - 1) + "b.png", "é" * (length // 2) + ".png"]
    copies(tmp_path / "in", names)
    out = tmp_path / "out"
    code = cli.main(["explain", str(tmp_path / "in"), "-o", str(out), "--method", "gradcam", "--save-raw",
                     "--quiet"])
    assert code == 0, capsys.readouterr().err
    rows = read_summary(out)
    overlays = [r["overlay"] for r in rows]
    assert len(set(overlays)) == 3 and all(r["error"] == "" for r in rows)
    for name in overlays:
        assert (out / name).is_file() and (out / name.replace(".png", ".npy")).is_file()
        assert len(os.fsencode(name.replace(".png", ".npy"))) <= 255


# -- 7. escaping for the terminal and for spreadsheets -------------------------------------------------------

def test_printable_and_csv_cell():
    assert printable("a\x1b[2Jb\nc\td\u202ee") == "a\\x1b[2Jb\\nc\\td\\u202ee"
    assert printable(os.fsdecode(b"x\xff")) == "x\\xff" and printable("naïve") == "naïve"
    for text in ("=1+1", "+1", "-1", "@SUM(A1)"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("a=b") == "a=b" and csv_cell(0.5) == "0.5"


@pytest.mark.slow
@POSIX
def test_hostile_names_reach_neither_the_terminal_nor_the_spreadsheet_raw(tmp_path):
    names = ["\x1b[31mred\x1b[0m.png", "=HYPERLINK(\"x\").png", "two\nlines.png"]
    paths = copies(tmp_path / "in", names)
    (tmp_path / "in" / "=bad\nname.png").write_bytes(b"not an image")
    proc = subprocess.run([sys.executable, "-m", "cfcam", "explain", *[p.name for p in paths], "=bad\nname.png",
                           "-o", tmp_path / "out", "--method", "gradcam"], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path / "in")  # relative names: a cell starts with the name
    assert proc.returncode == 1  # the non-image fails, the others are explained
    for stream in (proc.stdout, proc.stderr):
        assert "\x1b" not in stream
    bad_lines = [ln for ln in proc.stderr.splitlines() if "bad" in ln]
    assert len(bad_lines) == 1 and "=bad\\nname.png" in bad_lines[0] and "not a recognised image" in bad_lines[0]
    raw = (tmp_path / "out" / "summary.csv").read_text(encoding="utf-8")
    assert "\x1b" not in raw and raw.count("\n") == 5  # header + 4 rows: no name split a line
    files = [r["file"] for r in read_summary(tmp_path / "out")]
    # a name that starts like a formula gets "./" in front: inert in a spreadsheet, still the same file
    assert files == ["\\x1b[31mred\\x1b[0m.png", "./=HYPERLINK(\"x\").png", "two\\nlines.png",
                     "./=bad\\nname.png"]


# -- 8. odd folder entries and decoder warnings on the command line ------------------------------------------

@POSIX
def test_fifos_loops_broken_links_and_exif_warnings_each_get_one_line(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "in"
    copies(folder, ["good.png"])
    os.mkfifo(folder / "pipe.png")
    os.symlink(folder / "gone.png", folder / "dangling.png")
    os.symlink(folder / "loop.jpg", folder / "loop.jpg")
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.open(folder / "good.png").convert("RGB").save(folder / "exif.jpg", exif=exif.tobytes()[:-2])
    code = cli.main(["explain", str(folder), "-o", str(tmp_path / "out"), "--method", "gradcam"])
    err = capsys.readouterr().err
    assert code == 1
    for name, reason in [("pipe.png", "FIFO"), ("dangling.png", "broken symbolic link"), ("loop.jpg", "loop")]:
        lines = [ln for ln in err.splitlines() if name in ln]
        assert len(lines) == 1 and reason in lines[0], err
    warned = [ln for ln in err.splitlines() if "exif.jpg" in ln]
    assert len(warned) == 1 and "warning" in warned[0] and "Corrupt EXIF" in warned[0]
    rows = {Path(r["file"]).name: r for r in read_summary(tmp_path / "out")}
    assert rows["exif.jpg"]["error"] == "" and "Corrupt EXIF" in rows["exif.jpg"]["notes"]
    assert rows["good.png"]["error"] == ""


# -- 9. limits checked before the work -----------------------------------------------------------------------

def test_batch_size_is_capped(tmp_path, capsys):
    code = cli.main(["explain", str(TESTIMGS), "-o", str(tmp_path / "out"), "--batch-size", "300"])
    err = capsys.readouterr().err
    assert code == 2 and "--batch-size" in err and "from 1 to 64" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a folder nobody may write to (/proc/self)")
def test_unwritable_output_folder_is_refused_before_any_work(capsys):
    code = cli.main(["explain", str(TESTIMGS), "-o", "/proc/self"])
    out, err = capsys.readouterr()
    assert code == 2 and "-o/--output: cannot write in /proc/self" in err
    assert "explained" not in out


def test_a_summary_that_cannot_be_written_stops_the_run_before_the_work(tmp_path, capsys, monkeypatch):
    import errno

    from cfcam.cli import runlog

    def full(self, pending=runlog.NOT_REACHED):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runlog.RunLog, "save", full)
    code = cli.main(["explain", str(TESTIMGS), "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and "cannot write" in err and "summary.csv" in err and "No space left" in err
    assert sorted(os.listdir(tmp_path / "out")) == []  # no overlay, no lock, no temporary file


@POSIX
def test_a_signal_inside_deferred_stop_stops_the_run_at_the_end_of_the_block():
    """A stop half-way through a thread pool's submit could leave a worker the pool no longer waits for; inside
    deferred_stop the signal is held until the block ends (nested blocks: the outermost end)."""
    from cfcam.cli.signals import SignalGuard, Stopped, deferred_stop

    steps = []
    with SignalGuard():
        with pytest.raises(Stopped) as caught:
            with deferred_stop():
                with deferred_stop():
                    os.kill(os.getpid(), signal.SIGTERM)
                    steps.append("inner block finished")
                steps.append("outer block finished")
            steps.append("not reached")
    assert steps == ["inner block finished", "outer block finished"]
    assert caught.value.signum == signal.SIGTERM
    guard = SignalGuard()
    with guard:  # a disarmed guard (the summary is being written) only records the signal
        with deferred_stop():
            guard.disarm()
            os.kill(os.getpid(), signal.SIGTERM)
        steps.append("no stop once disarmed")
    assert guard.signum == signal.SIGTERM and steps[-1] == "no stop once disarmed"
