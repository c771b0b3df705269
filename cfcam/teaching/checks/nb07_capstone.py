"""Notebook 07's check (the capstone): CF-CAM's reference preset assembled from the learner's parts."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...core.config import make_config
from ...core.pipeline import cluster_filter_cam
from .framework import Case, Mistake, Wrong, expect_array, generator, is_right, to_array, verify
from .nb07_assembly import assemble

__all__ = ["check_cfcam"]


def _capstone_case(seed: int, channels: int, height: int, width: int, gradient_scale: float, dead: int = 0,
                   twins: bool = False, shift: float = 0.0) -> tuple:
    """Activations with four groups of similar channels (DBSCAN clusters), a few loners (DBSCAN noise),
    ``dead`` all-zero channels (at distance 0 from each other) and optionally a pair of near-identical
    channels (a cluster of two only when min_samples is 2)."""
    g = generator(seed)
    f64 = torch.float64
    prototypes = torch.relu(torch.randn(4, height, width, generator=g, dtype=f64))
    group = torch.arange(channels) % 4
    acts = torch.relu(prototypes[group] * (1 + 0.5 * torch.rand(channels, 1, 1, generator=g, dtype=f64))
                      + 0.15 * torch.randn(channels, height, width, generator=g, dtype=f64))
    parts = [acts, torch.relu(1.5 * torch.randn(channels // 8, height, width, generator=g, dtype=f64))]
    if twins:
        twin = torch.relu(torch.randn(1, height, width, generator=g, dtype=f64))
        parts.append(twin + 0.01 * torch.rand(2, height, width, generator=g, dtype=f64))
    parts.append(torch.zeros(dead, height, width, dtype=f64))
    acts = torch.cat(parts)
    acts = acts[torch.randperm(len(acts), generator=g)] - shift  # shift > 0: some negative values
    grads = gradient_scale * torch.randn(acts.shape, generator=g, dtype=f64)
    return acts, grads


def _package(preset: str = "reference", **overrides):
    config = make_config(preset, **overrides)
    return lambda acts, grads: cluster_filter_cam(acts, grads, config).cam


def _assembly(**mistake):
    return lambda acts, grads: assemble(acts, grads, **mistake)


CFCAM_MISTAKES = [
    Mistake("your map looks transposed: rows and columns swapped. Keep the activations' (h, w) order.",
            _assembly(transpose=True)),
    Mistake("the important split uses a strict comparison: a channel whose norm *equals* the 75th percentile is "
            "important too (at least, not more than).", _assembly(strict=True)),
    Mistake("eps leaves out every zero distance, not only the diagonal: dead (all-zero) channels are at distance "
            "0 from each other, and those pairs count.", _assembly(nonzero_eps=True)),
    Mistake("min_samples is rounded; the published code truncates (drops the fractional part).",
            _assembly(round_min_samples=True)),
    Mistake("the kernel is centred in the middle of the map, (h-1)/2; the published code centres it at h/2 and "
            "w/2.", _assembly(centre="middle")),
    Mistake("the filter pads the map by mirroring its border; the published code pads with zeros (conv2d's "
            "'same' padding).", _assembly(padding="reflect")),
    Mistake("the filter pads the map by repeating its border; the published code pads with zeros (conv2d's "
            "'same' padding).", _assembly(padding="replicate")),
    Mistake("the zero padding is split the other way: for even sizes 'same' padding puts the extra zero row and "
            "column after the map, not before.", _assembly(padding="before")),
    Mistake("the noise channels (label -1) took part in the softmax; they get weight 0.", _assembly(keep_noise=True)),
    Mistake("the ReLU of the weighted sum is missing.", _assembly(relu=False)),
    Mistake("this is the readme preset (no important split, bilateral filter, no softmax); the capstone asks for "
            "the published code, the reference preset.", _package("readme")),
    Mistake("the weights were not passed through the softmax over the kept channels.", _package(weighting="gap")),
    Mistake("the cluster gradients were not filtered: filter each cluster's mean gradient with the published "
            "kernel, then take the mean of the filtered map as the cluster's weight.", _package(filter="none")),
    Mistake("no channel was set aside as important: channels whose norm is at least the 75th percentile of the "
            "norms are never clustered and keep their mean gradient as weight.",
            _package(important_fraction=0.0)),
]


SPECS = [("77 channels of 7 x 7 (four groups, loners, a near-identical pair, 21 dead channels), gradients of "
          "order 10", dict(seed=21, channels=48, height=7, width=7, gradient_scale=10.0, dead=21, twins=True)),
         ("72 channels of 6 x 9 (not square, some activations negative), gradients of order 10",
          dict(seed=12, channels=64, height=6, width=9, gradient_scale=10.0, shift=0.2)),
         ("54 channels of 10 x 10 (an even size), gradients of order 10",
          dict(seed=13, channels=48, height=10, width=10, gradient_scale=10.0)),
         ("72 channels of 7 x 7, gradients of order 1e-3 (as at a real layer)",
          dict(seed=11, channels=64, height=7, width=7, gradient_scale=1e-3))]
"""The capstone's inputs: label and :func:`_capstone_case` arguments."""


@functools.lru_cache(maxsize=1)
def _cases() -> tuple[Case, ...]:
    """The capstone's cases and the package's maps for them, built once (the check runs twice per notebook)."""
    cases = []
    for label, spec in SPECS:
        acts, grads = _capstone_case(**spec)
        cases.append(Case(label, (acts, grads), cluster_filter_cam(acts, grads, "reference").cam.astype(np.float64)))
    return tuple(cases)


def check_cfcam(fn) -> bool:
    """``fn(activations, gradients)``: the published CF-CAM (``reference`` preset) map, ``(h, w)`` after ReLU.

    Compared with :func:`cfcam.cluster_filter_cam` ``(..., "reference").cam`` within 1e-4 of its maximum, on
    gradients of order 1e-3 (as at a real layer: the softmax is nearly uniform) and of order 10 (where it is
    not, so that a missing or misplaced step shows), on square and non-square maps of odd and even sizes, with
    dead (all-zero) channels, a near-identical pair of channels (a cluster only when min_samples is 2: 57
    channels are clustered, 5 % of them is 2.85), some negative activations (the ReLU matters), and a channel
    count (77) whose 75th percentile of the norms is one channel's norm exactly (the split's ``>=`` matters).
    """
    cases = list(_cases())

    def compare(out, case):
        got = to_array(out)
        expected = case.expected
        scale = max(float(np.abs(expected).max()), 1e-30)
        if is_right(got, expected, 0.0, 1e-4 * scale):
            return
        if got.shape != expected.shape:
            raise Wrong(f"the map has shape {got.shape}, expected {expected.shape}",
                        "return the (h, w) map before upsampling: ReLU of the weighted sum of the activation maps.")
        expect_array(got, expected, rtol=0.0, atol=1e-4 * scale)

    def same(got, model_out) -> bool:
        try:
            a, b = to_array(got), np.asarray(model_out, dtype=np.float64)
            scale = max(float(np.abs(b).max()), 1e-30)
            return a.shape == b.shape and bool(np.allclose(a, b, rtol=0.0, atol=1e-4 * scale))
        except Exception:
            return False

    return verify(fn, "CF-CAM from your parts", cases, compare,
                  "follow the steps of the reference preset in order: important split, eps and min_samples, DBSCAN "
                  "on the rest, each cluster's mean gradient through the published kernel, weights (mean of the "
                  "filtered map, or mean gradient for important channels), softmax over the kept channels, ReLU of "
                  "the weighted sum.",
                  "your CF-CAM reproduces the published implementation.", CFCAM_MISTAKES, same)
