"""Notebook 08's check (a model that cheats): the energy of a map inside a mask."""

from __future__ import annotations

import numpy as np

from ...evaluation.shortcut import energy_in_mask
from .framework import Case, Wrong, to_scalar, verify
from .inputs import disc_mask, peak_map

__all__ = ["check_energy_in_mask"]


def check_energy_in_mask(fn) -> bool:
    """``fn(cam, mask)``: the share of the map's total value that lies inside the mask (0 for an all-zero map)."""
    mask = disc_mask(64, 20, 20, 6)
    marker = np.zeros((64, 64), dtype=bool)
    marker[44:56, 44:56] = True
    two_bumps = peak_map(64, 20, 20) + 2.0 * peak_map(64, 50, 50)
    cases = [
        Case("a bump on the lesion and a twice as bright one on the marker; mask = the lesion",
             (two_bumps, mask), None),
        Case("the same map; mask = the marker", (two_bumps, marker), None),
        Case("a map that is 7 everywhere inside the lesion and 0 elsewhere", (7.0 * mask.astype(np.float32), mask),
              None),
        Case("a map that is 1 everywhere (a flat map)", (np.ones((64, 64), np.float32), marker), None),
        Case("an all-zero map", (np.zeros((64, 64), np.float32), mask), None),
    ]
    for case in cases:
        case.expected = float(energy_in_mask(case.args[0][None], case.args[1][None])[0])

    def compare(out, case):
        got = to_scalar(out, "a number between 0 and 1")
        if np.isfinite(got) and abs(got - case.expected) <= 1e-6:
            return
        cam, m = case.args[0].astype(np.float64), case.args[1]
        if not np.isfinite(got):
            raise Wrong(f"it returned {got}, expected {case.expected:.4g}",
                         "an all-zero map has total 0: return 0 instead of dividing by it." if cam.sum() == 0 else None)
        if abs(got - m.mean()) <= 1e-6 or (m.any() and abs(got - cam[m].mean()) <= 1e-6):
            raise Wrong(f"it returned {got:.4g}, expected {case.expected:.4g}",
                         "sum the map's values inside the mask and divide by the sum of the map over the whole image "
                         "(not a mean, and not the mask's share of the image).")
        raise Wrong(f"it returned {got:.4g}, expected {case.expected:.4g}")

    return verify(fn, "the energy in a mask", cases, compare,
                   "divide the sum of the map inside the mask by the sum of the whole map; when the whole map sums "
                   "to 0, return 0.",
                   "the energy in a mask is the share of the map's total that falls inside it.")
