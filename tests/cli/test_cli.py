"""The ``cfcam`` command line, end to end: outputs, summary.csv, bad inputs, options and usage errors."""

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cfcam import cli
from cfcam.world import models

ROOT = Path(__file__).resolve().parents[2]
TESTIMGS = ROOT / "testimgs"


# -- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_args():
    """The default: the committed demo model."""
    assert (models.DATA_DIR / models.DEMO_WEIGHTS).is_file(), "the demo model is missing from cfcam/data"
    return []


@pytest.fixture(scope="module")
def classes(model_args):
    return ["normal", "lesion"]


def make_images(folder: Path, n: int = 3) -> list[Path]:
    """A few images of different sizes and kinds: 8-bit gray, RGB JPEG, 16-bit PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    kinds = [("gray.png", lambda: Image.fromarray(rng.integers(0, 256, (180, 200), dtype=np.uint8))),
             ("photo.jpg", lambda: Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))),
             ("deep16.png", lambda: Image.fromarray(rng.integers(500, 4000, (100, 150), dtype=np.uint16)))]
    paths = []
    for name, make in kinds[:n]:
        make().save(folder / name)
        paths.append(folder / name)
    return paths


def hashes(folder: Path) -> dict:
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_main(args, capsys):
    code = cli.main(list(map(str, args)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- end to end in a subprocess ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def e2e(tmp_path_factory, model_args):
    """``python -m cfcam explain`` on a copy of testimgs/ (plus two odd-sized images) with default options."""
    base = tmp_path_factory.mktemp("e2e")
    inputs = base / "testimgs"
    shutil.copytree(TESTIMGS, inputs)
    make_images(inputs, 2)  # gray.png 200x180, photo.jpg 320x240: sizes other than the model's
    before = hashes(inputs)
    out = base / "out" / "nested"
    proc = subprocess.run([sys.executable, "-m", "cfcam", "explain", str(inputs), "-o", str(out), *model_args],
                          capture_output=True, text=True, timeout=300, cwd=base)
    return proc, inputs, out, before


def test_e2e_writes_an_overlay_per_image_at_its_own_size(e2e):
    proc, inputs, out, _ = e2e
    assert proc.returncode == 0, proc.stderr
    images = sorted(p for p in inputs.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    assert len(images) >= 4
    for image in images:
        overlay = out / f"{image.stem}_cfcam.png"
        assert overlay.is_file(), overlay
        with Image.open(image) as src, Image.open(overlay) as ov:
            assert ov.size == src.size and ov.mode == "RGB"
    assert not (out / "masks").exists() and not list(out.glob("*mask*"))  # not recursive
    assert not list(out.glob(".*"))  # no temporary files left


def test_e2e_summary_csv_and_stdout(e2e, classes):
    proc, inputs, out, _ = e2e
    rows = read_summary(out)
    images = sorted(p for p in inputs.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    assert [Path(r["file"]).name for r in rows] == [p.name for p in images]
    for r in rows:
        assert r["error"] == "" and r["overlay"] == f"{Path(r['file']).stem}_cfcam.png"
        assert r["predicted"] in classes and r["target"] == r["predicted"]  # default target: top class
        assert 0.5 <= float(r["confidence"]) <= 1.0  # two classes: the top one has at least half
        assert int(r["clusters"]) >= 0 and int(r["noise_channels"]) >= 0 and float(r["seconds"]) > 0
    assert f"{len(rows)} of {len(rows)} image(s) explained with cfcam (preset readme)" in proc.stdout
    assert str(out.resolve()) in proc.stdout
    assert len(proc.stdout.splitlines()) <= 20
    assert "layer layer4[-1] (layer4.0)" in proc.stdout  # the notebooks' name, then the module it is
    assert "%|" not in proc.stderr and "img/s" not in proc.stderr  # no progress bar when stderr is piped


def test_e2e_leaves_inputs_unchanged(e2e):
    _, inputs, _, before = e2e
    assert hashes(inputs) == before


def test_bad_inputs_are_named_and_skipped(tmp_path, model_args):
    folder = tmp_path / "mixed"
    good = make_images(folder, 3)
    data = good[0].read_bytes()
    (folder / "corrupt.png").write_bytes(data[: len(data) // 3])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    before = hashes(folder)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cfcam", "explain", str(folder), str(tmp_path / "missing.png"),
                           "-o", str(out), "--quiet", "--method", "gradcam", *model_args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == ""  # --quiet
    bad = {"corrupt.png": "corrupt or truncated", "empty.png": "empty file", "notes.jpg": "not a recognised image",
           "missing.png": "no such file"}
    for name, reason in bad.items():
        lines = [ln for ln in proc.stderr.splitlines() if name in ln]
        assert len(lines) == 1 and reason in lines[0], proc.stderr
    for image in good:
        assert (out / f"{image.stem}_gradcam.png").is_file()
    rows = {Path(r["file"]).name: r for r in read_summary(out)}
    assert set(rows) == set(bad) | {p.name for p in good}
    for name, reason in bad.items():
        assert reason in rows[name]["error"] and rows[name]["overlay"] == ""
    assert not list(out.glob("corrupt*")) and not list(out.glob("empty*"))
    assert hashes(folder) == before


# -- options (in-process, faster) -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    make_images(folder, 3)
    return folder


def test_gradcam_method(small_set, tmp_path, model_args, capsys):
    code, out_text, _ = run_main(["explain", small_set, "-o", tmp_path, "--method", "gradcam", *model_args], capsys)
    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["deep16_gradcam.png", "gray_gradcam.png",
                                                               "photo_gradcam.png"]
    rows = read_summary(tmp_path)
    assert all(r["clusters"] == "" and r["noise_channels"] == "" for r in rows)
    assert "with gradcam," in out_text


def test_save_raw_and_presets_differ(small_set, tmp_path, model_args, capsys):
    maps = {}
    for preset in ("readme", "reference"):
        out = tmp_path / preset
        code, out_text, _ = run_main(["explain", small_set, "-o", out, "--save-raw", "--preset", preset,
                                      *model_args], capsys)
        assert code == 0 and f"preset {preset}" in out_text
        raw = np.load(out / "photo_cfcam.npy")
        assert raw.shape == (224, 224) and raw.dtype == np.float32
        assert np.isfinite(raw).all() and raw.min() >= 0 and raw.max() <= 1
        assert len(list(out.glob("*.npy"))) == 3
        maps[preset] = raw
    assert not np.allclose(maps["readme"], maps["reference"])


@pytest.mark.parametrize("which,by", [(0, "name"), (1, "index"), (1, "name")])
def test_target_by_name_and_index(small_set, tmp_path, model_args, classes, capsys, which, by):
    value = classes[which] if by == "name" else str(which)
    code, _, _ = run_main(["explain", small_set, "-o", tmp_path, "--target", value, "--method", "gradcam",
                           *model_args], capsys)
    assert code == 0
    assert {r["target"] for r in read_summary(tmp_path)} == {classes[which]}


def test_class_names_and_alpha_zero(small_set, tmp_path, model_args, capsys):
    code, _, _ = run_main(["explain", small_set / "photo.jpg", "-o", tmp_path, "--class-names", "cat,dog",
                           "--alpha", "0", *model_args], capsys)
    assert code == 0
    assert read_summary(tmp_path)[0]["predicted"] in ("cat", "dog")
    with Image.open(small_set / "photo.jpg") as src, Image.open(tmp_path / "photo_cfcam.png") as ov:
        np.testing.assert_array_equal(np.asarray(ov), np.asarray(src.convert("RGB")))  # alpha 0: image only


def test_same_stem_is_disambiguated_and_inputs_never_overwritten(tmp_path, model_args, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    make_images(a, 1)
    make_images(b, 1)
    shutil.copy(a / "gray.png", a / "gray_cfcam.png")  # named like an overlay, in the output folder: not an input
    before = hashes(a) | {Path("b") / k: v for k, v in hashes(b).items()}
    code, _, err = run_main(["explain", a, b / "gray.png", "-o", a, *model_args], capsys)
    assert code == 0
    rows = read_summary(a)
    overlays = [r["overlay"] for r in rows]
    assert [Path(r["file"]).name for r in rows] == ["gray.png", "gray.png"]  # issue 22: earlier overlays skipped
    assert "not taken as inputs: 1 overlay(s)" in err and "gray_cfcam.png" in err
    assert len(set(overlays)) == 2 and overlays == ["gray_cfcam.png", "gray_2_cfcam.png"]
    assert all((a / o).is_file() for o in overlays)
    after = {k: v for k, v in hashes(a).items() if k.name == "gray.png"}
    after |= {Path("b") / k: v for k, v in hashes(b).items()}
    assert after == {k: v for k, v in before.items() if k.name == "gray.png"}  # the inputs are unchanged


def test_batches_give_the_same_maps_as_one_by_one(small_set, tmp_path, model_args, capsys):
    for bs in (1, 2):
        code, _, _ = run_main(["explain", small_set, "-o", tmp_path / str(bs), "--batch-size", bs, "--save-raw",
                               "--method", "gradcam", "--quiet", *model_args], capsys)
        assert code == 0
    for name in ("gray", "photo", "deep16"):
        np.testing.assert_allclose(np.load(tmp_path / "1" / f"{name}_gradcam.npy"),
                                   np.load(tmp_path / "2" / f"{name}_gradcam.npy"), atol=1e-4)


# -- usage errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,option", [
    (["--preset", "nope"], "--preset"),
    (["--method", "lime"], "--method"),
    (["--alpha", "3"], "--alpha"),
    (["--batch-size", "0"], "--batch-size"),
    (["--layer", "layer9"], "--layer"),
    (["--layer", "fc"], "--layer"),  # exists, but gives no (N, C, h, w) maps
    (["--target", "giraffe"], "--target"),
    (["--target", "7"], "--target"),
    (["--class-names", "a,b,c"], "--class-names"),
    (["--device", "cuda"], "--device"),
    (["--model", "no_such_model.pt"], "--model"),
])
def test_usage_errors_exit_2_naming_the_option(small_set, tmp_path, model_args, capsys, monkeypatch, extra, option):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = model_args if "--model" not in extra else []
    code, out_text, err = run_main(["explain", small_set, "-o", tmp_path / "out", *args, *extra], capsys)
    assert code == 2
    assert option in err and "cfcam explain: error" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_no_command_and_missing_inputs(capsys):
    assert run_main([], capsys)[0] == 2
    code, _, err = run_main(["explain"], capsys)
    assert code == 2 and "INPUT" in err
    code, out_text, _ = run_main(["explain", "--help"], capsys)
    assert code == 0 and "--save-raw" in out_text and "--preset" in out_text


def test_train_demo_is_delegated(monkeypatch):
    import cfcam.world.train

    seen = []
    monkeypatch.setattr(cfcam.world.train, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["train-demo", "--epochs", "1", "--quiet"]) == 0
    assert seen == [["--epochs", "1", "--quiet"]]


def test_notes_say_when_a_map_is_zero_everywhere(tmp_path, capsys):
    code, out_text, _ = run_main(["explain", TESTIMGS, "-o", tmp_path, "--save-raw"], capsys)
    assert code == 0
    rows = read_summary(tmp_path)
    flat = 0
    for r in rows:
        raw = np.load(tmp_path / r["overlay"].replace(".png", ".npy"))
        assert (raw.max() == 0) == ("zero everywhere" in r["notes"]), r
        flat += raw.max() == 0
    assert (f"note: {flat} map(s) are zero everywhere" in out_text) == (flat > 0)
