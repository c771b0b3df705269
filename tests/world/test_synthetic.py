"""Tests for the synthetic chest X-ray generator (cfcam.world.synthetic)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfcam.world import anatomy, synthetic
from cfcam.world.synthetic import CLASSES, SIZE, TESTIMGS_SEED, make_dataset, make_image, make_scene, write_testimgs

TESTIMGS = Path(__file__).resolve().parents[2] / "testimgs"


def test_classes_constant():
    assert CLASSES == ("normal", "lesion")


def test_same_seed_is_byte_identical():
    a_img, a_mask = make_image(123, 1)
    b_img, b_mask = make_image(123, 1)
    assert a_img.tobytes() == b_img.tobytes()
    assert a_mask.tobytes() == b_mask.tobytes()
    xa, ya, ma = make_dataset(8, 5)
    xb, yb, mb = make_dataset(8, 5)
    assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes() and ma.tobytes() == mb.tobytes()


def test_different_seeds_differ():
    assert not np.array_equal(make_image(1, 0)[0], make_image(2, 0)[0])
    xa, _, _ = make_dataset(4, 5)
    xb, _, _ = make_dataset(4, 6)
    assert all(not np.array_equal(a, b) for a, b in zip(xa, xb))
    # Images inside one data set differ from each other, too.
    assert len({x.tobytes() for x in xa}) == len(xa)


def test_generator_is_advanced():
    rng = np.random.default_rng(0)
    first, _ = make_image(rng, 0)
    second, _ = make_image(rng, 0)
    assert not np.array_equal(first, second)


def test_shapes_dtypes_and_value_ranges():
    images, labels, masks = make_dataset(40, 11)
    assert images.shape == (40, SIZE, SIZE) and images.dtype == np.uint8
    assert labels.shape == (40,) and labels.dtype == np.int64
    assert masks.shape == (40, SIZE, SIZE) and masks.dtype == bool
    assert set(np.unique(labels)) <= {0, 1}
    for img in images:
        # A real radiograph-like range: dark lungs / background, bright spine.
        assert int(img.min()) < 80 and int(img.max()) > 150
        assert img.std() > 15
        # Not saturated: only a small part of the image is clipped white.
        assert (img == 255).mean() < 0.05


@pytest.mark.parametrize("n,balance,expected", [(50, 0.5, 25), (40, 0.25, 10), (7, 0.0, 0), (7, 1.0, 7), (9, 0.5, 4)])
def test_class_balance(n, balance, expected):
    _, labels, masks = make_dataset(n, 3, balance=balance)
    assert int(labels.sum()) == expected
    assert np.array_equal(masks.any(axis=(1, 2)), labels == 1)


def test_labels_are_shuffled():
    _, labels, _ = make_dataset(60, 4)
    assert not np.array_equal(labels, np.sort(labels))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), label=st.sampled_from([0, 1]))
def test_masks_only_for_lesions_and_inside_lungs(seed, label):
    scene = make_scene(seed, label)
    assert scene.mask.shape == (SIZE, SIZE) and scene.mask.dtype == bool
    assert scene.lungs.sum() > 0.1 * SIZE * SIZE  # two sizeable lung fields
    if label == 0:
        assert not scene.mask.any()
        return
    assert scene.mask.any()
    assert not (scene.mask & ~scene.lungs).any(), "nodule pixels outside the lung field"
    n_blobs, _ = cv2.connectedComponents(scene.mask.astype(np.uint8))
    assert 1 <= n_blobs - 1 <= 3


def test_nodules_are_brighter_than_their_lung():
    images, labels, masks = make_dataset(60, 21, balance=1.0)
    brighter = 0
    for img, mask in zip(images, masks):
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask
        brighter += img[mask].mean() > img[ring].mean() + 5
    assert brighter >= 0.95 * len(images)


def test_nodule_sizes_in_range():
    _, _, masks = make_dataset(80, 8, balance=1.0)
    areas = []
    for mask in masks:
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        areas.extend(stats[1:, cv2.CC_STAT_AREA])
    radii = np.sqrt(np.array(areas) / np.pi)
    assert radii.min() > 3 and radii.max() < 18
    assert radii.max() - radii.min() > 5  # varied sizes


def test_global_brightness_does_not_reveal_the_class():
    images, labels, _ = make_dataset(400, 31)
    means = images.reshape(len(images), -1).mean(axis=1)
    diff = means[labels == 1].mean() - means[labels == 0].mean()
    # The nodules' added brightness is removed again: the class gap is small
    # next to the image-to-image spread (a fraction of one gray level).
    assert abs(diff) < 0.15 * means.std()
    assert abs(diff) < 2.0


def test_argument_validation():
    with pytest.raises(ValueError, match="label"):
        make_image(0, 2)
    with pytest.raises(TypeError, match="label"):
        make_image(0, 0.5)
    with pytest.raises(ValueError, match="rng_or_seed"):
        make_image(-1, 0)
    with pytest.raises(TypeError, match="rng_or_seed"):
        make_image("seed", 0)
    with pytest.raises(ValueError, match="n"):
        make_dataset(-1, 0)
    with pytest.raises(ValueError, match="balance"):
        make_dataset(4, 0, balance=1.5)
    with pytest.raises(ValueError, match="seed"):
        make_dataset(4, -3)
    with pytest.raises(ValueError, match="per_class"):
        write_testimgs("unused", per_class=0)


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, f"cannot read {path}"
    return img


def test_committed_testimgs_match_the_generator(tmp_path):
    rows = write_testimgs(tmp_path, TESTIMGS_SEED)
    assert len(rows) == 10 and sum(r["class"] == "lesion" for r in rows) == 5
    assert (TESTIMGS / "manifest.csv").read_text() == (tmp_path / "manifest.csv").read_text()
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    committed = sorted(p.relative_to(TESTIMGS).as_posix() for p in TESTIMGS.rglob("*.png"))
    assert made == committed
    for rel in made:
        fresh, kept = _read_gray(tmp_path / rel), _read_gray(TESTIMGS / rel)
        assert kept.dtype == np.uint8 and kept.shape == (SIZE, SIZE)  # 8-bit grayscale
        assert np.array_equal(fresh, kept), rel


def test_testimgs_manifest_and_masks():
    with open(TESTIMGS / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["file", "class", "mask"]
    for row in rows:
        img = _read_gray(TESTIMGS / row["file"])
        assert row["class"] in CLASSES
        if row["class"] == "normal":
            assert row["mask"] == ""
            continue
        assert row["mask"] == f"masks/{Path(row['file']).stem}_mask.png"
        mask = _read_gray(TESTIMGS / row["mask"])
        assert mask.shape == img.shape and set(np.unique(mask)) == {0, 255}
    assert str(TESTIMGS_SEED) in (TESTIMGS / "README.md").read_text()


def test_module_has_no_torch_dependency():
    # The generator must stay light: numpy + OpenCV only, in every module that draws the world.
    from cfcam.world import anatomy, markers, scenes, seeding, testimgs

    for module in (synthetic, anatomy, markers, scenes, seeding, testimgs):
        src = Path(module.__file__).read_text()
        assert "import torch" not in src and "from torch" not in src, module.__name__


def test_nodules_do_not_shift_the_mean_density():
    # On a flat density, adding nodules leaves the mean unchanged (to float
    # precision) while raising the nodule pixels: the compensation works.
    field = np.zeros((SIZE, SIZE), dtype=bool)
    field[40:180, 40:180] = True
    density = np.zeros((SIZE, SIZE), dtype=np.float32)
    mask = anatomy.add_nodules(np.random.default_rng(5), density, field, 100.0)
    assert mask.any()
    assert abs(float(density.mean())) < 1e-5
    assert density[mask].mean() > 0.08
    # Far from the nodules only the uniform, slightly negative compensation remains.
    far = ~cv2.dilate(mask.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)
    assert np.allclose(density[far], density[far][0]) and density[far][0] < 0
