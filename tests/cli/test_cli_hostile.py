"""``cfcam explain`` and ``cfcam evaluate`` under hostile and careless use (issue 22): links planted under the
names the tool writes, a folder that is both input and output, evaluate's run guarantees, signals during
start-up, names in the summary as they are on disk, and the smaller items.

Where a signal is involved the test drives the real command in a subprocess that sends the signal itself at a
fixed point (a patched function), so nothing depends on timing; waits are bounded generously."""

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfcam import cli
from cfcam.cli.lock import LOCK_NAME, FolderLock, LockNotAFile
from cfcam.cli.outputs import remove_stale_temps, split_earlier_outputs, unrecorded_overlays
from cfcam.cli.reasons import plain_reason

ROOT = Path(__file__).resolve().parents[2]
TESTIMGS = ROOT / "testimgs"
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX links and signals")
GRAD = ["--method", "gradcam", "--quiet"]


def images(folder: Path, names) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(TESTIMGS.glob("*.png"))
    out = []
    for i, name in enumerate(names):
        shutil.copyfile(sources[i % len(sources)], folder / name)
        out.append(folder / name)
    return out


def summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def child(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                          text=True, errors="replace", cwd=ROOT, timeout=600)


# -- 1. nothing outside -o is written ------------------------------------------------------------------------

@POSIX
def test_a_link_planted_as_the_lock_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / LOCK_NAME)
    code = cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(out), *GRAD])
    err = capsys.readouterr().err
    assert code == 2 and "is a symbolic link, not cfcam's lock file" in err
    assert victim.read_text() == "precious\n"
    assert sorted(os.listdir(out)) == [LOCK_NAME] and os.path.islink(out / LOCK_NAME)  # left for the user


@POSIX
def test_a_lock_name_taken_by_a_folder_or_fifo_is_refused(tmp_path):
    (tmp_path / LOCK_NAME).mkdir()
    with pytest.raises(LockNotAFile, match="a folder"):
        FolderLock(tmp_path).acquire()
    os.rmdir(tmp_path / LOCK_NAME)
    os.mkfifo(tmp_path / LOCK_NAME)
    with pytest.raises(LockNotAFile, match="not a regular file"):
        FolderLock(tmp_path).acquire()


@POSIX
def test_links_planted_under_every_output_name_never_lead_outside(tmp_path):
    victims = tmp_path / "victims"
    victims.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.csv", "normal_01_gradcam.png", "normal_01_gradcam.npy"):
        (victims / name).write_text("precious\n")
        os.symlink(victims / name, out / name)
    code = cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(out), "--save-raw", *GRAD])
    assert code == 0
    assert all((victims / n).read_text() == "precious\n" for n in os.listdir(victims))
    for name in ("summary.csv", "normal_01_gradcam.png", "normal_01_gradcam.npy"):
        assert not os.path.islink(out / name) and (out / name).is_file()  # the link was replaced, not followed


def test_a_full_disk_leaves_no_empty_lock_file(tmp_path, monkeypatch):
    def full(fd, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "ftruncate", full)
    with pytest.raises(OSError, match="No space left"):
        FolderLock(tmp_path).acquire()
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# -- 3. a folder that is both input and output ---------------------------------------------------------------

def test_a_folder_explained_into_itself_twice_never_explains_its_overlays(tmp_path, capsys):
    d = tmp_path / "d"
    images(d, [f"x{i}.png" for i in range(5)])
    for _ in range(2):
        assert cli.main(["explain", str(d), "-o", str(d), *GRAD]) == 0
    err = capsys.readouterr().err
    rows = summary(d)
    assert [Path(r["file"]).name for r in rows] == [f"x{i}.png" for i in range(5)]
    assert [r["overlay"] for r in rows] == [f"x{i}_gradcam.png" for i in range(5)]
    assert sorted(os.listdir(d)) == sorted([f"x{i}.png" for i in range(5)] + [f"x{i}_gradcam.png" for i in range(5)]
                                           + ["summary.csv"])
    assert "not taken as inputs: 5 overlay(s) of earlier runs" in err and "x0_gradcam.png" in err


def test_earlier_overlays_are_recognised_by_name_or_by_their_summary(tmp_path):
    d, out = tmp_path / "d", tmp_path / "out"
    paths = images(d, ["a.png", "a_cfcam.png", "b_layercam.png", "renamed.png", "scan_gradcam.png"])
    (d / "summary.csv").write_text("file,overlay,error\nsrc.png,renamed.png,\n", encoding="utf-8")
    kept, skipped = split_earlier_outputs(sorted(paths), [d], out)
    assert [p.name for p in kept] == ["a.png"]
    assert {p.name for p in skipped} == {"a_cfcam.png", "b_layercam.png", "renamed.png", "scan_gradcam.png"}
    kept, _ = split_earlier_outputs([d / "scan_gradcam.png", d / "renamed.png"], [d / "scan_gradcam.png",
                                                                                d / "renamed.png"], out)
    assert [p.name for p in kept] == ["scan_gradcam.png"]  # named explicitly, outside -o: still tried


@POSIX
def test_a_link_to_its_own_folder_is_not_scanned_twice(tmp_path):
    d = tmp_path / "d"
    images(d, ["a.png", "b.png"])
    os.symlink(".", d / "self")
    assert cli.main(["explain", str(d), str(d / "self"), "-o", str(tmp_path / "out"), *GRAD]) == 0
    assert [Path(r["file"]).name for r in summary(tmp_path / "out")] == ["a.png", "b.png"]


# -- 6. the summary names files as they are on disk ----------------------------------------------------------

def test_a_name_that_starts_like_a_formula_stays_the_same_file(tmp_path, monkeypatch):
    d = tmp_path / "d"
    images(d, ["-dash.png", "=sum.png", "+plus.png", "@at.png"])
    monkeypatch.chdir(d)
    out = tmp_path / "out"
    assert cli.main(["explain", "-o", str(out), *GRAD, "--", "-dash.png", "=sum.png", "+plus.png", "@at.png"]) == 0
    rows = summary(out)
    assert [r["overlay"] for r in rows] == ["./-dash_gradcam.png", "./=sum_gradcam.png", "./+plus_gradcam.png",
                                            "./@at_gradcam.png"]
    for r in rows:
        assert (out / r["overlay"]).is_file() and Path(r["file"]).is_file()  # the cells open the files
        assert not r["overlay"].startswith(("=", "+", "-", "@")) and not r["file"].startswith(("=", "+", "-", "@"))


# -- 7. smaller items ----------------------------------------------------------------------------------------

def test_a_folder_named_like_a_stale_temporary_file_is_left_alone(tmp_path):
    (tmp_path / ".cfcam-999999999-ab.tmp").mkdir()
    (tmp_path / ".cfcam-999999999-cd.tmp").write_bytes(b"half")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [".cfcam-999999999-cd.tmp"]
    assert (tmp_path / ".cfcam-999999999-ab.tmp").is_dir()
    assert cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(tmp_path), *GRAD]) == 0


def test_overlays_the_summary_does_not_record_are_reported(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(out), *GRAD]) == 0
    images(out, ["lost_gradcam.png"])  # what a SIGKILLed run wrote after its last summary
    assert unrecorded_overlays(out) == ["lost_gradcam.png"]
    capsys.readouterr()
    assert cli.main(["explain", str(TESTIMGS / "normal_02.png"), "-o", str(out), *GRAD]) == 0
    err = capsys.readouterr().err
    assert "holds 1 overlay(s) that its summary.csv does not record" in err and "lost_gradcam.png" in err


def test_an_oversize_image_is_named_once_and_not_called_corrupt(tmp_path, capsys):
    code = cli.main(["explain", str(TESTIMGS / "normal_01.png"), "-o", str(tmp_path / "out"), "--max-pixels", "10",
                     *GRAD])
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "normal_01.png" in ln][0]
    assert code == 1 and "too many pixels" in line and "corrupt" not in line
    assert line.count("normal_01.png") == 1
    assert plain_reason("corrupt or truncated image data (ImageError: /a b.png: too many pixels (9 > 1))",
                        "/a b.png") == "too many pixels (9 > 1)"
    assert plain_reason("corrupt or truncated image data (OSError: bad)") == \
        "corrupt or truncated image data (OSError: bad)"


def test_non_finite_logits_are_refused_for_their_image(tmp_path, capsys, monkeypatch):
    import dataclasses

    import numpy as np

    import cfcam.cli.batches as batches

    real = batches.run_model

    def infinite_first(good, explainer, target, on_captured=None):
        done = real(good, explainer, target, on_captured)
        probs = done.probs.copy()
        probs[0] = np.nan  # softmax of +inf logits
        return dataclasses.replace(done, probs=probs)

    monkeypatch.setattr(batches, "run_model", infinite_first)
    out = tmp_path / "out"
    code = cli.main(["explain", str(TESTIMGS / "normal_01.png"), str(TESTIMGS / "normal_02.png"), "-o", str(out),
                     "--batch-size", "2", *GRAD])
    rows = summary(out)
    assert code == 1 and "not finite" in rows[0]["error"] and rows[1]["error"] == ""
    assert sorted(os.listdir(out)) == ["normal_02_gradcam.png", "summary.csv"]
    assert "not finite" in capsys.readouterr().err


# -- 5. signals while starting up ----------------------------------------------------------------------------

STARTUP = """
import os, signal, sys
import cfcam.cli as c
real = c.build_parser
def build_parser():
    for name in sys.argv[1].split(","):
        os.kill(os.getpid(), getattr(signal, name))
    return real()
c.build_parser = build_parser
sys.exit(c.main(sys.argv[2:]))
"""


@POSIX
@pytest.mark.parametrize("signals, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129),
                                           ("SIGINT,SIGINT", 130)])
def test_a_signal_during_start_up_is_one_line_and_its_code(tmp_path, signals, code):
    proc = child(STARTUP, signals, "explain", TESTIMGS, "-o", tmp_path / "out")
    assert proc.returncode == code
    assert proc.stderr.strip() == f"cfcam: stopped by {signals.split(',')[0]}" and proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_main_restores_the_signal_handlers_it_installed():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert cli.main(["--version"]) == 0
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.slow
@POSIX
def test_a_signal_stops_the_run_between_images_not_after_the_batch(tmp_path):
    """SIGTERM while the second image of a batch of four is mapped: the third and fourth are never mapped."""
    d = tmp_path / "d"
    images(d, [f"x{i}.png" for i in range(4)])
    proc = child("""
        import os, signal, sys
        from cfcam.methods.base import GradCAM
        real, calls = GradCAM.explain_one, []
        def explain_one(self, a, g):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, a, g)
        GradCAM.explain_one = explain_one
        from cfcam.cli import main
        try:
            code = main(sys.argv[1:])
        finally:
            print("maps", len(calls), flush=True)
        sys.exit(code)
    """, "explain", d, "-o", tmp_path / "out", "--batch-size", "4", *GRAD)
    assert proc.returncode == 143, proc.stderr
    assert proc.stdout.strip() == "maps 2"
    assert [r["error"] for r in summary(tmp_path / "out")] == ["not explained: the run was stopped by SIGTERM"] * 4
