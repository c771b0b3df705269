"""Scenes and data sets of the synthetic world: one image with its ground truth, and seeded sets of them.

Class 1 ("lesion") images carry 1 to 3 nodules inside the lung fields, and their mask marks exactly those
nodules; both classes share every other distribution. :func:`make_shortcut_dataset` adds the shortcut marker
at stated rates per class. The same seed gives byte-identical output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .anatomy import SIZE, add_distractors, add_nodules, draw_anatomy, render
from .markers import add_marker, marker_rng
from .seeding import SeedLike, as_generator, check_fraction, check_label, check_seed

__all__ = ["CLASSES", "Scene", "make_scene", "make_image", "make_dataset", "labels_and_seeds", "ShortcutSet",
           "make_shortcut_dataset"]

#: Class names, indexed by label: 0 = "normal", 1 = "lesion".
CLASSES = ("normal", "lesion")


@dataclass(frozen=True)
class Scene:
    """One generated image with its ground truth.

    ``image`` is the uint8 radiograph (224, 224); ``mask`` is True on nodule
    pixels (all False for normal images, and for lesion images drawn with
    ``nodule_contrast=0``); ``lungs`` is True on the visible lung fields where
    nodules may be placed; ``label`` is 0 or 1; ``marker_mask`` is True on the
    shortcut marker's pixels (all False when the image has no marker).
    """

    image: np.ndarray
    mask: np.ndarray
    lungs: np.ndarray
    label: int
    marker_mask: np.ndarray | None = None

    @property
    def has_marker(self) -> bool:
        return self.marker_mask is not None and bool(self.marker_mask.any())


def make_scene(rng_or_seed: SeedLike, label: int, marker: bool = False, nodule_contrast: float = 1.0) -> Scene:
    """Generate one image with its nodule mask and lung field (and, on request, the shortcut marker).

    ``rng_or_seed``: an int seed (>= 0), a ``SeedSequence`` or a numpy
    ``Generator`` (which is advanced).  ``label``: 0 = normal, 1 = lesion.
    ``marker``: also draw the laterality marker outside the lungs; its
    position and look come from a separate stream, so the rest of the image
    is exactly the image drawn without it.  ``nodule_contrast``: scales the
    nodules' brightness (default 1; 0 draws no visible nodule and leaves the
    mask empty); the same nodules are placed whatever it is.
    """
    label = check_label(label)
    if not isinstance(marker, (bool, np.bool_)):
        raise TypeError(f"marker must be True or False, got {marker!r}")
    contrast = check_fraction("nodule_contrast", nodule_contrast)
    mark_rng = marker_rng(rng_or_seed) if marker else None  # before the main stream is used
    rng = as_generator(rng_or_seed)
    density, field, px = draw_anatomy(rng)
    add_distractors(rng, density, field, px)
    if label == 1:
        mask = add_nodules(rng, density, field, px, contrast)
        if contrast == 0.0:
            mask[:] = False
    else:
        mask = np.zeros((SIZE, SIZE), dtype=bool)
    marker_mask = add_marker(mark_rng, density, field) if marker else np.zeros((SIZE, SIZE), dtype=bool)
    image = render(rng, density)
    return Scene(image=image, mask=mask, lungs=field, label=label, marker_mask=marker_mask)


def make_image(rng_or_seed: SeedLike, label: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate one radiograph and its nodule mask.

    ``rng_or_seed``: an int seed (>= 0), a ``SeedSequence`` or a numpy
    ``Generator`` (which is advanced).  ``label``: 0 = normal, 1 = lesion.
    Returns ``(image uint8 (224, 224), mask bool (224, 224))``; the mask is
    all False for normal images.
    """
    scene = make_scene(rng_or_seed, label)
    return scene.image, scene.mask


def make_dataset(n: int, seed: int, balance: float = 0.5):
    """Generate ``n`` images with labels and masks, reproducibly.

    ``n``: number of images (>= 0).  ``seed``: int seed (>= 0); each image
    gets its own child seed, so image ``i`` does not depend on the others.
    ``balance``: fraction of lesion images (default 0.5); exactly
    ``round(n * balance)`` images are lesions, in shuffled order.
    Returns ``(images (n, 224, 224) uint8, labels (n,) int64, masks (n, 224, 224) bool)``.
    """
    labels, image_seqs = labels_and_seeds(n, seed, balance)
    images = np.empty((len(labels), SIZE, SIZE), dtype=np.uint8)
    masks = np.empty((len(labels), SIZE, SIZE), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = make_image(image_seqs[i], int(label))
    return images, labels, masks


def labels_and_seeds(n, seed, balance):
    """Validate ``make_dataset``'s arguments; return the shuffled labels and one child seed per image."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seed = check_seed(seed)
    if not (0.0 <= float(balance) <= 1.0):
        raise ValueError(f"balance must be in [0, 1], got {balance}")
    n, seq = int(n), np.random.SeedSequence(seed)
    label_seq, *image_seqs = seq.spawn(n + 1)
    labels = np.zeros(n, dtype=np.int64)
    labels[: int(round(n * float(balance)))] = 1
    labels = np.random.default_rng(label_seq).permutation(labels)
    return labels, image_seqs


class ShortcutSet(NamedTuple):
    """A data set with the shortcut marker: images, labels, nodule masks, marker masks, and who has a marker."""

    images: np.ndarray  #: (N, 224, 224) uint8
    labels: np.ndarray  #: (N,) int64, 1 = lesion
    masks: np.ndarray  #: (N, 224, 224) bool, the nodules
    marker_masks: np.ndarray  #: (N, 224, 224) bool, the marker (all False where there is none)
    has_marker: np.ndarray  #: (N,) bool


def make_shortcut_dataset(n: int, seed: int, balance: float = 0.5, marker_if_lesion: float = 1.0,
                          marker_if_normal: float = 0.0, nodule_contrast: float = 1.0) -> ShortcutSet:
    """``make_dataset`` with the shortcut marker drawn on a stated share of each class.

    Image ``i`` is ``make_dataset(n, seed, balance)``'s image ``i`` (same labels, same anatomy and nodules)
    with the marker added when a draw from a separate stream falls below ``marker_if_lesion`` (lesion
    images) or ``marker_if_normal`` (normal images).  The defaults (1, 0) make the marker perfectly
    predictive, as in the ``demo-shortcut`` training set; equal rates draw it independently of the class;
    (1, 1) or (0, 0) put it on every image or none.  ``nodule_contrast`` scales the lesions' brightness
    (see :func:`make_scene`).  Returns a :class:`ShortcutSet`.
    """
    labels, image_seqs = labels_and_seeds(n, seed, balance)
    rates = np.array([check_fraction("marker_if_normal", marker_if_normal),
                      check_fraction("marker_if_lesion", marker_if_lesion)])
    contrast = check_fraction("nodule_contrast", nodule_contrast)
    draws = marker_rng(np.random.SeedSequence(check_seed(seed))).random(len(labels))
    has_marker = draws < rates[labels]
    out = ShortcutSet(
        images=np.empty((len(labels), SIZE, SIZE), dtype=np.uint8), labels=labels,
        masks=np.empty((len(labels), SIZE, SIZE), dtype=bool),
        marker_masks=np.empty((len(labels), SIZE, SIZE), dtype=bool), has_marker=has_marker,
    )
    for i, label in enumerate(labels):
        scene = make_scene(image_seqs[i], int(label), marker=bool(has_marker[i]), nodule_contrast=contrast)
        out.images[i], out.masks[i], out.marker_masks[i] = scene.image, scene.mask, scene.marker_mask
    return out
