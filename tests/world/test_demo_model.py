"""Tests for the committed demo model (cfcam/data) and the training helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.resnet import ResNet

from cfcam.evaluation.metrics import pointing_game, pointing_hits
from cfcam.world import synthetic
from cfcam.world.train import (
    CARD_FILE,
    DATA_DIR,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_FILE,
    build_demo_model,
    evaluate_accuracy,
    split_seeds,
    to_input,
)

MAX_BYTES = 15 * 1024 * 1024
FRESH_SEED = 987_654  # a set the model never saw (checked against the card below)


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((DATA_DIR / CARD_FILE).read_text())


@pytest.fixture(scope="module")
def state() -> dict:
    return torch.load(DATA_DIR / MODEL_FILE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def model(state):
    m = build_demo_model()
    m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return m.eval()


@pytest.fixture(scope="module")
def fresh_set(card):
    assert FRESH_SEED not in {card["data"][s]["seed"] for s in ("train", "val", "test")}
    return synthetic.make_dataset(200, FRESH_SEED)


def test_model_file_is_small_and_float16(state):
    assert (DATA_DIR / MODEL_FILE).stat().st_size <= MAX_BYTES
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)


def test_state_dict_restores_the_model_exactly(model, state):
    assert isinstance(model, ResNet)
    assert model.layer4[-1] is list(model.layer4.children())[-1]
    restored = model.state_dict()
    assert restored.keys() == state.keys()
    for key, value in state.items():
        assert restored[key].dtype == (torch.float32 if value.is_floating_point() else value.dtype)
        assert torch.equal(restored[key], value.to(restored[key].dtype)), key


def test_card_fields(card):
    for key in (
        "architecture", "classes", "input_size", "normalization", "seed", "data_sizes", "epochs",
        "val_accuracy", "pointing_game_gradcam", "pointing_game_cfcam", "date", "torch_version",
        "training_seconds",
    ):
        assert key in card, key
    assert card["classes"] == list(synthetic.CLASSES)
    assert card["input_size"] == [3, synthetic.SIZE, synthetic.SIZE]
    assert card["normalization"] == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert set(card["data_sizes"]) == {"train", "val", "test"}
    assert set(card["pointing_game_cfcam"]) == {"readme", "reference"}
    # The data seeds in the card are the ones the training seed implies.
    assert {s: card["data"][s]["seed"] for s in ("train", "val", "test")} == split_seeds(card["seed"])
    assert card["val_accuracy"] >= 0.97
    assert card["pointing_game_gradcam"] >= 0.85
    assert 0 < card["training_seconds"] <= 20 * 60


@pytest.mark.slow
def test_accuracy_on_a_fresh_set_agrees_with_the_card(model, card, fresh_set):
    images, labels, _ = fresh_set
    acc = evaluate_accuracy(model, images, labels)
    assert acc >= 0.95
    # 200 images: a binomial standard error of ~1 %; allow 4 points.
    assert abs(acc - card["val_accuracy"]) <= 0.04


def test_gradcam_points_at_fresh_nodules(model, card):
    images, _, masks = synthetic.make_dataset(40, FRESH_SEED + 1, balance=1.0)
    # 40 images: ~5 % standard error; the card's figures come from 300.
    assert pointing_game(model, to_input(images), masks, "gradcam", target=1) >= card["pointing_game_gradcam"] - 0.15
    for preset, value in card["pointing_game_cfcam"].items():
        assert pointing_game(model, to_input(images), masks, "cfcam", preset, target=1) >= value - 0.15


def test_to_input_matches_torchvision_transforms():
    from PIL import Image
    from torchvision import transforms

    img, _ = synthetic.make_image(3, 1)
    ref = transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])(
        Image.fromarray(img).convert("RGB")
    )
    ours = to_input(img)
    assert ours.shape == (1, 3, synthetic.SIZE, synthetic.SIZE) and ours.dtype == torch.float32
    assert torch.allclose(ours[0], ref, atol=1e-6)
    with pytest.raises(TypeError, match="images_uint8"):
        to_input(img.astype(np.float32))
    with pytest.raises(ValueError, match="images_uint8"):
        to_input(np.zeros((1, 1, 4, 4), dtype=np.uint8))


def test_one_preprocessing_for_the_world_the_evaluation_and_user_images():
    """``cfcam.images.preprocess.to_input`` is the one path from uint8 images to model input: the numbers of the
    demo world's old ``to_input`` (written out below), and what ``preprocess`` gives for a 224 px image."""
    from cfcam.evaluation import shortcut
    from cfcam.images import preprocess, viz
    from cfcam.world import train

    assert train.to_input is preprocess.to_input and viz.preprocess is preprocess.preprocess
    gray = np.random.default_rng(0).integers(0, 256, (3, 224, 224), dtype=np.uint8)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    old = (torch.from_numpy(gray).to(torch.float32).div(255.0)[:, None].expand(-1, 3, -1, -1) - mean) / std
    assert torch.equal(to_input(gray), old)  # bit for bit
    assert torch.equal(to_input(torch.from_numpy(gray)), old)
    assert torch.equal(shortcut._as_inputs(gray), old)  # the evaluation's sets go through it too
    assert torch.equal(viz.preprocess(gray[0]), old[:1])  # a user's image of the model's size: no resize
    rgb = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert torch.equal(viz.preprocess_batch(list(rgb)), to_input(rgb))
    x = to_input(rgb)
    assert torch.equal(x[:, 1], (torch.from_numpy(rgb[..., 1]).float() / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1])


def test_split_seeds_are_distinct_and_stable():
    a, b = split_seeds(0), split_seeds(1)
    assert len(set(a.values())) == 3 and a == split_seeds(0) and a != b
    with pytest.raises(ValueError, match="seed"):
        split_seeds(-1)


def test_pointing_hits_geometry():
    masks = np.zeros((2, 50, 50), dtype=bool)
    masks[:, 20:25, 20:25] = True
    cams = np.zeros((2, 50, 50), dtype=np.float32)
    cams[0, 24 + 15, 22] = 1.0  # exactly 15 px below the mask: a hit
    cams[1, 24 + 16, 22] = 1.0  # 16 px: a miss
    assert pointing_hits(cams, masks, tolerance=15).tolist() == [True, False]
    with pytest.raises(ValueError, match="masks"):
        pointing_hits(cams, np.zeros_like(masks))


def test_alignment_shift_is_parameter_free():
    plain, aligned = build_demo_model(align_shift=0), build_demo_model()
    assert plain.state_dict().keys() == aligned.state_dict().keys()
    aligned.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 224, 224)
    shifted = torch.nn.functional.pad(x[..., 16:, 16:], (0, 16, 0, 16), mode="replicate")
    with torch.no_grad():
        assert torch.allclose(aligned.eval()(x), plain.eval()(shifted), atol=1e-5)


def test_tiny_training_run_writes_model_and_card(tmp_path):
    from cfcam.world.train import train_demo

    threads = torch.get_num_threads()
    card = train_demo(tmp_path, seed=3, n_train=8, epochs=1, progress=False, n_val=4, n_test=2, batch_size=4)
    assert torch.get_num_threads() == threads  # restored afterwards
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CARD_FILE, MODEL_FILE])  # no temp files left
    assert json.loads((tmp_path / CARD_FILE).read_text()) == card
    assert set(card["pointing_game_cfcam"]) == {"readme", "reference"}
    assert card["data_sizes"] == {"train": 8, "val": 4, "test": 2}
    m = build_demo_model()
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def test_train_demo_validates_arguments(tmp_path):
    from cfcam.world.train import main, train_demo

    with pytest.raises(ValueError, match="epochs"):
        train_demo(tmp_path, epochs=0)
    with pytest.raises(ValueError, match="n_train"):
        train_demo(tmp_path, n_train=1)
    with pytest.raises(ValueError, match="amp"):
        train_demo(tmp_path, amp="fp8")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--epochs", "0", "--quiet"])
    assert list(tmp_path.iterdir()) == []


# -- where train-demo writes: the user's cache by default, the shipped files only when asked -----------------

TINY = dict(seed=3, n_train=8, epochs=1, progress=False, n_val=4, n_test=2, batch_size=4)


@pytest.fixture
def quick_evidence(monkeypatch):
    """The card's measurements replaced by fixed figures: these tests are about where the files go (the tiny
    run above checks the real evidence)."""
    from cfcam.evaluation import model_card

    figures = {"val_accuracy": 0.5, "pointing_game_gradcam": 0.5, "pointing_game_tolerance_px": 15,
               "pointing_game_cfcam": {"readme": 0.5, "reference": 0.5}}
    monkeypatch.setattr(model_card, "card_evidence", lambda model, recipe, seeds: dict(figures))


def test_train_demo_writes_to_the_users_cache_folder_by_default(tmp_path, monkeypatch, quick_evidence):
    from cfcam.world.saving import default_out_dir
    from cfcam.world.train import train_demo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_out_dir() == tmp_path / "cache" / "cfcam"
    shipped = {p.name: p.stat().st_mtime_ns for p in DATA_DIR.iterdir()}
    card = train_demo(**TINY)
    assert sorted(p.name for p in (tmp_path / "cache" / "cfcam").iterdir()) == sorted([CARD_FILE, MODEL_FILE])
    assert json.loads((tmp_path / "cache" / "cfcam" / CARD_FILE).read_text()) == card
    assert {p.name: p.stat().st_mtime_ns for p in DATA_DIR.iterdir()} == shipped
    for unusable in ("", "relative/cache"):  # the XDG specification: ignore an empty or relative value
        monkeypatch.setenv("XDG_CACHE_HOME", unusable)
        assert default_out_dir() == Path.home() / ".cache" / "cfcam"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_out_dir() == Path.home() / ".cache" / "cfcam"


def test_train_demo_refuses_the_packages_data_folder_unless_asked(tmp_path, capsys):
    from cfcam.world.train import main, train_demo

    digests = {p.name: hash(p.read_bytes()) for p in DATA_DIR.iterdir()}
    for spelling in (DATA_DIR, DATA_DIR / ".." / "data", str(DATA_DIR) + "/"):
        with pytest.raises(ValueError, match="package's own data folder.*into_package=True"):
            train_demo(spelling, **TINY)
    link = tmp_path / "link"
    link.symlink_to(DATA_DIR)
    with pytest.raises(ValueError, match="package's own data folder"):
        train_demo(link, **TINY)
    with pytest.raises(ValueError, match="contradicts into_package=True"):
        train_demo(tmp_path, into_package=True, **TINY)
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(DATA_DIR), "--epochs", "1", "--quiet"])
    assert exit_info.value.code == 2 and "--into-package" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--into-package", "--quiet"])
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert {p.name: hash(p.read_bytes()) for p in DATA_DIR.iterdir()} == digests
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]


def test_into_package_replaces_the_shipped_pair_whole_or_not_at_all(tmp_path, monkeypatch, quick_evidence):
    """--into-package writes into the package's data folder (here a stand-in); a run stopped while writing
    leaves the shipped weights and card as they were, and no temporary file behind."""
    from cfcam.images import writing
    from cfcam.world import saving
    from cfcam.world.train import train_demo

    package = tmp_path / "data"
    package.mkdir()
    (package / MODEL_FILE).write_bytes(b"shipped weights")
    (package / CARD_FILE).write_text("shipped card")
    monkeypatch.setattr(saving, "DATA_DIR", package)
    with pytest.raises(ValueError, match="package's own data folder"):
        train_demo(package, **TINY)

    real_fill, calls = writing._fill, []

    def killed_while_writing_the_card(tmp, write):
        calls.append(tmp)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fill(tmp, write)

    monkeypatch.setattr(writing, "_fill", killed_while_writing_the_card)
    with pytest.raises(KeyboardInterrupt):
        train_demo(into_package=True, **TINY)
    assert len(calls) == 2 and all(tmp.parent == package for tmp in calls)
    assert (package / MODEL_FILE).read_bytes() == b"shipped weights"
    assert (package / CARD_FILE).read_text() == "shipped card"
    assert sorted(p.name for p in package.iterdir()) == sorted([CARD_FILE, MODEL_FILE])

    monkeypatch.setattr(writing, "_fill", real_fill)
    card = train_demo(into_package=True, **TINY)
    assert json.loads((package / CARD_FILE).read_text()) == card
    assert (package / MODEL_FILE).read_bytes() != b"shipped weights"
