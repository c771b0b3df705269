"""Robustness: how much does the map move when what it is computed from is perturbed a little?

* **Published protocol** (the CF-CAM paper's script, see ``/spec``): Gaussian noise of *absolute* standard
  deviation 0.05, 0.1, 0.2, 0.3 added to the captured gradients; SSIM (``data_range = 1``) and MSE between
  the clean and the noisy map. As published, the noise reaches the baselines *before* their weights, but
  reaches CF-CAM only *after* its weights are computed (it perturbs the filtered gradients, which the map no
  longer reads): CF-CAM's map cannot change, so it scores SSIM 1 and MSE 0 by construction. This module
  reproduces that asymmetry on purpose, to show it, for ``CFCAM`` explainers.
* **Fair protocol**: the same noise, *relative* to each image's gradient scale (``sigma * std(G)``), added to
  ``G`` before any method-specific step, for every method alike.
* **Input-noise stability**: SSIM between the map of an image and of the image plus Gaussian noise (in
  normalised units), computed by the evaluation engine with ordinary explainer calls.

What they do NOT show: that a stable map is right. A map that ignores the gradient (EigenCAM, ``centre``,
CF-CAM ``reference`` whose softmax flattens the weights) is perfectly stable under gradient noise because
it does not read the gradient, which the sanity checks expose. Methods that do not read gradients at all
through cfcam's capture (Score-CAM, Ablation-CAM) get no gradient-noise score (NaN, said in the row).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.compose import to_heatmaps
from ..methods.base import CFCAM
from ..methods.baselines import LibraryCAM

PUBLISHED_SIGMAS = (0.05, 0.1, 0.2, 0.3)
FAIR_SIGMAS = (0.05, 0.1, 0.2, 0.3)
PROTOCOLS = ("published", "fair")


def reads_captured_gradient(explainer) -> bool:
    """False for methods computed by their own forward passes (they have no ``explain_one``)."""
    return not isinstance(explainer, LibraryCAM)


def maps_from_capture(explainer, activations: torch.Tensor, gradients: torch.Tensor, size) -> np.ndarray:
    """The explainer's maps ``(N, H, W)`` from given activations and gradients: its ``explain_one`` per image,
    then the same post-processing as its ``__call__`` (:func:`~cfcam.core.compose.to_heatmaps`)."""
    cams = [explainer.explain_one(a, g)[0] for a, g in zip(activations, gradients)]
    return to_heatmaps(cams, size, explainer.normalize_mode)


def noisy_gradients(gradients: torch.Tensor, sigma: float, protocol: str, generator: torch.Generator) -> torch.Tensor:
    """``G + noise``: absolute ``sigma`` (``published``) or ``sigma * std(G)`` per image (``fair``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    noise = torch.randn(gradients.shape, generator=generator, dtype=gradients.dtype)
    if protocol == "fair":
        scale = gradients.reshape(len(gradients), -1).std(dim=1).reshape(-1, *([1] * (gradients.dim() - 1)))
        return gradients + sigma * scale * noise
    return gradients + sigma * noise


def gradient_noise_maps(explainer, activations, gradients, size, sigma: float, protocol: str,
                        generator: torch.Generator) -> np.ndarray:
    """Maps after gradient noise under ``protocol``; for CF-CAM under ``published`` the noise enters after the
    weights, so the clean map is returned (the published script's behaviour)."""
    noisy = noisy_gradients(gradients, sigma, protocol, generator)
    if protocol == "published" and isinstance(explainer, CFCAM):
        noisy = gradients  # published: noise added to the filtered gradients after the weights were taken
    return maps_from_capture(explainer, activations, noisy, size)
