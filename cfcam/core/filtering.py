"""Filters for a cluster's mean gradient map, all vectorised over clusters: ``(K, h, w) -> (K, h, w)``.

``reference`` is the kernel of the published code (not a textbook bilateral filter): one ``h x w`` kernel
per map, a Gaussian around ``(h/2, w/2)`` times a range term that compares each value with the map's global
mean, normalised, then cross-correlated with the map under zero padding (``conv2d(padding="same")``).
``bilateral`` is a real edge-preserving bilateral filter (each pixel averages its neighbours, weighted by
distance and by value similarity to *that pixel*), with the range sigma relative to the map's value range.
``gaussian`` is the same without the range term. Both pad by replicating the border, so a constant map stays
exactly constant; the reference kernel's zero padding shrinks it instead.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .config import FILTERS, CFCAMConfig

_MAX_ELEMENTS = 1 << 22  # bound on the unfolded patch tensor per chunk of maps


def filter_maps(maps: torch.Tensor, config: CFCAMConfig) -> torch.Tensor:
    """Apply ``config.filter`` to every map of ``maps`` ``(K, h, w)``."""
    if maps.shape[0] == 0 or config.filter == "none":
        return maps.clone()
    if config.filter == "reference":
        return reference_filter(maps, config.spatial_sigma, config.range_sigma)
    if config.filter == "bilateral":
        return bilateral_filter(maps, config.spatial_sigma, config.range_sigma)
    if config.filter == "gaussian":
        return bilateral_filter(maps, config.spatial_sigma, None)
    raise ValueError(f"filter must be one of {list(FILTERS)}, got {config.filter!r}")


def reference_kernels(maps: torch.Tensor, spatial_sigma: float = 5.0, range_sigma: float = 0.1) -> torch.Tensor:
    """The published per-map kernels ``K = S * R / (sum(S * R) + 1e-6)``, ``(K, h, w)``."""
    _, h, w = maps.shape
    x = torch.arange(h, dtype=maps.dtype, device=maps.device)[:, None] - h / 2
    y = torch.arange(w, dtype=maps.dtype, device=maps.device)[None, :] - w / 2
    spatial = torch.exp(-(x**2 + y**2) / (2 * spatial_sigma**2))
    diff = maps - maps.mean(dim=(1, 2), keepdim=True)
    kernels = spatial * torch.exp(-(diff**2) / (2 * range_sigma**2))
    return kernels / (kernels.sum(dim=(1, 2), keepdim=True) + 1e-6)


def reference_filter(maps: torch.Tensor, spatial_sigma: float = 5.0, range_sigma: float = 0.1) -> torch.Tensor:
    """Each map cross-correlated with its own reference kernel, zero padding, output ``h x w``."""
    k, h, w = maps.shape
    kernels = reference_kernels(maps, spatial_sigma, range_sigma)
    # conv2d's padding="same": total k-1 zeros per dimension, the extra one after (even sizes)
    top, left = (h - 1) // 2, (w - 1) // 2
    padded = F.pad(maps[None], (left, w - 1 - left, top, h - 1 - top))
    return F.conv2d(padded, kernels[:, None], groups=k)[0]


@functools.lru_cache(maxsize=32)
def _spatial_weights(radius: int, spatial_sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The Gaussian window weights ``((2 r + 1)^2, 1)`` of :func:`bilateral_filter` (cached; never modified)."""
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    return torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * spatial_sigma**2)).reshape(-1, 1)


def bilateral_filter(maps: torch.Tensor, spatial_sigma: float = 1.0,
                     range_sigma: float | None = 0.2) -> torch.Tensor:
    """Bilateral filter (Gaussian filter when ``range_sigma`` is None), replicate padding.

    The window radius is ``ceil(2 * spatial_sigma)``; the range sigma of each map is ``range_sigma`` times
    that map's value range (max - min), so the filter behaves the same at any gradient scale. A constant map
    is returned unchanged.
    """
    k, h, w = maps.shape
    radius = max(1, math.ceil(2 * spatial_sigma))
    size = 2 * radius + 1
    spatial = _spatial_weights(radius, float(spatial_sigma), maps.dtype, maps.device)
    out = torch.empty_like(maps)
    chunk = max(1, _MAX_ELEMENTS // (size * size * h * w))
    for start in range(0, k, chunk):
        part = maps[start:start + chunk]
        padded = F.pad(part[:, None], (radius, radius, radius, radius), mode="replicate")
        patches = F.unfold(padded, size)  # (k, size*size, h*w)
        weights = spatial.expand(-1, h * w)[None]  # (1, size*size, h*w)
        if range_sigma is not None:
            value_range = part.amax(dim=(1, 2)) - part.amin(dim=(1, 2))
            # a constant map has range 0 and every difference 0: any sigma leaves it unchanged
            sigma = torch.where(value_range > 0, range_sigma * value_range, torch.ones_like(value_range))
            sigma = sigma[:, None, None]
            centre = part.reshape(-1, 1, h * w)
            weights = weights * torch.exp(-((patches - centre) ** 2) / (2 * sigma**2))
        filtered = (weights * patches).sum(dim=1) / weights.sum(dim=1)
        out[start:start + chunk] = filtered.reshape(-1, h, w)
    return out
