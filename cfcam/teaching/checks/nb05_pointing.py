"""Notebook 05's (optional) check: the pointing game."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ...evaluation.metrics import pointing_hits
from .framework import Case, Wrong, verify
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


def check_pointing_game(fn) -> bool:
    """``fn(cam, mask, tolerance=15)``: is the map's maximum within ``tolerance`` pixels of the mask?

    Besides symmetric cases, non-square maps with the lesion away from the diagonal (so that swapping rows and
    columns gives the wrong answer) and peaks exactly ``tolerance`` pixels away (a hit: "within" includes the
    boundary, so a strict ``<`` fails).
    """
    mask = disc_mask(96, 40, 40, 8)
    wide = _box_mask(80, 128, slice(50, 61), slice(10, 21))  # lesion in the lower left of a wide image
    edge = _box_mask(96, 96, slice(40, 50), slice(20, 31))  # right edge at column 30
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
        Case("peak inside the lesion", (peak_map(96, 42, 38), mask), None),
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
            cam, lesion = case.args
            tolerance = case.kwargs.get("tolerance", 15)
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            distance = ndimage.distance_transform_edt(~lesion)
            hint = None
            if x < lesion.shape[0] and y < lesion.shape[1] and bool(distance[x, y] <= tolerance) == got:
                hint = ("rows and columns look swapped: np.unravel_index returns (row, column) = (y, x), and "
                        "arrays are indexed [row, column].")
            elif distance[y, x] == tolerance and not got:
                hint = (f"the maximum is exactly {tolerance} px from the lesion, which is *within* the tolerance: "
                        "compare with <=, not <.")
            elif case.kwargs.get("tolerance") is not None:
                hint = "use the `tolerance` argument, not a fixed 15 pixels."
            raise Wrong(f"it returned {got}, expected {case.expected}", hint)

    return verify(fn, "the pointing game", cases, compare,
                   "find the position of the map's maximum, then ask whether it lies inside the lesion mask grown "
                   "by `tolerance` pixels (or: is its distance to the nearest lesion pixel <= tolerance?).",
                   "the pointing game asks whether the map's maximum falls on (or next to) the lesion.")
