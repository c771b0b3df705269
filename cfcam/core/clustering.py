"""Channel clustering, as the cheat sheet says it: split off the important channels, measure the distances
between the others, take ``eps`` as a percentile of those distances, and run DBSCAN.

This is the plain path, written to be read next to notebook 02, and the oracle the fast engine
(:mod:`cfcam.core.engine`) is tested against: the same eps and the same labels, bit for bit. Distances are
computed as the published code computes them (float32 norms of float32 differences); each neighbour test
``d <= eps`` uses the float64 distance of the same differences, so an exact tie is decided the same way
every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMPORTANT = -2  # label of a channel kept out of clustering because its norm is large
NOISE = -1  # label of a channel DBSCAN leaves out (dropped from the map)


@dataclass(frozen=True)
class Split:
    """Which channels are *important* (largest L2 norms) and therefore never clustered (the paper's
    "hierarchical importance weighting": they keep their own Grad-CAM weight)."""

    norms: np.ndarray  # (C,) L2 norm of each flattened channel map
    threshold: float | None  # the norm percentile used, None when the split is off
    important: np.ndarray  # (C,) bool


def split_important(flat: np.ndarray, important_fraction: float) -> Split:
    """Mark channels whose norm is at least the ``100 * (1 - fraction)`` percentile, as published."""
    norms = np.linalg.norm(np.asarray(flat, dtype=np.float64), axis=1)
    if important_fraction <= 0:
        return Split(norms, None, np.zeros(len(norms), dtype=bool))
    threshold = float(np.percentile(norms, 100.0 * (1.0 - important_fraction)))
    return Split(norms, threshold, norms >= threshold)


def pairwise_distances(flat) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances between the rows of ``flat`` ``(n, d)``: ``(published, exact)``, both ``(n, n)``.

    ``published`` is float32, as the published code computes it (``np.linalg.norm`` of float32 differences);
    ``exact`` is float64 from the same differences. One row at a time, so memory stays ``O(n * d)``.
    """
    x = np.asarray(flat, dtype=np.float32)
    n = x.shape[0]
    published = np.zeros((n, n), dtype=np.float32)
    exact = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        diff = x[i] - x
        published[i] = np.linalg.norm(diff, axis=1)
        exact[i] = np.sqrt(np.square(diff.astype(np.float64)).sum(axis=1))
    return published, exact


def percentile_eps(published: np.ndarray, percentile: float, eps_min: float) -> float:
    """``max(percentile of the off-diagonal distances, eps_min)``: every pair counted twice, as published.

    The two float32 distances the percentile falls between are interpolated in float64 (numpy would round a
    float32 array's percentile to float32: at most one float32 step apart)."""
    n = published.shape[0]
    if n < 2:
        return float(eps_min)
    off_diagonal = published[~np.eye(n, dtype=bool)].astype(np.float64)
    return max(float(np.percentile(off_diagonal, percentile)), float(eps_min))


def min_samples_for(n_points: int, fraction: float, floor: int) -> int:
    """``max(floor, int(fraction * n_points))``, as published (int truncates)."""
    return max(int(floor), int(fraction * n_points))


@dataclass(frozen=True)
class DBSCANResult:
    labels: np.ndarray  # (n,) -1 noise, 0..K-1 cluster ids numbered as scikit-learn numbers them
    core: np.ndarray  # (n,) bool core points
    n_neighbors: np.ndarray  # (n,) neighbours within eps, the point itself included


def dbscan(distances: np.ndarray, eps: float, min_samples: int) -> DBSCANResult:
    """scikit-learn's DBSCAN on a precomputed, symmetric distance matrix: neighbours are points with
    ``distance <= eps`` (each point its own neighbour); a core point has at least ``min_samples``."""
    from sklearn.cluster import DBSCAN

    n = distances.shape[0]
    if n == 0:
        return DBSCANResult(np.full(0, NOISE, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64))
    fit = DBSCAN(eps=float(eps), min_samples=int(min_samples), metric="precomputed").fit(distances)
    core = np.zeros(n, dtype=bool)
    core[fit.core_sample_indices_] = True
    n_neighbors = (distances <= eps).sum(axis=1).astype(np.int64)
    return DBSCANResult(fit.labels_.astype(np.int64), core, n_neighbors)


class ChannelDistances:
    """The plain path's distances between channels, with the two questions the pipeline asks of them."""

    def __init__(self, flat) -> None:
        self.published, self.exact = pairwise_distances(flat)
        self.n = self.published.shape[0]

    @property
    def matrix(self) -> np.ndarray:
        """``(n, n)`` float32 distances, as published."""
        return self.published

    def eps(self, percentile: float, eps_min: float) -> float:
        return percentile_eps(self.published, percentile, eps_min)

    def dbscan(self, eps: float, min_samples: int) -> DBSCANResult:
        return dbscan(self.exact, eps, min_samples)
