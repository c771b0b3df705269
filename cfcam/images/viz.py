"""The heatmap overlay, as the seed describes it: the map resized to the image, OpenCV's JET colour map,
``0.4 * heatmap + 0.6 * image``.

The preprocessing (resize to 224 x 224, scale to [0, 1], normalise with the ImageNet mean and std) lives in
:mod:`cfcam.images.preprocess`; its names are re-exported here, where they used to be.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .preprocess import preprocess, preprocess_batch, to_rgb_array

__all__ = ["colorize", "overlay", "preprocess", "preprocess_batch", "to_rgb_array"]


@functools.lru_cache(maxsize=1)
def _jet_rgb() -> np.ndarray:
    """OpenCV's JET colour map as an RGB lookup table ``(256, 1, 3)`` (applyColorMap rebuilds it every call)."""
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """A map in [0, 1] as an RGB uint8 image through OpenCV's JET colour map."""
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), np.float32(0.0), np.float32(1.0))
    heat *= np.float32(255)
    gray = heat.astype(np.uint8)
    return cv2.LUT(cv2.merge([gray, gray, gray]), _jet_rgb())


def overlay(heatmap: np.ndarray, image, alpha: float = 0.4) -> np.ndarray:
    """``alpha * JET(heatmap) + (1 - alpha) * image`` as uint8 RGB at the image's own resolution."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    rgb = to_rgb_array(image)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be a 2-D map, got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("heatmap contains NaN or infinite values")
    heat = cv2.resize(heat, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    blend = colorize(heat).astype(np.float32) * np.float32(alpha) + rgb.astype(np.float32) * np.float32(1 - alpha)
    return blend.astype(np.uint8)
