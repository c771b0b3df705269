"""Preprocessing for the network and the heatmap overlay, as the seed describes them.

Preprocess: resize to 224 x 224, scale to [0, 1], normalise with the ImageNet mean and std. Overlay: the
map resized to the image, OpenCV's JET colour map, ``0.4 * heatmap + 0.6 * image``.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from PIL import Image

from ..constants import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE


def to_rgb_array(image) -> np.ndarray:
    """A PIL image or an ``(H, W)``/``(H, W, 3)`` uint8 array as an ``(H, W, 3)`` uint8 RGB array."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    return arr


def preprocess(image, size: int = INPUT_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``(1, 3, size, size)`` float tensor: bilinear resize (antialiased, as torchvision's ``Resize`` on a
    PIL image), scale to [0, 1], normalise with ``mean``/``std``."""
    rgb = to_rgb_array(image)
    if rgb.shape[:2] != (size, size):  # PIL's resize to the same size is an exact copy: skipped
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)
    return x.sub_(torch.tensor(mean)[:, None, None]).div_(torch.tensor(std)[:, None, None])[None]


def preprocess_batch(images, size: int = INPUT_SIZE) -> torch.Tensor:
    """Several images, each preprocessed, stacked into ``(N, 3, size, size)``."""
    return torch.cat([preprocess(im, size) for im in images])


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
