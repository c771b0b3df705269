"""Plain reference answers for the exercise checks: the full distance matrix and its percentile.

The core never builds either (it works on one triangle and selects two ranks, see
:mod:`cfcam.core.clustering`); the exercises ask learners for exactly these, so the checks compare with them.
"""

from __future__ import annotations

import numpy as np

from ..core.clustering import Distances


def pairwise_distances(flat) -> np.ndarray:
    """Euclidean distances between rows, ``(n, n)`` float32, each within float32 rounding of the exact."""
    return Distances(flat).matrix


def eps_from_distances(distances: np.ndarray, percentile: float, eps_min: float) -> float:
    """The ``percentile`` (linear interpolation) of the off-diagonal entries of a distance matrix, at least
    ``eps_min``: ``max(np.percentile(off_diagonal, percentile), eps_min)`` (in float64).

    With fewer than two points there is no pair: ``eps_min`` is returned.
    """
    n = distances.shape[0]
    if n < 2:
        return float(eps_min)
    off = np.asarray(distances, dtype=np.float64)[~np.eye(n, dtype=bool)]
    return max(float(np.percentile(off, percentile)), float(eps_min))
