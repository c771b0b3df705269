"""``cfcam evaluate --data DIR``: a user's folder of images, masks and a manifest gives the same numbers as the
same images generated in memory; bad folders, manifests and rows are named (file and line), bad rows skipped
and recorded in run.json, and nothing in the folder is written."""

import csv
import hashlib
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from cfcam import cli
from cfcam.evaluation import engine
from cfcam.evaluation.folder import ManifestError, read_manifest
from cfcam.world.models import load_model
from cfcam.world.synthetic import make_dataset

pytestmark = pytest.mark.slow  # whole `cfcam evaluate` runs: `make test` runs them, `make test-fast` does not

SEED = 11
METHODS = ["gradcam", "cfcam-reference"]
DEMO_INFO = {"input_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
             "classes": ["normal", "lesion"]}


def write_folder(folder, n, rows=None):
    """``n`` lesion images of the demo world as PNGs with their masks; ``rows`` (default: every image with its
    mask and no label) become manifest.csv after its header."""
    images, _, masks = make_dataset(n, SEED, balance=1.0)
    (folder / "scans").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i, (image, mask) in enumerate(zip(images, masks)):
        Image.fromarray(image).save(folder / "scans" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{i}.png")
    rows = rows if rows is not None else [f"scans/{i}.png,masks/{i}.png," for i in range(n)]
    (folder / "manifest.csv").write_text("\n".join(["image,mask,label", *rows]) + "\n", encoding="utf-8")
    return folder


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def per_image(out):
    with open(out / "per_image.csv", newline="", encoding="utf-8") as fh:
        return {(r["method"], int(r["image"]), r["metric"]): (float(r["value"]), r["note"]) for r in csv.DictReader(fh)}


# -- a good folder gives the numbers of the same images in memory -----------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """Three images with masks; labels lesion, 1 and normal (the last is not the top class); a fourth row that
    would be skipped lies beyond --n 3."""
    folder = write_folder(tmp_path_factory.mktemp("data"), 3,
                          ["scans/0.png,masks/0.png,lesion", "scans/1.png,masks/1.png,1",
                           "scans/2.png,masks/2.png,normal", "scans/missing.png,,"])
    before = snapshot(folder)
    out = tmp_path_factory.mktemp("out")
    code = cli.main(["evaluate", "--data", str(folder), "-o", str(out), "--n", "3", "--methods", ",".join(METHODS),
                     "--subset", "2", "--no-plots", "--quiet"])
    return code, folder, before, out


def test_a_folder_is_evaluated_with_every_row_and_nothing_in_it_changes(good_run):
    code, folder, before, out = good_run
    assert code == 0
    assert snapshot(folder) == before
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        summary = {(r["method"], r["metric"]): r for r in csv.DictReader(fh)}
    assert {m for m, _ in summary} == set(METHODS)
    for method in METHODS:
        assert summary[(method, "zero_maps")]["n"] == "3"
        assert (method, "pointing_game") in summary and (method, "energy_in_mask") in summary
        assert summary[(method, "deletion_auc")]["n"] in ("1", "2")
    info = json.loads((out / "run.json").read_text())
    assert info["n"] == 3 and info["skipped"] == [] and info["data"] == str(folder)
    assert [(r["line"], r["file"], r["label"]) for r in info["images"]] == [
        (2, "scans/0.png", "lesion"), (3, "scans/1.png", "1"), (4, "scans/2.png", "normal")]


def test_the_folder_gives_the_values_of_the_same_images_in_memory(good_run):
    """PNG keeps uint8 images exactly, so the folder's localisation values are the engine's on the generated
    images explained for the same classes (the manifest's labels: lesion, lesion, normal)."""
    _, _, _, out = good_run
    got = per_image(out)
    model, _ = load_model("demo")
    data = engine.demo_world_data(3, SEED)
    data.targets = np.array([1, 1, 0])
    settings = engine.EvalSettings(subset=1, cascade=False, published_sigmas=(), fair_sigmas=())
    runs = engine.Evaluation(model, data, settings).run(METHODS)
    expected = {(m, i, metric): v for run in runs for m, i, metric, v, _ in run.rows
                if metric in ("pointing_game", "energy_in_mask")}
    assert len(expected) == 2 * 3 * 2
    for key, value in expected.items():
        assert math.isclose(got[key][0], value, rel_tol=1e-5, abs_tol=1e-6) or (math.isnan(value) and
                                                                               math.isnan(got[key][0])), key
    assert any(math.isfinite(v) for v in expected.values())


def test_given_labels_are_the_targets_and_the_other_class_is_not_the_target():
    model, _ = load_model("demo")
    data = engine.demo_world_data(2, SEED)
    top = engine.Evaluation(model, data)._base()[1]
    data.targets = np.array([1 - top[0], -1])  # the first image explained for its other class, the second for its top
    logits, targets, _, _ = engine.Evaluation(model, data)._base()
    assert targets.tolist() == [1 - top[0], top[1]]
    from cfcam.evaluation.sanity import runner_up

    assert runner_up(logits, targets).tolist() == [top[0], 1 - top[1]]
    assert runner_up(logits).tolist() == (1 - torch.as_tensor(top)).tolist()  # without targets: as before


# -- bad rows: skipped, named, recorded ---------------------------------------------------------------------

def test_bad_rows_are_skipped_named_and_recorded_and_a_row_without_mask_gets_nan(tmp_path, capsys):
    folder = write_folder(tmp_path / "data", 2, [
        "scans/0.png,masks/0.png,",       # line 2: fine
        "scans/1.png,,",                  # line 3: no mask: NaN localisation with a note
        "scans/missing.png,,",            # line 4
        "scans/0.png,,nope",              # line 5
        "scans/corrupt.png,,",            # line 6
        "scans/1.png,masks/small.png,",   # line 7
        "scans/0.png,masks/gone.png,",    # line 8
        ",masks/0.png,",                  # line 9
    ])
    (folder / "scans" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    Image.fromarray(np.zeros((100, 50), np.uint8)).save(folder / "masks" / "small.png")
    out = tmp_path / "out"
    code = cli.main(["evaluate", "--data", str(folder), "-o", str(out), "--methods", "gradcam", "--subset", "1",
                     "--no-plots", "--quiet"])
    assert code == 1  # done, but some inputs failed (the command line's convention)
    err = capsys.readouterr().err
    skipped = json.loads((out / "run.json").read_text())["skipped"]
    assert [s["line"] for s in skipped] == [4, 5, 6, 7, 8, 9]
    by_line = {s["line"]: s for s in skipped}
    expected = {4: ("missing.png", "no such file"), 5: ("manifest.csv", "unknown label: 'nope'"),
                6: ("corrupt.png", "corrupt"), 7: ("small.png", "the mask is 50x100 pixels but its image"),
                8: ("gone.png", "no such file"), 9: ("manifest.csv", "the image cell is empty")}
    for line, (name, why) in expected.items():
        assert by_line[line]["file"].endswith(name) and why in by_line[line]["why"], by_line[line]
        assert f"skipped manifest line {line} (" in err and name in err
    values = per_image(out)
    assert values[("gradcam", 0, "pointing_game")][0] == 1.0
    value, note = values[("gradcam", 1, "pointing_game")]
    assert math.isnan(value) and "no mask" in note
    assert math.isnan(values[("gradcam", 1, "energy_in_mask")][0])
    assert math.isfinite(values[("gradcam", 1, "average_drop")][0])  # the row is kept for everything else


def test_no_usable_row_exits_2_naming_every_row(tmp_path, capsys):
    folder = write_folder(tmp_path / "data", 1, ["scans/missing.png,,", "scans/0.png,,9"])
    code = cli.main(["evaluate", "--data", str(folder), "-o", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "skipped manifest line 2" in err and "skipped manifest line 3" in err
    assert "cfcam evaluate: error: argument --data:" in err and "no usable row" in err
    assert not (tmp_path / "out").exists()


# -- bad folders, manifests and options: exit 2 with one clear line ------------------------------------------

def test_a_missing_folder_or_manifest_or_image_column_exits_2(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli.main(["evaluate", "--data", str(tmp_path / "nowhere"), "-o", out]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["evaluate", "--data", str(tmp_path / "empty"), "-o", out]) == 2
    assert "manifest.csv: no such file" in capsys.readouterr().err
    (tmp_path / "empty" / "manifest.csv").write_text("file,mask\na.png,\n")
    assert cli.main(["evaluate", "--data", str(tmp_path / "empty"), "-o", out]) == 2
    err = capsys.readouterr().err
    assert "manifest.csv: line 1 must be a header with an 'image' column" in err and "got file,mask" in err


@pytest.mark.parametrize("args, message", [
    (["--data", ".", "--ablation"], "argument --ablation: not with --data"),
    (["--weights", "w.pt"], "argument --weights: only with --data"),
    (["--model", "resnet18"], "pass --data DIR with your own images"),
])
def test_options_that_do_not_fit_exit_2(tmp_path, capsys, args, message):
    assert cli.main(["evaluate", "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert "cfcam evaluate: error:" in err and message in err


def test_the_output_folder_may_not_be_inside_the_data_folder(tmp_path, capsys):
    folder = write_folder(tmp_path / "data", 1)
    before = snapshot(folder)
    assert cli.main(["evaluate", "--data", str(folder), "-o", str(folder / "results"), "--quiet"]) == 2
    assert "is inside --data" in capsys.readouterr().err
    assert snapshot(folder) == before and not (folder / "results").exists()


def test_read_manifest_matches_columns_loosely_and_resizes_masks_with_nearest_neighbour(tmp_path):
    folder = write_folder(tmp_path, 1, [])
    (folder / "manifest.csv").write_text("\ufeff Label , IMAGE ,notes,Mask\n1,scans/0.png,x,masks/0.png\n\n",
                                         encoding="utf-8")
    data, skipped = read_manifest(folder, {**DEMO_INFO, "input_size": 112})
    assert skipped == [] and data.inputs.shape == (1, 3, 112, 112) and data.targets.tolist() == [1]
    mask = np.asarray(Image.open(folder / "masks" / "0.png")) > 0
    assert data.masks.dtype == bool and data.masks.shape == (1, 112, 112)
    assert 0 < data.masks.sum() and data.masks[0].any()
    small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((112, 112), Image.NEAREST)) > 0
    assert (data.masks[0] == small).all()
    with pytest.raises(ManifestError, match="no usable row"):
        read_manifest(folder, DEMO_INFO, limit=0)


# -- a transformer: its layer read as maps, a method that cannot run on it reported -------------------------

def test_a_swin_transformer_is_evaluated_and_a_method_that_cannot_run_is_reported(tmp_path, capsys):
    """Any model: a Swin-T weights file is read at its default layer with the swin reshape (``--reshape auto``);
    Ablation-CAM, which cannot ablate a channels-last layer, is named on stderr and in run.json (exit 1)."""
    import torchvision

    folder = write_folder(tmp_path / "data", 2)
    weights = tmp_path / "swin.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.swin_t(num_classes=2).state_dict(), weights)
    out = tmp_path / "out"
    code = cli.main(["evaluate", "--data", str(folder), "-o", str(out), "--weights", str(weights), "--arch", "swin_t",
                     "--methods", "gradcam,ablationcam", "--subset", "1", "--randomisation-seeds", "1",
                     "--no-plots", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "ablationcam could not run" in err
    run = json.loads((out / "run.json").read_text())
    assert run["reshape"] == "swin" and set(run["failed"]) == {"ablationcam"}
    values = per_image(out)
    assert {m for m, _, _ in values} == {"gradcam"}
    assert all(math.isfinite(values[("gradcam", i, "pointing_game")][0]) for i in range(2))


def test_a_reshape_that_does_not_fit_the_layer_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), "--reshape", "vit", "--n", "2", "--quiet"])
    assert code == 2
    assert "argument --reshape" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
