"""Localisation: does the map point at the lesion? (needs ground-truth masks)

* **Pointing game** (Zhang et al. 2018, "Top-down neural attention by excitation backprop"): a hit when the
  map's maximum lies within 15 px of the mask (:func:`cfcam.evaluation.metrics.pointing_hits`).
* **Energy in mask** (the "relevance mass accuracy" of Arras et al. 2022, "CLEVR-XAI"; the energy-based
  pointing game of Wang et al. 2020, Score-CAM): the fraction of the map's total mass inside the mask.

What they do NOT show: whether the *model* used the lesion. A map can point at the lesion because lesions
are salient in the activations whatever the class (EigenCAM ignores the class and still points), and a map
that ignores the model (``centre``) can score where lesions sit near the middle. They reward agreement with
a human annotation, not faithfulness to the model. An all-zero map has no maximum and no mass: both metrics
are undefined for it (NaN here, counted by ``zero_maps``), never scored as a miss or a hit.
"""

from __future__ import annotations

import numpy as np

from .metrics import POINTING_TOLERANCE_PX, pointing_hits


def is_zero_map(maps) -> np.ndarray:
    """Per map ``(N, H, W)``: True when it is zero (or not finite) everywhere."""
    maps = np.asarray(maps, dtype=np.float64)
    return ~np.array([np.isfinite(m).all() and (m > 0).any() for m in maps], dtype=bool)


def pointing_game_scores(maps, masks, tolerance: int = POINTING_TOLERANCE_PX) -> np.ndarray:
    """Per image: 1.0 hit, 0.0 miss, NaN for an all-zero map (no maximum to point with)."""
    maps = np.asarray(maps)
    hits = pointing_hits(maps, masks, tolerance).astype(np.float64)
    hits[is_zero_map(maps)] = np.nan
    return hits


def energy_in_mask(maps, masks) -> np.ndarray:
    """Per image: ``sum(map * mask) / sum(map)`` for maps >= 0; NaN for an all-zero map."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps and masks must both have shape (N, H, W), got {maps.shape} and {masks.shape}")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    out = np.full(len(maps), np.nan)
    ok = ~is_zero_map(maps)
    out[ok] = inside[ok] / total[ok]
    return out
