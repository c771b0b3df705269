"""Plain reference answers for the exercise checks: the full distance matrix and its percentile, exactly as
the plain clustering path (:mod:`cfcam.core.clustering`) computes them."""

from __future__ import annotations

import numpy as np

from ..core.clustering import pairwise_distances as _published_and_exact
from ..core.clustering import percentile_eps


def pairwise_distances(flat) -> np.ndarray:
    """Euclidean distances between rows, ``(n, n)`` float32, as the published code computes them."""
    return _published_and_exact(flat)[0]


def eps_from_distances(distances: np.ndarray, percentile: float, eps_min: float) -> float:
    """The ``percentile`` (linear interpolation) of the off-diagonal entries of a distance matrix, at least
    ``eps_min``: ``max(np.percentile(off_diagonal, percentile), eps_min)``. With fewer than two points there is
    no pair: ``eps_min`` is returned."""
    return percentile_eps(np.asarray(distances), percentile, eps_min)
