"""The capstone's assembly written out step by step, with a switch for each typical mistake, so that the
capstone check can name the mistake a learner's ``my_cfcam`` makes (see :mod:`.nb07_capstone`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import DBSCAN

from .nb03_filtering import kernel_with

__all__ = ["apply_kernel", "assemble"]


def apply_kernel(mean_map: torch.Tensor, kernel: torch.Tensor, padding: str = "same") -> torch.Tensor:
    """Cross-correlate an ``(h, w)`` map with an ``(h, w)`` kernel, output ``(h, w)``. ``padding``: ``"same"``
    (zeros, the extra row/column after, as published), ``"before"`` (zeros, the extra one before), or a
    border mode of ``F.pad`` (``"reflect"``, ``"replicate"``) instead of zeros."""
    h, w = mean_map.shape
    top, left = (h - 1) // 2, (w - 1) // 2
    if padding == "before":
        top, left = h // 2, w // 2
    pads = (left, w - 1 - left, top, h - 1 - top)
    if padding in ("same", "before"):
        padded = F.pad(mean_map[None, None], pads)
    else:
        padded = F.pad(mean_map[None, None], pads, mode=padding)
    return F.conv2d(padded, kernel[None, None])[0, 0]


def assemble(acts: torch.Tensor, grads: torch.Tensor, *, strict: bool = False, nonzero_eps: bool = False,
             round_min_samples: bool = False, centre: str = "half", padding: str = "same", transpose: bool = False,
             keep_noise: bool = False, relu: bool = True) -> np.ndarray:
    """The reference preset's ``(h, w)`` map for one image, or (through the switches) a typical mistake."""
    acts, grads = acts.double(), grads.double()
    c = acts.shape[0]
    flat = acts.reshape(c, -1)
    norms = flat.norm(dim=1).numpy()
    threshold = np.percentile(norms, 75.0)
    important = norms > threshold if strict else norms >= threshold
    rest = np.flatnonzero(~important)
    d = torch.cdist(flat[rest], flat[rest], compute_mode="donot_use_mm_for_euclid_dist").numpy()
    values = d[d > 0] if nonzero_eps else d[~np.eye(len(rest), dtype=bool)]
    eps = max(float(np.percentile(values, 25.0)), 1e-5) if values.size else 1e-5
    n_min = max(2, round(0.05 * len(rest)) if round_min_samples else int(0.05 * len(rest)))
    labels = np.full(c, -2)
    labels[rest] = DBSCAN(eps=eps, min_samples=n_min, metric="precomputed").fit(d).labels_
    weights = torch.zeros(c, dtype=torch.float64)
    weights[important] = grads.mean(dim=(1, 2))[important]
    for j in range(labels.max() + 1):
        members = torch.as_tensor(labels == j)
        m = grads[members].mean(dim=0)
        kernel = torch.from_numpy(kernel_with(m, centre=centre))
        weights[members] = apply_kernel(m, kernel, padding).mean()
    kept = torch.ones(c, dtype=torch.bool) if keep_noise else torch.as_tensor(labels != -1)
    alphas = torch.zeros_like(weights)
    alphas[kept] = torch.softmax(weights[kept], dim=0)
    cam = (alphas[:, None, None] * acts).sum(dim=0)
    cam = torch.relu(cam) if relu else cam
    return (cam.T if transpose else cam).numpy()
