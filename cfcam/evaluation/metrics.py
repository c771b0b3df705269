"""Judging a heatmap against the ground truth: the pointing game."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

#: A pointing-game hit: the map's maximum lies within this many pixels of the lesion mask (the usual 15 px).
POINTING_TOLERANCE_PX = 15


def pointing_hits(maps, masks, tolerance: int = POINTING_TOLERANCE_PX) -> np.ndarray:
    """Per image: does the map's argmax fall inside the mask dilated by ``tolerance`` pixels?

    maps: ``(N, H, W)`` (tensor or array); masks: ``(N, H, W)`` bool, each non-empty. Returns ``(N,)`` bool.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be an integer >= 0, got {tolerance!r}")
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps and masks must both have shape (N, H, W), got {maps.shape} and {masks.shape}")
    hits = np.zeros(len(maps), dtype=bool)
    for i, (m, mask) in enumerate(zip(maps, masks)):
        if not mask.any():
            raise ValueError(f"masks[{i}] is empty; the pointing game needs lesion images")
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        hits[i] = ndimage.distance_transform_edt(~mask)[y, x] <= tolerance
    return hits


def pointing_game(model, inputs: torch.Tensor, masks, method: str = "gradcam", preset: str | None = None,
                  layer: str = "layer4[-1]", target: int | None = None, batch_size: int = 32) -> float:
    """Fraction of images whose map (any registered ``method``) hits its mask.

    inputs: preprocessed ``(N, 3, H, W)``; masks ``(N, H, W)`` at the same size; target: the class to explain
    (default: each image's top class). ``method="cfcam"`` with ``preset`` is short for ``"cfcam-<preset>"``.
    """
    from ..methods.registry import create

    if method == "cfcam":
        method = f"cfcam-{preset or 'readme'}"
    hits = []
    with create(method, model, layer) as explainer:
        for i in range(0, len(inputs), batch_size):
            maps = explainer(inputs[i:i + batch_size], targets=target)
            hits.append(pointing_hits(maps, np.asarray(masks[i:i + batch_size])))
    return float(np.concatenate(hits).mean())
