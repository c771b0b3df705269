"""Localisation: does the map point at the lesion? (needs ground-truth masks)

* **Pointing game** (Zhang et al. 2018, "Top-down neural attention by excitation backprop"): a hit when the
  map's maximum lies within 15 px of the mask (:func:`cfcam.evaluation.metrics.pointing_hits`).
* **Energy in mask** (the "relevance mass accuracy" of Arras et al. 2022, "CLEVR-XAI"; the energy-based
  pointing game of Wang et al. 2020, Score-CAM): the fraction of the map's total mass inside the mask.

Both are scored for the class whose evidence the mask marks (the lesion class), whatever the model predicted:
a map of "normal" scored against a lesion mask measures nothing. A map that is zero everywhere points
nowhere: it is a *miss* (pointing 0, energy 0), not an undefined value that drops the image, and the
evaluation reports the rate of such maps beside the scores (``zero_maps_localised``).

What they do NOT show: whether the *model* used the lesion. A map can point at the lesion because lesions
are salient in the activations whatever the class (EigenCAM ignores the class and still points), and a map
that ignores the model (``centre``) can score where lesions sit near the middle. They reward agreement with
a human annotation, not faithfulness to the model.
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import POINTING_TOLERANCE_PX, pointing_hits


def is_zero_map(maps) -> np.ndarray:
    """Per map ``(N, H, W)``: True when it is zero (or not finite) everywhere."""
    maps = np.asarray(maps, dtype=np.float64)
    return ~np.array([np.isfinite(m).all() and (m > 0).any() for m in maps], dtype=bool)


def pointing_game_scores(maps, masks, tolerance: int = POINTING_TOLERANCE_PX) -> np.ndarray:
    """Per image: 1.0 hit, 0.0 miss; an all-zero map has no maximum to point with: a miss (0.0)."""
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    hits = pointing_hits(maps, masks, tolerance).astype(np.float64)
    hits[is_zero_map(maps)] = 0.0
    return hits


def energy_in_mask(maps, masks) -> np.ndarray:
    """Per image: the fraction ``sum(map * mask) / sum(map)`` of the map's (non-negative) mass inside the mask.

    maps: ``(N, H, W)`` tensor or array, values >= 0 (CAMs are); masks: ``(N, H, W)`` bool. A map that is zero
    everywhere points nowhere and scores 0 (a miss). Returns ``(N,)`` float64 in [0, 1].
    """
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps and masks must both have shape (N, H, W), got {maps.shape} and {masks.shape}")
    maps = maps.astype(np.float64)
    if (maps < 0).any():
        raise ValueError("maps must be non-negative (a CAM after its ReLU)")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=np.isfinite(total) & (total > 0))
