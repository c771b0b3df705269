"""Notebook 08's check (a model that cheats): the energy of a map inside a mask."""

from __future__ import annotations

import numpy as np
import torch

from ...evaluation.shortcut import energy_in_mask
from .framework import Case, Mistake, Wrong, to_scalar, verify
from .inputs import disc_mask, peak_map

__all__ = ["check_energy_in_mask"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _energy(cam, mask) -> float:
    cam, mask = _np(cam), _np(mask).astype(bool)
    return float(cam[mask].sum() / cam.sum()) if cam.sum() > 0 else 0.0


def _minmax(cam) -> np.ndarray:
    cam = _np(cam)
    return np.zeros_like(cam) if np.ptp(cam) == 0 else (cam - cam.min()) / np.ptp(cam)


ENERGY_MISTAKES = [
    Mistake("your map looks transposed against the mask: rows and columns swapped. Use both in their (H, W) "
            "order.", lambda cam, mask: _energy(_np(cam).T, mask)),
    Mistake("this is the energy *outside* the mask: sum the map where the mask is True.",
            lambda cam, mask: _energy(cam, ~_np(mask).astype(bool)) if _np(cam).sum() > 0 else 0.0),
    Mistake("sum the map's values inside the mask and divide by the sum over the whole image, not by the sum "
            "outside the mask.", lambda cam, mask: float(_np(cam)[_np(mask) > 0].sum() / _np(cam)[_np(mask) == 0].sum())
            if _np(cam)[_np(mask) == 0].sum() > 0 else 0.0),
    Mistake("this is the mean of the map inside the mask; the energy is the *sum* inside divided by the sum over "
            "the whole image.", lambda cam, mask: float(_np(cam)[_np(mask) > 0].mean())),
    Mistake("this is the mask's share of the image; the energy weighs each pixel by the map's value.",
            lambda cam, mask: float(_np(mask).mean())),
    Mistake("compare sums, not the largest values: the sum inside the mask over the sum of the whole map.",
            lambda cam, mask: float(_np(cam)[_np(mask) > 0].max() / _np(cam).max()) if _np(cam).max() > 0 else 0.0),
    Mistake("use the map as it is: rescaling it to [0, 1] first (subtracting its minimum) changes the shares.",
            lambda cam, mask: _energy(_minmax(cam), mask)),
]


def check_energy_in_mask(fn) -> bool:
    """``fn(cam, mask)``: the share of the map's total value that lies inside the mask (0 for an all-zero map)."""
    lesion = disc_mask(64, 18, 44, 6)  # upper right: off the diagonal, so a transposed map misses it
    marker = np.zeros((64, 64), dtype=bool)
    marker[44:56, 6:18] = True  # lower left
    two_bumps = peak_map(64, 18, 44) + 2.0 * peak_map(64, 50, 12)
    raised = 0.5 + peak_map(64, 18, 44)  # never 0: rescaling it first changes the shares
    cases = [
        Case("a bump on the lesion (upper right) and a twice as bright one on the marker (lower left); mask = the "
             "lesion", (two_bumps, lesion), None),
        Case("the same map; mask = the marker", (two_bumps, marker), None),
        Case("a bump on the lesion on top of a constant 0.5; mask = the lesion", (raised, lesion), None),
        Case("a map that is 7 everywhere inside the lesion and 0 elsewhere", (7.0 * lesion.astype(np.float32), lesion),
             None),
        Case("a map that is 1 everywhere (a flat map)", (np.ones((64, 64), np.float32), marker), None),
        Case("an all-zero map", (np.zeros((64, 64), np.float32), lesion), None),
    ]
    for case in cases:
        case.expected = float(energy_in_mask(case.args[0][None], case.args[1][None])[0])

    def compare(out, case):
        got = to_scalar(out, "a number between 0 and 1")
        if np.isfinite(got) and abs(got - case.expected) <= 1e-6:
            return
        cam = case.args[0].astype(np.float64)
        if not np.isfinite(got):
            raise Wrong(f"it returned {got}, expected {case.expected:.4g}",
                        "an all-zero map has total 0: return 0 instead of dividing by it." if cam.sum() == 0 else None)
        raise Wrong(f"it returned {got:.4g}, expected {case.expected:.4g}")

    def same(got, model) -> bool:
        try:
            return abs(to_scalar(got, "a number") - float(model)) <= 1e-6
        except Exception:
            return False

    return verify(fn, "the energy in a mask", cases, compare,
                  "divide the sum of the map inside the mask by the sum of the whole map; when the whole map sums "
                  "to 0, return 0.",
                  "the energy in a mask is the share of the map's total that falls inside it.", ENERGY_MISTAKES, same)
