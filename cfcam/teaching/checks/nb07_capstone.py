"""Notebook 07's check (the capstone): CF-CAM's reference preset assembled from the learner's parts."""

from __future__ import annotations

import numpy as np
import torch

from ...core.config import make_config
from ...core.pipeline import cluster_filter_cam
from .framework import Case, Wrong, expect_array, generator, is_right, matches, to_array, verify

__all__ = ["check_cfcam"]


def _capstone_case(seed: int, channels: int, size: int, gradient_scale: float) -> tuple:
    """Activations with four groups of similar channels (DBSCAN clusters) and a few loners (DBSCAN noise)."""
    g = generator(seed)
    prototypes = torch.relu(torch.randn(4, size, size, generator=g, dtype=torch.float64))
    group = torch.arange(channels) % 4
    acts = torch.relu(prototypes[group] * (1 + 0.5 * torch.rand(channels, 1, 1, generator=g, dtype=torch.float64))
                      + 0.15 * torch.randn(channels, size, size, generator=g, dtype=torch.float64))
    loners = torch.relu(1.5 * torch.randn(channels // 8, size, size, generator=g, dtype=torch.float64))
    acts = torch.cat([acts, loners])  # unlike any group: DBSCAN noise
    grads = gradient_scale * torch.randn(acts.shape, generator=g, dtype=torch.float64)
    return acts, grads


def check_cfcam(fn) -> bool:
    """``fn(activations, gradients)``: the published CF-CAM (``reference`` preset) map, ``(h, w)`` after ReLU.

    Compared with :func:`cfcam.cluster_filter_cam` ``(..., "reference").cam`` within 1e-4 of its maximum, on
    gradients of order 1e-3 (as at a real layer: the softmax is nearly uniform) and of order 1 (where it is
    not, so a missing or misplaced softmax shows).
    """
    specs = [("72 channels of 7 x 7 (four groups and 8 loners), gradients of order 1e-3", 11, 64, 7, 1e-3),
             ("72 channels of 7 x 7, gradients of order 1 (the softmax is far from uniform)", 12, 64, 7, 1.0),
             ("54 channels of 10 x 10 (an even size), gradients of order 0.1", 13, 48, 10, 0.1)]
    cases = []
    for label, seed, c, size, scale in specs:
        acts, grads = _capstone_case(seed, c, size, scale)
        cases.append(Case(label, (acts, grads), cluster_filter_cam(acts, grads, "reference").cam.astype(np.float64)))

    def compare(out, case):
        got = to_array(out)
        expected = case.expected
        scale = max(float(np.abs(expected).max()), 1e-30)
        if is_right(got, expected, 0.0, 1e-4 * scale):
            return
        acts, grads = case.args
        if got.shape != expected.shape:
            raise Wrong(f"the map has shape {got.shape}, expected {expected.shape}",
                         "return the (h, w) map before upsampling: ReLU(sum_k alpha_k A_k).")
        others = {"readme": "the readme preset (no important split, bilateral filter, no softmax)"}
        for preset, words in others.items():
            if matches(got, cluster_filter_cam(acts, grads, preset).cam, rtol=1e-4, atol=1e-4 * scale):
                raise Wrong(f"this is {words}", "the capstone asks for the published code: the reference preset.")
        variants = {"weighting='gap'": ("the weights were not passed through the softmax",
                                        "alpha = softmax of the weights over the kept channels."),
                    "filter='none'": ("the cluster gradients were not filtered",
                                      "filter each cluster's mean gradient with the published kernel, then take "
                                      "the mean of the filtered map as the cluster's weight."),
                    "important_fraction=0.0": ("no channel was set aside as important",
                                               "channels whose norm is >= the 75th percentile of the norms are "
                                               "important: never clustered, weight = their mean gradient.")}
        for change, (problem, hint) in variants.items():
            key, value = change.split("=")
            config = make_config("reference", **{key: eval(value)})  # noqa: S307 - fixed literals above
            if matches(got, cluster_filter_cam(acts, grads, config).cam, rtol=1e-4, atol=1e-4 * scale):
                raise Wrong(problem, hint)
        expect_array(got, expected, rtol=0.0, atol=1e-4 * scale)

    return verify(fn, "CF-CAM from your parts", cases, compare,
                   "follow the steps of the reference preset in order: important split, eps and min_samples, DBSCAN "
                   "on the rest, each cluster's mean gradient through the published kernel, weights (mean of the "
                   "filtered map, or mean gradient for important channels), softmax over the kept channels, ReLU of "
                   "the weighted sum.",
                   "your CF-CAM reproduces the published implementation.")
