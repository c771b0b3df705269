"""Notebook 04's checks (composition): the softmax over the kept channels and min-max normalisation."""

from __future__ import annotations

import numpy as np
import torch

from ...core.compose import coefficients, normalize
from .framework import Case, Mistake, Wrong, expect_array, generator, is_right, matches, to_array, verify

__all__ = ["check_normalize", "check_softmax_weights"]


def _np(x) -> np.ndarray:
    return x.double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _softmax(w, mask) -> np.ndarray:
    w, mask = _np(w), np.asarray(mask, dtype=bool)
    out = np.zeros_like(w)
    if not mask.any():
        return out
    e = np.exp(w[mask] - w[mask].max())
    out[mask] = e / e.sum()
    return out


SOFTMAX_MISTAKES = [
    Mistake("the softmax runs over the kept channels only, and dropped channels get 0.",
            lambda w, kept: _softmax(w, np.ones(len(w), dtype=bool))),
    Mistake("you set the dropped channels to 0 *after* a softmax over every channel, so the kept ones no longer "
            "sum to 1: take the softmax over the kept channels only.",
            lambda w, kept: _softmax(w, np.ones(len(w), dtype=bool)) * np.asarray(kept)),
    Mistake("the kept channels are the ones where `kept` is True: your softmax runs over the dropped ones.",
            lambda w, kept: _softmax(w, ~np.asarray(kept, dtype=bool))),
    Mistake("the exponentials are not divided by their sum over the kept channels.",
            lambda w, kept: np.exp(_np(w)) * np.asarray(kept)),
    Mistake("you divided the weights by their sum; a softmax divides their exponentials by the sum of the "
            "exponentials.", lambda w, kept: _np(w) * np.asarray(kept) / _np(w)[np.asarray(kept)].sum()),
    Mistake("this is the logarithm of the softmax; return the softmax itself.",
            lambda w, kept: np.where(kept, _np(w) - _np(w)[np.asarray(kept)].max()
                                     - np.log(np.exp(_np(w) - _np(w)[np.asarray(kept)].max())[np.asarray(kept)].sum()),
                                     0.0)),
]


def _minmax(m) -> np.ndarray:
    m = _np(m)
    return np.zeros_like(m) if m.max() == m.min() else (m - m.min()) / (m.max() - m.min())


def _flat_zero(cam, value) -> np.ndarray:
    """``value``, or zeros where the map is flat (a mistake model that handles flat maps right)."""
    return np.zeros_like(_np(cam)) if np.ptp(_np(cam)) == 0 else value


NORMALIZE_MISTAKES = [
    Mistake("your map looks transposed: rows and columns swapped. Keep the map's (H, W) order.",
            lambda cam: _minmax(cam).T),
    Mistake("subtract the map's minimum before dividing by the range (max - min).",
            lambda cam: _np(cam) / _np(cam).max()),
    Mistake("subtract the map's minimum first: you divided the map itself by its range.",
            lambda cam: _flat_zero(cam, _np(cam) / np.ptp(_np(cam)))),
    Mistake("after subtracting the minimum, divide by the range (max - min), not by the maximum.",
            lambda cam: _flat_zero(cam, (_np(cam) - _np(cam).min()) / _np(cam).max())),
    Mistake("min-max normalisation is not standardisation: subtract the minimum and divide by the range, not the "
            "mean and the standard deviation.", lambda cam: (_np(cam) - _np(cam).mean()) / _np(cam).std()),
    Mistake("dividing by the sum makes the values add up to 1; min-max normalisation makes the largest one 1.",
            lambda cam: (_np(cam) - _np(cam).min()) / (_np(cam) - _np(cam).min()).sum()),
    Mistake("clipping to [0, 1] is not normalising: subtract the minimum and divide by the range.",
            lambda cam: np.clip(_np(cam), 0, 1)),
    Mistake("a flat map (max == min) has no contrast: return all zeros, not ones.",
            lambda cam: np.ones_like(_np(cam)) if _np(cam).max() == _np(cam).min() else _minmax(cam)),
    Mistake("a flat map (max == min) has no contrast: return all zeros, not the map itself.",
            lambda cam: _np(cam) if _np(cam).max() == _np(cam).min() else _minmax(cam)),
]


def check_softmax_weights(fn) -> bool:
    """``fn(weights, kept)``: softmax of ``weights`` over the kept channels, 0 for the dropped ones."""
    g = generator(7)
    cases = [
        Case("8 weights of order 1e-3 (as at a real layer), channels 2 and 5 dropped",
              (1e-3 * torch.randn(8, generator=g),
               torch.tensor([True, True, False, True, True, False, True, True])), None),
        Case("4 weights, all kept", (torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.ones(4, dtype=torch.bool)), None),
        Case("large weights [1000, 999, 998, -5, 3] (exp overflows unless handled), channel 3 dropped",
              (torch.tensor([1000.0, 999.0, 998.0, -5.0, 3.0]), torch.tensor([True, True, True, False, True])),
              None),
    ]
    for case in cases:
        case.expected = coefficients(case.args[0].double(), case.args[1], "softmax").numpy()

    def compare(out, case):
        got = to_array(out)
        if is_right(got, case.expected, 1e-4, 1e-9):
            return
        w, kept = case.args[0].double().numpy(), case.args[1].numpy()
        c = w.shape[0]
        if got.shape == (int(kept.sum()),) and kept.sum() != c:
            raise Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "return one coefficient per channel: the softmax values for the kept channels and 0 for "
                         "the dropped ones.")
        if got.shape != (c,):
            raise Wrong(f"the result has shape {got.shape}, expected ({c},)")
        if not np.isfinite(got).all():
            raise Wrong("the result contains NaN or infinite values",
                         "the exponential of a large weight overflows: subtract the largest kept weight before "
                         "exponentiating (the softmax does not change), or use PyTorch's own softmax.")
        if (~kept).any() and np.abs(got[~kept]).max() > 0:
            sm_all = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
            if matches(got, sm_all):
                raise Wrong("dropped channels got a nonzero coefficient",
                             "the softmax runs over the kept channels only; dropped channels get 0.")
            raise Wrong("dropped channels got a nonzero coefficient", "dropped (noise) channels must get 0.")
        if not np.isclose(got[kept].sum(), 1.0, rtol=1e-5):
            raise Wrong(f"the kept coefficients sum to {got[kept].sum():.6g}, expected 1",
                         "a softmax divides each kept channel's exponential by the sum of the exponentials over the "
                         "kept channels only, so the kept coefficients add up to 1.")
        expect_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return verify(fn, "softmax over the kept channels", cases, compare,
                   "each kept channel's coefficient is the exponential of its weight divided by the sum of the "
                  "exponentials over the kept channels only; dropped channels get 0.",
                   "alpha is the softmax of the weights over the kept channels, 0 elsewhere.", SOFTMAX_MISTAKES)


def check_normalize(fn) -> bool:
    """``fn(cam)``: min-max normalisation of a ``(H, W)`` map to [0, 1]; a flat map becomes all zeros."""
    g = generator(8)
    cases = [
        Case("a 5 x 7 map with values between about 2 and 3", (2.0 + torch.rand(5, 7, generator=g),), None),
        Case("a 6 x 6 ReLU map with zeros and a maximum of 4",
              (torch.relu(4 * torch.randn(6, 6, generator=g)).clamp(max=4.0),), None),
        Case("a map with negative values, -3 .. 1", (torch.linspace(-3, 1, 12).reshape(3, 4),), None),
        Case("a flat 4 x 4 map (every value 2.5)", (torch.full((4, 4), 2.5),), None),
        Case("an all-zero 3 x 5 map", (torch.zeros(3, 5),), None),
    ]
    for case in cases:
        case.expected = normalize(case.args[0].double(), "minmax").double().numpy()

    def compare(out, case):
        got = to_array(out)
        if is_right(got, case.expected, 1e-5, 1e-6):
            return
        m = case.args[0].double().numpy()
        if got.shape != m.shape:
            raise Wrong(f"the result has shape {got.shape}, expected {m.shape}", "keep the map's shape.")
        flat = m.max() == m.min()
        if not np.isfinite(got).all():
            if flat:
                raise Wrong("a flat map gave NaN or infinite values",
                             "when max == min the range is 0: return all zeros instead of dividing by it.")
            raise Wrong("the result contains NaN or infinite values")
        if not flat and m.max() > 0 and matches(got, m / m.max()) and m.min() != 0:
            raise Wrong(f"the smallest value is {got.min():.4g}, expected 0",
                         "subtract the map's minimum before dividing by the range (max - min).")
        if flat and np.abs(got).max() > 0:
            raise Wrong(f"a flat map gave {got.flat[0]:.4g} everywhere, expected 0",
                         "a map without any contrast carries no information: return all zeros.")
        expect_array(got, case.expected, rtol=1e-5, atol=1e-6)

    return verify(fn, "min-max normalisation to [0, 1]", cases, compare,
                   "subtract the map's minimum, then divide by its range (max - min) so the values run from 0 to 1; "
                   "a flat map (range 0) becomes all zeros.",
                   "min-max normalisation maps the smallest value to 0 and the largest to 1 (a flat map to 0).",
                   NORMALIZE_MISTAKES)
