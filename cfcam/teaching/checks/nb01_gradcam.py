"""Notebook 01's checks (Grad-CAM): the channel weights and the map."""

from __future__ import annotations

import numpy as np
import torch

from ...core.compose import gradcam_weights, weighted_relu_sum
from .framework import Case, Mistake, Wrong, expect_array, generator, is_right, matches, to_array, verify

__all__ = ["check_gradcam_map", "check_gradcam_weights"]


def _np(x) -> np.ndarray:
    return x.double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


WEIGHT_MISTAKES = [
    Mistake("you summed each gradient map; Grad-CAM takes its average over the h*w positions (global average "
            "pooling).", lambda g: _np(g).sum(axis=(1, 2))),
    Mistake("you took each gradient map's largest value; Grad-CAM takes its average (global *average* pooling).",
            lambda g: _np(g).max(axis=(1, 2))),
    Mistake("you kept only the positive gradients (or their size) before averaging; Grad-CAM averages the "
            "gradient as it is, sign included.", lambda g: np.maximum(_np(g), 0).mean(axis=(1, 2))),
    Mistake("you averaged the size of the gradients; Grad-CAM averages the gradient as it is, sign included.",
            lambda g: np.abs(_np(g)).mean(axis=(1, 2))),
    Mistake("you averaged over one spatial dimension only; average over both (rows and columns).",
            lambda g: _np(g).mean(axis=2)),
]

MAP_MISTAKES = [
    Mistake("your map looks transposed: rows and columns swapped. Keep the activations' (h, w) order.",
            lambda a, w: np.maximum(np.einsum("chw,c->hw", _np(a), _np(w)), 0).T),
    Mistake("the ReLU is missing: Grad-CAM keeps only the positive part of the weighted sum.",
            lambda a, w: np.einsum("chw,c->hw", _np(a), _np(w))),
    Mistake("you averaged the weighted channels; Grad-CAM adds them up (a sum).",
            lambda a, w: np.maximum(np.einsum("chw,c->hw", _np(a), _np(w)), 0) / _np(a).shape[0]),
    Mistake("the ReLU is applied to each weighted channel; apply it once, to the weighted sum.",
            lambda a, w: np.maximum(_np(w)[:, None, None] * _np(a), 0).sum(0)),
    Mistake("the ReLU is applied to the weights; apply it once, to the weighted sum of the maps.",
            lambda a, w: np.einsum("chw,c->hw", _np(a), np.maximum(_np(w), 0))),
    Mistake("you took the size of the weighted sum; Grad-CAM sets its negative part to zero (ReLU).",
            lambda a, w: np.abs(np.einsum("chw,c->hw", _np(a), _np(w)))),
]


def check_gradcam_weights(fn) -> bool:
    """``fn(gradients)``: gradients ``(C, h, w)`` tensor -> Grad-CAM weights ``(C,)``, one per channel."""
    g = generator(1)
    cases = [
        Case("random gradients, 4 channels of 3 x 5", (torch.randn(4, 3, 5, generator=g),), None),
        Case("gradients constant over each map (as at layer4[-1] of a GAP network), 6 channels of 7 x 7",
              (torch.randn(6, 1, 1, generator=g).expand(6, 7, 7).contiguous(),), None),
        Case("small gradients (order 1e-3), 8 channels of 2 x 6", (1e-3 * torch.randn(8, 2, 6, generator=g),), None),
        Case("gradients of one sign per channel (a channel's maximum is far from its mean), 5 channels of 6 x 4",
              ((torch.rand(5, 6, 4, generator=g) ** 3) * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])[:, None, None],),
              None),
    ]
    for case in cases:
        case.expected = gradcam_weights(case.args[0].double()).numpy()

    def compare(out, case):
        got = to_array(out)
        if is_right(got, case.expected, 1e-4, 1e-9):
            return
        grads = case.args[0].double().numpy()
        c, h, w = grads.shape
        if got.shape == (h, w) or got.shape == (c, h) or got.shape == (c, w):
            raise Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "average over the two *spatial* dimensions (the last two), keeping one number per channel.")
        if got.shape == (c, 1, 1):
            raise Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "the values may be right, but return one number per channel: shape (C,), not (C, 1, 1).")
        if got.size == 1 and c > 1:
            raise Wrong("the result is a single number, expected one weight per channel",
                         "average over the spatial positions only, not over the channels too.")
        if matches(got, grads.sum(axis=(1, 2))) and h * w > 1:
            raise Wrong("the values are h*w times too large",
                         "you summed the gradient map; Grad-CAM takes its average (global average pooling).")
        expect_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return verify(fn, "average each channel's gradient over its h*w positions", cases, compare,
                   "Grad-CAM's weight for channel k is one number: the average of the gradient map G_k over all "
                   "its h*w positions (global average pooling).",
                   "Grad-CAM's weights are the global average pool of the gradients, one per channel.",
                   WEIGHT_MISTAKES)


def check_gradcam_map(fn) -> bool:
    """``fn(activations, weights)``: ``(C, h, w)`` and ``(C,)`` -> ``ReLU(sum_k w_k A_k)``, ``(h, w)``."""
    g = generator(2)
    acts = torch.relu(torch.randn(5, 4, 6, generator=g))
    cases = [
        Case("5 non-negative activation maps of 4 x 6, weights of both signs",
              (acts, torch.tensor([0.9, -1.2, 0.4, -0.3, 0.7])), None),
        Case("3 activation maps of 2 x 3, all weights positive",
              (torch.relu(torch.randn(3, 2, 3, generator=g)) + 0.1, torch.tensor([0.2, 0.5, 0.1])), None),
        Case("the same 5 maps, all weights negative (the map must then be all zero)",
              (acts, -torch.tensor([0.3, 0.1, 0.2, 0.5, 0.4])), None),
        Case("4 square 5 x 5 maps (not symmetric), weights of both signs",
              (torch.relu(torch.randn(4, 5, 5, generator=g)), torch.tensor([1.1, -0.6, 0.8, 0.3])), None),
        Case("4 maps of 3 x 5 with negative values too (activations taken before a ReLU), weights of both signs",
              (torch.randn(4, 3, 5, generator=g), torch.tensor([0.7, -0.9, 0.5, -0.2])), None),
    ]
    for case in cases:
        case.expected = weighted_relu_sum(case.args[0].double(), case.args[1].double()).numpy()

    def compare(out, case):
        got = to_array(out)
        if is_right(got, case.expected, 1e-4, 1e-7):
            return
        a = case.args[0].double().numpy()
        w = case.args[1].double().numpy()
        c, h, wd = a.shape
        raw = np.einsum("chw,c->hw", a, w)
        if got.shape == (c, h, wd):
            raise Wrong(f"the result has shape {got.shape}, expected ({h}, {wd})",
                         "after weighting each channel, add the channels up: the map has one value per position.")
        if got.shape == (h, wd):
            if (got < 0).any() and matches(got, raw):
                raise Wrong("the map has negative values",
                             "Grad-CAM keeps only positive evidence: apply ReLU to the weighted sum.")
            if matches(got, np.maximum(raw, 0) / c):
                raise Wrong(f"the values are {c} times too small",
                             "Grad-CAM adds the weighted channels up (a sum), it does not average them.")
            if matches(got, (np.maximum(w[:, None, None] * a, 0)).sum(0)):
                raise Wrong("the values are too large where some terms are negative",
                             "apply ReLU once, to the weighted sum, not to each weighted channel.")
            peak = np.maximum(raw, 0).max()
            if peak > 0 and matches(got, np.maximum(raw, 0) / peak) and not np.isclose(peak, 1.0):
                raise Wrong("the map is scaled to a maximum of 1",
                             "return the raw ReLU(sum) map here; scaling to [0, 1] comes later (notebook 04).")
        expect_array(got, case.expected, rtol=1e-4, atol=1e-7)

    return verify(fn, "ReLU of the weighted sum of the activation maps", cases, compare,
                   "multiply each activation map A_k by its weight w_k, add the C weighted maps up, then keep only "
                   "the positive part (ReLU). The result is one h x w map.",
                   "the Grad-CAM map is ReLU(sum_k w_k A_k), an h x w map.", MAP_MISTAKES)
