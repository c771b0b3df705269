"""Composition: channel weights, their normalisation, the weighted sum with ReLU, upsampling and scaling.

These few functions are shared by every method (Grad-CAM, CF-CAM): methods differ only in how they weight
channels, as in pytorch-grad-cam's ``BaseCAM``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .clustering import IMPORTANT, NOISE


def gradcam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's channel weights: the spatial mean (global average pooling) of each gradient map."""
    return gradients.mean(dim=(-2, -1))


def cfcam_weights(gradients: torch.Tensor, labels: np.ndarray, filtered: torch.Tensor) -> torch.Tensor:
    """CF-CAM's weights ``(C,)``: an important channel's own mean gradient, a clustered channel its
    cluster's mean filtered gradient, a noise channel 0."""
    labels = np.asarray(labels)
    device = gradients.device
    weights = torch.zeros(gradients.shape[0], dtype=gradients.dtype, device=device)
    important = labels == IMPORTANT
    if important.any():
        important_t = torch.from_numpy(important).to(device)
        weights[important_t] = gradients[important_t].mean(dim=(-2, -1))
    if filtered.shape[0]:
        clustered = labels >= 0
        per_cluster = filtered.mean(dim=(-2, -1))[torch.from_numpy(np.where(clustered, labels, 0)).to(device)]
        weights = torch.where(torch.from_numpy(clustered).to(device), per_cluster, weights)
    return weights


def kept_channels(labels: np.ndarray) -> np.ndarray:
    """Channels that take part in the sum: everything but DBSCAN noise."""
    return np.asarray(labels) != NOISE


def coefficients(weights: torch.Tensor, kept: torch.Tensor, weighting: str) -> torch.Tensor:
    """The coefficients of the weighted sum: ``gap`` uses the weights as they are, ``softmax`` the softmax
    over the kept channels (the published code). Dropped channels get 0."""
    if weighting != "softmax":
        return torch.where(kept, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))
    alphas = torch.zeros_like(weights)
    if kept.any():
        alphas[kept] = torch.softmax(weights[kept], dim=0)
    return alphas


def weighted_relu_sum(activations: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """``ReLU(sum_k alpha_k A_k)``, ``(h, w)`` from ``(C, h, w)`` (or batched ``(N, C, h, w)``)."""
    return torch.relu(torch.einsum("...chw,...c->...hw", activations, alphas))


def upsample(maps: torch.Tensor | np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling (``align_corners=False``) of ``(h, w)`` or ``(N, h, w)`` maps to ``size``."""
    maps = torch.as_tensor(maps)
    squeeze = maps.dim() == 2
    batch = maps[None, None] if squeeze else maps[:, None]
    out = F.interpolate(batch.float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return out[0] if squeeze else out


def normalize(maps: torch.Tensor | np.ndarray, mode: str = "minmax") -> torch.Tensor:
    """Scale each ``(h, w)`` map (the last two dimensions) to [0, 1].

    ``max`` divides by the max when it is > 0 (the published code), ``minmax`` subtracts the min and divides
    by the range when it is > 0, ``none`` returns the map as it is. A flat map becomes all zeros.
    """
    maps = torch.as_tensor(maps).float()
    if mode == "none":
        return maps.clone()
    if mode not in ("max", "minmax"):
        raise ValueError(f"normalize must be one of ['max', 'minmax', 'none'], got {mode!r}")
    lo = maps.amin(dim=(-2, -1), keepdim=True) if mode == "minmax" else torch.zeros_like(maps[..., :1, :1])
    shifted = maps - lo
    hi = shifted.amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(hi > 0, hi, torch.ones_like(hi))
    return torch.where(hi > 0, shifted / scale, torch.zeros_like(shifted)).clamp_(0.0, 1.0)


def to_heatmaps(cams, size: tuple[int, int], mode: str = "minmax") -> np.ndarray:
    """The one post-processing of every method: ``(h, w)`` maps (one, a list, or ``(N, h, w)``) upsampled
    bilinearly to ``size`` and scaled to [0, 1] by :func:`normalize`, as float32 ``(N, H, W)`` (``(H, W)``
    for a single ``(h, w)`` map)."""
    if isinstance(cams, (list, tuple)):
        cams = torch.stack([torch.as_tensor(c, dtype=torch.float32).cpu() for c in cams])
    cams = torch.as_tensor(cams, dtype=torch.float32).cpu()
    return normalize(upsample(cams, tuple(size)), mode).numpy().astype(np.float32, copy=False)


def gradcam_map(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's map before upsampling: ``ReLU(sum_k w_k A_k)`` with ``w`` the spatial mean of the gradients
    (:func:`weighted_relu_sum` of :func:`gradcam_weights`), ``(h, w)`` from ``(C, h, w)`` or batched."""
    return weighted_relu_sum(activations, gradcam_weights(gradients))
