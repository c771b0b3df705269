"""Constructed maps and masks shared by several checks (the pointing game, the energy in a mask)."""

from __future__ import annotations

import numpy as np

__all__ = ["disc_mask", "peak_map"]


def disc_mask(size: int, cy: int, cx: int, r: int) -> np.ndarray:
    """A ``size`` x ``size`` boolean disc of radius ``r`` centred at row ``cy``, column ``cx`` (a lesion)."""
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def peak_map(size: int, cy: int, cx: int) -> np.ndarray:
    """A ``size`` x ``size`` float32 Gaussian bump (sigma 6 px) whose single maximum is at ``(cy, cx)``."""
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0**2)).astype(np.float32)
