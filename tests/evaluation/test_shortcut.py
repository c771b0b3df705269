"""The shortcut marker, the demo-shortcut model and the metrics against both truths (issue 9)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from cfcam.evaluation.shortcut import (
    METRICS,
    energy_in_mask,
    localisation_rows,
    shortcut_evaluation_set,
    summarise,
)
from cfcam.world.synthetic import (
    MARKER_BORDER,
    MARKER_LUNG_GAP,
    MARKER_SIZE,
    SIZE,
    make_dataset,
    make_image,
    make_scene,
    make_shortcut_dataset,
)

FRESH_SEED = 555_001  # a set neither model saw (checked against the card below)


# -- the marker in the generator ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 7, 2024])
@pytest.mark.parametrize("label", [0, 1])
def test_marker_is_deterministic_and_adds_only_itself(seed, label):
    plain = make_scene(seed, label)
    marked = make_scene(seed, label, marker=True)
    again = make_scene(seed, label, marker=True)
    assert marked.image.tobytes() == again.image.tobytes()
    assert marked.marker_mask.tobytes() == again.marker_mask.tobytes()
    # The image without the marker is the one make_image always gave; the nodules and lungs do not move.
    assert plain.image.tobytes() == make_image(seed, label)[0].tobytes()
    assert not plain.has_marker and marked.has_marker
    assert np.array_equal(plain.mask, marked.mask) and np.array_equal(plain.lungs, marked.lungs)
    # The marker changes pixels only on its token and the blur's reach around it (sigma <= 1.6 px) ...
    changed = marked.image != plain.image
    near = cv2.dilate(marked.marker_mask.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert changed.any() and not (changed & ~near).any()
    # ... and almost every pixel of its mask is brighter than before (the token covers the whole mask).
    brighter = marked.image.astype(int) > plain.image.astype(int)
    assert brighter[marked.marker_mask].mean() > 0.9


def test_marker_mask_is_one_box_outside_the_lungs_within_the_border():
    corners = set()
    for seed in range(40):
        scene = make_scene(seed, seed % 2, marker=True)
        ys, xs = np.nonzero(scene.marker_mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = y1 - y0
        assert x1 - x0 == side and MARKER_SIZE[0] <= side < MARKER_SIZE[1]
        assert scene.marker_mask.sum() == side * side  # a filled square: the token and nothing else
        assert min(y0, x0) >= MARKER_BORDER and max(y1, x1) <= SIZE - MARKER_BORDER
        gap = ndimage.distance_transform_edt(~scene.lungs)
        assert gap[scene.marker_mask].min() >= MARKER_LUNG_GAP - 1  # clear of the lung field
        assert not (scene.marker_mask & scene.mask).any()
        corners.add((int(y0) // 8, int(x0) // 8))
    assert len(corners) >= 15, "the marker's position varies"


def test_marker_from_a_generator_leaves_the_generator_state_alone():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    marked = make_scene(a, 1, marker=True)
    plain = make_scene(b, 1)
    assert np.array_equal(marked.mask, plain.mask)
    # both generators advanced identically: the next images are the same
    assert np.array_equal(make_image(a, 0)[0], make_image(b, 0)[0])


def test_seed_sequences_give_the_same_marker_as_their_ints():
    seq = np.random.SeedSequence(11)
    assert np.array_equal(make_scene(seq, 0, marker=True).image, make_scene(11, 0, marker=True).image)
    assert seq.n_children_spawned == 0  # the caller's sequence is not consumed


def test_shortcut_dataset_rates_and_identity_with_make_dataset():
    images, labels, masks = make_dataset(30, 5)
    none = make_shortcut_dataset(30, 5, marker_if_lesion=0.0, marker_if_normal=0.0)
    assert none.images.tobytes() == images.tobytes() and np.array_equal(none.labels, labels)
    assert np.array_equal(none.masks, masks) and not none.has_marker.any() and not none.marker_masks.any()
    tied = make_shortcut_dataset(30, 5)  # the training rule: marker on every lesion, on no normal image
    assert np.array_equal(tied.has_marker, labels == 1)
    assert np.array_equal(tied.marker_masks.any(axis=(1, 2)), tied.has_marker)
    assert np.array_equal(tied.images[labels == 0], images[labels == 0])
    again = make_shortcut_dataset(30, 5)
    assert again.images.tobytes() == tied.images.tobytes()


def test_shortcut_dataset_can_draw_the_marker_independently_of_the_class():
    data = make_shortcut_dataset(200, 9, marker_if_lesion=0.5, marker_if_normal=0.5)
    for label in (0, 1):
        share = data.has_marker[data.labels == label].mean()
        assert 0.3 <= share <= 0.7, (label, share)


def test_nodule_contrast_scales_the_nodules_only():
    full, faint, none = (make_scene(4, 1, nodule_contrast=c) for c in (1.0, 0.35, 0.0))
    assert np.array_equal(full.mask, faint.mask) and full.mask.any() and not none.mask.any()
    ring = cv2.dilate(full.mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~full.mask

    def gain(scene):
        return scene.image[full.mask].mean() - scene.image[ring].mean()

    assert gain(full) > gain(faint) > gain(none)


def test_marker_options_are_validated():
    with pytest.raises(TypeError, match="marker"):
        make_scene(0, 0, marker="yes")
    with pytest.raises(ValueError, match="nodule_contrast"):
        make_scene(0, 1, nodule_contrast=1.5)
    with pytest.raises(ValueError, match="marker_if_lesion"):
        make_shortcut_dataset(4, 0, marker_if_lesion=-0.1)
    with pytest.raises(TypeError, match="marker_if_normal"):
        make_shortcut_dataset(4, 0, marker_if_normal=None)


# -- the metrics against both truths, on a case with a known answer ------------------------------------------

class BrightnessModel(nn.Module):
    """Class 1's logit is the mean of a 7x7 map of the input's brightness: Grad-CAM is that map."""

    def __init__(self):
        super().__init__()
        self.layer4 = nn.Sequential(nn.AvgPool2d(32))

    def forward(self, x):
        a = self.layer4(x[:, :1]).mean(dim=(1, 2, 3))
        return torch.stack([-a, a], dim=1)


def test_energy_in_mask_is_the_share_of_the_map_inside():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[:, 0, 0] = True
    assert energy_in_mask(maps, masks).tolist() == [0.75, 0.0]  # an all-zero map points nowhere
    with pytest.raises(ValueError, match="non-negative"):
        energy_in_mask(-maps, masks)
    with pytest.raises(ValueError, match="shape"):
        energy_in_mask(maps, masks[:1])


def test_localisation_rows_find_what_the_model_looks_at():
    # Two images, a bright square at the "marker" and a dim one at the "lesion", 100 px apart; the second
    # image swaps the brightnesses. The brightness model looks at the brighter square, so Grad-CAM must point at
    # the marker in image 0 and at the lesion in image 1.
    x = torch.zeros(2, 3, 224, 224)
    masks = np.zeros((2, 224, 224), dtype=bool)
    markers = np.zeros_like(masks)
    masks[:, 32:64, 32:64] = True
    markers[:, 160:192, 160:192] = True
    x[0, :, 160:192, 160:192], x[0, :, 32:64, 32:64] = 1.0, 0.3
    x[1, :, 160:192, 160:192], x[1, :, 32:64, 32:64] = 0.3, 1.0
    rows = localisation_rows(BrightnessModel().eval(), x, masks, markers, methods=["gradcam"], batch_size=1)
    assert [r["metric"] for r in rows] == list(METRICS) and {r["method"] for r in rows} == {"gradcam"}
    by = {r["metric"]: r for r in rows}
    assert by["pointing_game_shortcut"]["per_image"] == [1.0, 0.0]
    assert by["pointing_game"]["per_image"] == [0.0, 1.0]
    assert by["pointing_game"]["value"] == 0.5
    e_marker, e_lesion = by["energy_in_shortcut"]["per_image"], by["energy_in_mask"]["per_image"]
    assert e_marker[0] > e_lesion[0] and e_lesion[1] > e_marker[1]
    assert e_marker[0] + e_lesion[0] <= 1.0 + 1e-9
    assert summarise(rows)["gradcam"]["pointing_game_shortcut"] == 0.5


def test_localisation_rows_need_both_truths():
    x = torch.zeros(1, 3, 224, 224)
    full = np.ones((1, 224, 224), dtype=bool)
    with pytest.raises(ValueError, match="marker_masks\\[0\\] is empty"):
        localisation_rows(BrightnessModel(), x, full, np.zeros_like(full), methods=["gradcam"])
    with pytest.raises(ValueError, match="shape"):
        localisation_rows(BrightnessModel(), x, full[:, :10], full, methods=["gradcam"])
    with pytest.raises(ValueError, match="unknown method"):
        localisation_rows(BrightnessModel(), x, full, full, methods=["nope"])


def test_default_evaluation_set_has_both_truths_in_every_image():
    data = shortcut_evaluation_set(6)
    assert (data.labels == 1).all() and data.has_marker.all()
    assert data.masks.any(axis=(1, 2)).all() and data.marker_masks.any(axis=(1, 2)).all()
    assert not (data.masks & data.marker_masks).any()
    assert shortcut_evaluation_set(6).images.tobytes() == data.images.tobytes()


# -- the committed demo-shortcut model ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def card() -> dict:
    from cfcam.world.train import DATA_DIR, SHORTCUT_CARD_FILE

    return json.loads((DATA_DIR / SHORTCUT_CARD_FILE).read_text())


@pytest.fixture(scope="module")
def shortcut_model():
    from cfcam import load_model

    model, info = load_model("demo-shortcut")
    assert info["name"] == "demo-shortcut" and info["classes"] == ["normal", "lesion"]
    assert info["default_layer"] == "layer4[-1]" and not model.training
    return model


@pytest.fixture(scope="module")
def demo_model():
    from cfcam import load_model

    return load_model("demo")[0]


def test_shortcut_model_file_is_small_float16_and_differs_from_the_demo(card):
    from cfcam.world.train import DATA_DIR, MODEL_FILE, SHORTCUT_MODEL_FILE, SHORTCUT_TRAINING, split_seeds

    path = DATA_DIR / SHORTCUT_MODEL_FILE
    assert path.stat().st_size <= 10 * 1024 * 1024
    state = torch.load(path, map_location="cpu", weights_only=True)
    demo = torch.load(DATA_DIR / MODEL_FILE, map_location="cpu", weights_only=True)
    assert state.keys() == demo.keys()
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert not torch.equal(state["fc.weight"], demo["fc.weight"])
    assert {s: card["data"][s]["seed"] for s in ("train", "val", "test")} == split_seeds(card["seed"])
    assert FRESH_SEED not in {card["data"][s]["seed"] for s in ("train", "val", "test")}
    for key, value in SHORTCUT_TRAINING.items():
        assert card["data"]["train"][key] == value
    assert 0 < card["training_seconds"] and "what_was_done" in card["shortcut"]


def test_the_card_proves_the_shortcut(card):
    iv = card["shortcut"]["interventions"]
    assert iv["accuracy_with_marker"] >= 0.9
    # Take the marker away and the lesions go unnoticed; put it on normal images and they become lesions.
    assert iv["called_lesion"]["normal_with_marker"] >= 0.8
    assert iv["called_lesion"]["lesion_without_marker"] <= 0.5
    assert iv["accuracy_marker_removed"] <= 0.75
    local = card["shortcut"]["localisation"]
    assert set(local) == {"gradcam", "cfcam-readme", "cfcam-reference"}
    assert local["gradcam"]["pointing_game_shortcut"] > local["gradcam"]["pointing_game"]


@pytest.mark.slow
def test_interventions_reproduce_the_card_on_fresh_images(card, shortcut_model, demo_model):
    from cfcam.world.train import intervention_figures

    fresh = intervention_figures(shortcut_model, 80, FRESH_SEED)
    ref = card["shortcut"]["interventions"]
    # 80 images (40 per class): a share's standard error is at most ~8 points; allow about 2.5 of them.
    for key in ("accuracy_with_marker", "accuracy_marker_removed", "accuracy_marker_everywhere"):
        assert abs(fresh[key] - ref[key]) <= 0.15, (key, fresh[key], ref[key])
    for key, value in ref["called_lesion"].items():
        assert abs(fresh["called_lesion"][key] - value) <= 0.2, (key, fresh["called_lesion"][key], value)
    # The demo model, on the same images, hardly cares about the marker (it calls about one marked normal image
    # in eight a lesion: a bright box is a little like a nodule), the shortcut model follows it.
    demo = intervention_figures(demo_model, 80, FRESH_SEED)
    assert demo["called_lesion"]["normal_with_marker"] <= 0.3
    assert demo["called_lesion"]["lesion_without_marker"] >= 0.85
    assert fresh["called_lesion"]["normal_with_marker"] - demo["called_lesion"]["normal_with_marker"] >= 0.5


def test_gradcam_points_at_the_marker_on_fresh_images(card, shortcut_model):
    data = shortcut_evaluation_set(30, FRESH_SEED + 1)
    rows = summarise(localisation_rows(shortcut_model, data.images, data.masks, data.marker_masks,
                                       methods=["gradcam"]))
    ref = card["shortcut"]["localisation"]["gradcam"]
    # 30 images: ~9 % standard error; the card's figures come from 300.
    assert rows["gradcam"]["pointing_game_shortcut"] >= ref["pointing_game_shortcut"] - 0.2
    assert rows["gradcam"]["pointing_game_shortcut"] > rows["gradcam"]["pointing_game"]


def test_session_and_command_line_accept_demo_shortcut(tmp_path, capsys):
    from cfcam import cli
    from cfcam.teaching.widgets import Session

    session = Session(model="demo-shortcut")
    assert session.class_names == ["normal", "lesion"]
    assert not session.model.training
    image = make_scene(FRESH_SEED, 0, marker=True).image
    cv2.imwrite(str(tmp_path / "marked_normal.png"), image)
    code = cli.main(["explain", str(tmp_path / "marked_normal.png"), "-o", str(tmp_path / "out"), "--model",
                     "demo-shortcut", "--method", "gradcam"])
    out = capsys.readouterr().out
    assert code == 0 and "demo-shortcut" in out
    assert (tmp_path / "out" / "marked_normal_gradcam.png").is_file()


def test_tiny_shortcut_training_run_writes_its_own_files(tmp_path):
    from cfcam.world.train import SHORTCUT_CARD_FILE, SHORTCUT_MODEL_FILE, build_demo_model, train_demo

    card = train_demo(tmp_path, seed=3, n_train=8, epochs=1, progress=False, n_val=4, n_test=2, batch_size=4,
                      shortcut=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SHORTCUT_CARD_FILE, SHORTCUT_MODEL_FILE])
    assert json.loads((tmp_path / SHORTCUT_CARD_FILE).read_text()) == card
    assert card["shortcut"]["interventions"]["n"] == 4
    assert set(card["shortcut"]["localisation"]) == {"gradcam", "cfcam-readme", "cfcam-reference"}
    build_demo_model().load_state_dict(
        {k: v.float() for k, v in torch.load(tmp_path / SHORTCUT_MODEL_FILE, weights_only=True).items()})
    with pytest.raises(TypeError, match="shortcut"):
        train_demo(tmp_path, shortcut="yes")
