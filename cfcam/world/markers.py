"""The shortcut marker: a radiograph-style laterality token (a bright "L" or "R" in a box) outside the lungs.

Its randomness comes from a stream of its own, derived from the image's seed, so an image drawn without the
marker is byte-identical to what it always was, and the same image drawn with it differs only around the token.
"""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import SIZE
from .seeding import SeedLike, check_seed

__all__ = ["MARKER_SIZE", "MARKER_LUNG_GAP", "MARKER_BORDER", "marker_rng", "add_marker"]

#: Side of the marker's box in pixels (inclusive-exclusive range).
MARKER_SIZE = (15, 21)

#: The marker stays at least this many pixels from the lung field, so a map pointing at it (within the
#: pointing game's 15 px) is not mistaken for one pointing at a nodule, which lies inside the field.
MARKER_LUNG_GAP = 12

#: The marker's box stays this far from the image border: the demo model crops 16 px at the top and left
#: (its alignment shift), training flips images left-right and shifts them by up to 8 px.
MARKER_BORDER = 26

#: Spawn-key entry of the marker's own random stream (ASCII "MARK"), apart from every image's main stream.
_MARKER_STREAM = 0x4D41524B


def marker_rng(rng_or_seed: SeedLike) -> np.random.Generator:
    """The marker's own random stream for an image, leaving the image's main stream untouched.

    For an int seed or a ``SeedSequence`` it is the sequence with ``_MARKER_STREAM`` appended to its spawn
    key (pure: the same seed always gives the same marker).  For a ``Generator`` it is a child spawned from
    it (``Generator.spawn``), which does not advance the generator's own state.
    """
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed.spawn(1)[0]
    if isinstance(rng_or_seed, np.random.SeedSequence):
        seq = rng_or_seed
    else:
        seq = np.random.SeedSequence(check_seed(rng_or_seed))
    return np.random.default_rng(
        np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (_MARKER_STREAM,), pool_size=seq.pool_size)
    )


def _marker_glyph(rng: np.random.Generator) -> np.ndarray:
    """Density of one marker token on its own square canvas: a box with a bright letter "L" or "R".

    Lead letters stop X-rays, so the letter is the brightest thing on the film; the plastic holder shows as
    a fainter box with a crisp rim.  Every pixel of the canvas belongs to the token.
    """
    side = int(rng.integers(*MARKER_SIZE))
    letter = "LR"[int(rng.integers(2))]
    glyph = np.full((side, side), rng.uniform(0.06, 0.12), dtype=np.float32)  # the holder
    glyph[[0, -1], :] = glyph[:, [0, -1]] = rng.uniform(0.2, 0.3)  # its rim
    canvas = np.zeros((side, side), dtype=np.uint8)
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, side - 6, 2)
    (w, h), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(canvas, letter, ((side - w) // 2, (side + h) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2,
                cv2.LINE_8)
    glyph[canvas > 0] = rng.uniform(0.45, 0.6)  # the lead letter
    return glyph


def add_marker(rng: np.random.Generator, density: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Stamp a marker token outside the lung field (at least ``MARKER_LUNG_GAP`` px away); return its mask.

    The position is uniform over the places where the whole box fits inside the border margin and clear of
    the lungs: in practice over the mediastinum and spine between the lung fields, or over the abdomen below
    them (there always is room; a test draws many).
    """
    glyph = _marker_glyph(rng)
    side = glyph.shape[0]
    gap = cv2.distanceTransform((~field).astype(np.uint8), cv2.DIST_L2, 5)  # px from the lung field
    # A top-left corner (y, x) is allowed when the box's nearest pixel to the lungs is far enough: the
    # minimum of ``gap`` over the box, computed with an erosion by the box's footprint.
    clear = cv2.erode(gap, np.ones((side, side), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    ok = np.zeros((SIZE, SIZE), dtype=bool)
    hi = SIZE - MARKER_BORDER - side
    inside = slice(MARKER_BORDER, hi + 1)
    ok[inside, inside] = clear[inside, inside] >= MARKER_LUNG_GAP
    ys, xs = np.nonzero(ok)
    if len(ys) == 0:  # pragma: no cover - the anatomy's jitter always leaves room (a test draws many)
        raise RuntimeError("no room for the marker outside the lung fields")
    i = int(rng.integers(len(ys)))
    y0, x0 = int(ys[i]), int(xs[i])
    density[y0 : y0 + side, x0 : x0 + side] += glyph
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask
