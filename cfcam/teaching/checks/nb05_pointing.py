"""Notebook 05's (optional) check: the pointing game."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ...evaluation.metrics import pointing_hits
from .framework import Case, Mistake, Wrong, verify
from .inputs import disc_mask, peak_map

__all__ = ["check_pointing_game"]


def _box_mask(height: int, width: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[rows, cols] = True
    return mask


def _peak_at(height: int, width: int, y: int, x: int) -> np.ndarray:
    """A non-square map whose single maximum is at row ``y``, column ``x``."""
    yy, xx = np.mgrid[:height, :width]
    return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 6.0**2)).astype(np.float32)


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _distance_at(cam, mask, metric: str = "euclidean", pick=np.argmax, swap: bool = False) -> float:
    """The distance from the map's ``pick`` position to the nearest mask pixel, in the given metric."""
    cam, mask = _np(cam), _np(mask).astype(bool)
    y, x = np.unravel_index(int(pick(cam)), cam.shape)
    if swap:
        y, x = x, y
        if y >= mask.shape[0] or x >= mask.shape[1]:
            return np.inf
    if metric == "euclidean":
        return float(ndimage.distance_transform_edt(~mask)[y, x])
    if metric == "centre":
        cy, cx = np.argwhere(mask).mean(axis=0)
        return float(np.hypot(y - cy, x - cx))
    return float(ndimage.distance_transform_cdt(~mask, metric=metric)[y, x])


def _model(hint: str, rule) -> Mistake:
    return Mistake(hint, lambda cam, mask, tolerance=15: bool(rule(cam, mask, tolerance)))


POINTING_MISTAKES = [
    _model("rows and columns look swapped: the position of the maximum comes as (row, column), and the mask is "
           "indexed [row, column].", lambda c, m, t: _distance_at(c, m, swap=True) <= t),
    _model("a maximum exactly `tolerance` px from the lesion is *within* the tolerance: the boundary counts "
           "(less than or equal, not strictly less).", lambda c, m, t: _distance_at(c, m) < t),
    _model("your tolerance is a square: a maximum up to `tolerance` px away in rows and in columns counts, so "
           "diagonal distances are too generous. The tolerance is a Euclidean distance: a disc of radius "
           "`tolerance` around the lesion.", lambda c, m, t: _distance_at(c, m, "chessboard") <= t),
    _model("your tolerance is a diamond: you add the row and column distances (as repeated dilation with a "
           "cross does), which is too strict on diagonals. The tolerance is a Euclidean distance: a disc of "
           "radius `tolerance` around the lesion.", lambda c, m, t: _distance_at(c, m, "taxicab") <= t),
    _model("a maximum *near* the lesion also counts: within `tolerance` px of the nearest lesion pixel, not only "
           "inside the lesion.", lambda c, m, t: _distance_at(c, m) == 0),
    _model("use the `tolerance` argument, not a fixed 15 pixels.", lambda c, m, t: _distance_at(c, m) <= 15),
    _model("measure the distance to the *nearest* lesion pixel, not to the lesion's centre.",
           lambda c, m, t: _distance_at(c, m, "centre") <= t),
    _model("the pointing game looks at the map's largest value, not its smallest.",
           lambda c, m, t: _distance_at(c, m, pick=np.argmin) <= t),
]


def check_pointing_game(fn) -> bool:
    """``fn(cam, mask, tolerance=15)``: is the map's maximum within ``tolerance`` pixels (Euclidean) of the mask?

    Besides symmetric cases: non-square maps with the lesion away from the diagonal (so that swapping rows and
    columns gives the wrong answer), peaks exactly ``tolerance`` pixels away (a hit: "within" includes the
    boundary, so a strict ``<`` fails), and peaks diagonal to a corner of a box lesion (12 px down and 12 px
    right is 17 px away: a miss that a square tolerance calls a hit; 10 and 10 is 14.1 px: a hit that a
    diamond, rows plus columns, calls a miss).
    """
    mask = disc_mask(96, 40, 40, 8)
    wide = _box_mask(80, 128, slice(50, 61), slice(10, 21))  # lesion in the lower left of a wide image
    edge = _box_mask(96, 96, slice(40, 50), slice(20, 31))  # rows 40-49, columns 20-30
    cases = [
        Case("a wide 80 x 128 map, peak on a lesion in the lower left (row 55, column 15)",
             (_peak_at(80, 128, 55, 15), wide), None),
        Case("the same wide image, peak at row 15, column 55: far from the lesion (with rows and columns "
             "swapped it would land on it)", (_peak_at(80, 128, 15, 55), wide), None),
        Case("peak exactly 15 px right of the lesion's edge (distance = tolerance)",
             (_peak_at(96, 96, 45, 45), edge), None),
        Case("peak exactly 5 px right of the lesion's edge with tolerance=5", (_peak_at(96, 96, 45, 35), edge), None,
             {"tolerance": 5}),
        Case("peak 16 px right of the lesion's edge (just beyond the tolerance)", (_peak_at(96, 96, 45, 46), edge),
             None),
        Case("peak 12 px below and 12 px right of the box lesion's corner (17 px away, diagonally)",
             (_peak_at(96, 96, 61, 42), edge), None),
        Case("peak 10 px below and 10 px right of the box lesion's corner (14.1 px away, diagonally)",
             (_peak_at(96, 96, 59, 40), edge), None),
        Case("peak inside the lesion", (peak_map(96, 42, 38), mask), None),
        Case("peak 3 px outside the lesion's edge", (peak_map(96, 40, 51), mask), None),
        Case("peak 10 px outside the lesion's edge", (peak_map(96, 40, 58), mask), None),
        Case("peak 25 px outside the lesion's edge", (peak_map(96, 73, 40), mask), None),
        Case("peak 10 px outside the edge with tolerance=5", (peak_map(96, 40, 58), mask), None,
             {"tolerance": 5}),
        Case("a broad second bump far away, the maximum inside the lesion",
             (np.maximum(peak_map(96, 40, 40), 0.9 * peak_map(96, 80, 80)), mask), None),
    ]
    for case in cases:
        case.expected = bool(pointing_hits(case.args[0][None], case.args[1][None], case.kwargs.get("tolerance", 15))[0])

    def compare(out, case):
        if not isinstance(out, (bool, np.bool_)) and not (isinstance(out, (int, np.integer)) and out in (0, 1)) \
                and not (isinstance(out, torch.Tensor) and out.numel() == 1):
            raise Wrong(f"it returned a {type(out).__name__}, expected True or False")
        got = bool(out)
        if got != case.expected:
            raise Wrong(f"it returned {got}, expected {case.expected}")

    return verify(fn, "the pointing game", cases, compare,
                  "find the position of the map's maximum, then ask whether its Euclidean distance to the nearest "
                  "lesion pixel is at most `tolerance` (the lesion grown by a disc of that radius).",
                  "the pointing game asks whether the map's maximum falls on (or next to) the lesion.",
                  POINTING_MISTAKES)
