"""Notebook 03's checks (gradient filtering): a cluster's mean gradient and the published kernel."""

from __future__ import annotations

import numpy as np
import torch

from ...core.filtering import reference_kernels
from ...core.pipeline import cluster_mean_gradients
from .framework import Case, Mistake, Wrong, expect_array, generator, is_right, matches, to_array, verify

__all__ = ["check_cluster_mean_gradient", "check_reference_kernel", "kernel_with"]


def _np(x) -> np.ndarray:
    return x.double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _members(g, labels, j) -> np.ndarray:
    return _np(g)[np.asarray(labels) == j]


MEAN_MISTAKES = [
    Mistake("your map looks transposed: rows and columns swapped. Keep the gradients' (h, w) order.",
            lambda g, labels, j: _members(g, labels, j).mean(0).T),
    Mistake("you averaged every channel; use only the channels whose label equals `cluster`.",
            lambda g, labels, j: _np(g).mean(0)),
    Mistake("take the mean of the cluster's gradient maps, not their sum.",
            lambda g, labels, j: _members(g, labels, j).sum(0)),
    Mistake("take the mean of the cluster's gradient maps, not their median.",
            lambda g, labels, j: np.median(_members(g, labels, j), axis=0)),
    Mistake("`cluster` is a label, not a channel index: select the channels whose label equals it.",
            lambda g, labels, j: _np(g)[j]),
]


def kernel_with(m, s=5.0, r=0.1, centre="half", about="mean", factor=2.0, swap=False, use_range=True, norm="sum",
            transpose=False):
    """The published kernel, or one of its typical mistakes (the options)."""
    m = _np(m)
    h, w = m.shape
    ch, cw = {"half": (h / 2, w / 2), "middle": ((h - 1) / 2, (w - 1) / 2), "floor": (h // 2, w // 2)}[centre]
    x = np.arange(h)[:, None] - (w / 2 if swap else ch)
    y = np.arange(w)[None, :] - (h / 2 if swap else cw)
    k = np.exp(-(x**2 + y**2) / (factor * s**2))
    if use_range:
        k = k * np.exp(-((m - (m.mean() if about == "mean" else 0.0)) ** 2) / (factor * r**2))
    k = {"sum": k / (k.sum() + 1e-6), "max": k / k.max(), "none": k}[norm]
    return k.T if transpose else k


def _kernel_mistake(hint: str, **options) -> Mistake:
    return Mistake(hint, lambda m, spatial_sigma=5.0, range_sigma=0.1: kernel_with(m, spatial_sigma, range_sigma,
                                                                                **options))


KERNEL_MISTAKES = [
    _kernel_mistake("your kernel is centred in the middle of the map, (h-1)/2 and (w-1)/2; the published code "
                    "centres the spatial term at h/2 and w/2, half a pixel off the middle for odd sizes: "
                    "reproduce that.", centre="middle"),
    _kernel_mistake("your kernel is centred on a whole pixel (h/2 rounded down); the published code uses h/2 and "
                    "w/2 as they are, half a pixel off for odd sizes.", centre="floor"),
    _kernel_mistake("rows and columns are swapped in the spatial term: x runs over the h rows (centred at h/2), "
                    "y over the w columns (centred at w/2).", swap=True),
    _kernel_mistake("your kernel looks transposed: rows and columns swapped. It must have the map's (h, w) "
                    "shape and order.", transpose=True),
    _kernel_mistake("the kernel is not normalised: divide S * R by its sum (plus 1e-6).", norm="none"),
    _kernel_mistake("the kernel is scaled to a maximum of 1; the published one is divided by its sum (plus 1e-6).",
                    norm="max"),
    _kernel_mistake("the range term R is missing: multiply the spatial Gaussian S by a Gaussian of each value's "
                    "difference from the map's mean.", use_range=False),
    _kernel_mistake("the range term compares each value with 0; the published one compares it with the map's "
                    "global mean.", about="zero"),
    _kernel_mistake("a Gaussian with standard deviation sigma divides the squared distance by 2 sigma^2, not by "
                    "sigma^2.", factor=1.0),
    Mistake("the kernel uses spatial_sigma=5.0 and range_sigma=0.1 whatever the arguments say: use the arguments.",
            lambda m, spatial_sigma=5.0, range_sigma=0.1: kernel_with(m)),
]


def check_cluster_mean_gradient(fn) -> bool:
    """``fn(gradients, labels, cluster)``: the mean gradient map over the channels labelled ``cluster``."""
    g = generator(5)
    grads = torch.randn(10, 4, 6, generator=g)
    labels = np.array([1, -2, 0, 1, -1, 2, 1, 0, -1, -2])
    cases = [
        Case("10 gradient maps of 4 x 6, cluster 1 (channels 0, 3 and 6)", (grads, labels, 1), None),
        Case("the same maps, cluster 0 (channels 2 and 7)", (grads, labels, 0), None),
        Case("the same maps, cluster 2 (a single channel, 5)", (grads, labels, 2), None),
        Case("6 small gradient maps of 7 x 7 (order 1e-3), cluster 0",
              (1e-3 * torch.randn(6, 7, 7, generator=g), np.array([0, 0, -1, 1, 0, 1]), 0), None),
    ]
    for case in cases:
        case.expected = cluster_mean_gradients(case.args[0].double(), case.args[1])[case.args[2]].numpy()

    def compare(out, case):
        got = to_array(out)
        if is_right(got, case.expected, 1e-4, 1e-9):
            return
        grads, labels, j = case.args[0].double().numpy(), case.args[1], case.args[2]
        members = grads[labels == j]
        h, w = grads.shape[1:]
        if got.shape == members.shape and members.shape[0] > 1:
            raise Wrong(f"the result has shape {got.shape}, expected ({h}, {w})",
                         "you selected the cluster's channels; now average them into one map.")
        if got.shape == (members.shape[0],) or got.size == 1:
            raise Wrong(f"the result has shape {got.shape}, expected ({h}, {w})",
                         "average across the cluster's channels only, not over positions: the result is a map.")
        if matches(got, grads.mean(0)):
            raise Wrong("you averaged every channel",
                         "use only the channels whose label equals `cluster`.")
        if matches(got, members.sum(0)) and members.shape[0] > 1:
            raise Wrong(f"the values are {members.shape[0]} times too large",
                         "take the mean of the cluster's gradient maps, not their sum.")
        expect_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return verify(fn, "the mean gradient map of one cluster", cases, compare,
                   "select the gradient maps of the channels whose label is `cluster` and average them, "
                   "position by position, into one h x w map.",
                   "a cluster's mean gradient M_j is the average of its channels' gradient maps.", MEAN_MISTAKES)


def check_reference_kernel(fn) -> bool:
    """``fn(mean_map, spatial_sigma=5.0, range_sigma=0.1)``: the published kernel ``K = S*R / (sum(S*R)+1e-6)``."""
    g = generator(6)
    cases = [
        Case("a 7 x 7 map with values of order 0.1 (odd size)", (0.1 * torch.randn(7, 7, generator=g),), None),
        Case("a 6 x 9 map (not square) with values of order 0.1",
              (0.1 * torch.randn(6, 9, generator=g) + 0.05,), None),
        Case("a 14 x 14 map of small gradients (order 1e-3)", (1e-3 * torch.randn(14, 14, generator=g),), None),
        Case("a 5 x 8 map with spatial_sigma=2.0 and range_sigma=0.05",
              (0.05 * torch.randn(5, 8, generator=g),), None, {"spatial_sigma": 2.0, "range_sigma": 0.05}),
        Case("a constant 4 x 4 map", (torch.full((4, 4), 0.3),), None),
    ]

    for case in cases:
        case.expected = reference_kernels(case.args[0].double()[None], case.kwargs.get("spatial_sigma", 5.0),
                                          case.kwargs.get("range_sigma", 0.1))[0].numpy()

    def compare(out, case):
        got = to_array(out)
        m = case.args[0].double().numpy()
        s, r = case.kwargs.get("spatial_sigma", 5.0), case.kwargs.get("range_sigma", 0.1)
        h, w = m.shape
        if got.shape != m.shape:
            raise Wrong(f"the result has shape {got.shape}, expected {m.shape}",
                         "the kernel is as large as the map: one weight per position (x, y).")
        if np.isclose(got, case.expected, rtol=1e-4, atol=1e-9).all():
            return
        if matches(got, kernel_with(m, s, r, centre="middle"), rtol=1e-4):
            raise Wrong("the kernel is centred in the middle of the map, (h-1)/2, (w-1)/2",
                         "the published code centres the spatial term at (h/2, w/2), half a pixel off the middle "
                         "for odd sizes; reproduce that.")
        if h != w and matches(got, kernel_with(m, s, r, swap=True), rtol=1e-4):
            raise Wrong("rows and columns are swapped",
                         "x runs over the h rows (centred at h/2), y over the w columns (centred at w/2).")
        if matches(got, kernel_with(m, s, r, norm="none"), rtol=1e-4):
            raise Wrong(f"the kernel is not normalised (it sums to {got.sum():.4g})",
                         "divide S * R by its sum (plus 1e-6).")
        if matches(got, kernel_with(m, s, r, use_range=False), rtol=1e-4):
            raise Wrong("the range term R is missing",
                         "multiply the spatial Gaussian S by a Gaussian of each value's difference from the map's "
                         "mean.")
        if (s, r) != (5.0, 0.1) and matches(got, kernel_with(m), rtol=1e-4):
            raise Wrong("the kernel uses spatial_sigma=5.0 and range_sigma=0.1 whatever the arguments say",
                         "use the `spatial_sigma` and `range_sigma` arguments.")
        if np.isfinite(got).all() and not np.isclose(got.sum(), case.expected.sum(), rtol=1e-3):
            raise Wrong(f"the kernel sums to {got.sum():.4g}, expected {case.expected.sum():.4g}",
                         "normalise: divide S * R by its sum (plus 1e-6), so the weights add up to (almost) 1.")
        expect_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return verify(fn, "the published kernel K = S * R / (sum(S * R) + 1e-6)", cases, compare,
                   "S is a Gaussian of the distance from (h/2, w/2) with sigma = spatial_sigma; R compares each value "
                   "of the map with the map's global mean, with sigma = range_sigma; the kernel is S times R, "
                   "divided by its sum (plus 1e-6) so that it adds up to (almost) 1.",
                   "the published kernel is a centred Gaussian times a range term around the map's mean, normalised.",
                   KERNEL_MISTAKES)
