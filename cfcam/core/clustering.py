"""Channel clustering: the important-channel split, pairwise distances, the percentile ``eps`` and DBSCAN.

Everything works on the ``(C, h*w)`` matrix of flattened channel maps and is vectorised over channels.
``dbscan`` reproduces scikit-learn's ``DBSCAN`` labels exactly (same clusters, same numbering, same border
assignment) from a precomputed distance matrix, without scikit-learn's per-point neighbour lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IMPORTANT = -2
NOISE = -1


@dataclass(frozen=True)
class Split:
    """Which channels are *important* (largest L2 norms) and therefore never clustered."""

    norms: np.ndarray  # (C,) L2 norm of each flattened channel map
    threshold: float | None  # the norm percentile used, None when the split is off
    important: np.ndarray  # (C,) bool


def split_important(flat: np.ndarray, important_fraction: float) -> Split:
    """Mark channels whose norm is at least the ``100 * (1 - fraction)`` percentile, as published."""
    norms = np.linalg.norm(flat.astype(np.float64, copy=False), axis=1)
    if important_fraction <= 0:
        return Split(norms, None, np.zeros(len(norms), dtype=bool))
    threshold = float(np.percentile(norms, 100.0 * (1.0 - important_fraction)))
    return Split(norms, threshold, norms >= threshold)


_U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32


class Distances:
    """Pairwise Euclidean distances between the rows of ``flat`` (channels), ``(n, n)`` float32.

    Computed fast in float32 through the Gram matrix of the mean-centred rows (distances do not change under
    translation; centring keeps the Gram trick well conditioned); every entry is within ``tolerance`` of the
    exact distance (a worst-case rounding bound). The entries that decide something, the ranks that give
    ``eps`` and the pairs whose comparison with ``eps`` could flip, are then recomputed by :func:`exact_eps`
    the way the published code computes them: ``eps`` from float32 distances of float32 differences (numpy's
    ``linalg.norm``), and each neighbour test ``d <= eps`` on the float64 distance. So the clustering is the
    published one, except at an exact tie: when the percentile falls on a pair counted twice, ``eps`` *is* that
    pair's float32 distance, and whether scikit-learn then counts the pair as neighbours depends on its own
    internal rounding. Here a tie is decided by the float64 distance, the same way every time.
    """

    def __init__(self, flat) -> None:
        x = torch.as_tensor(flat).to(device="cpu", dtype=torch.float64)
        self.n, dim = x.shape
        self._x32 = x.float().numpy()
        self._x = x - x.mean(dim=0) if self.n else x
        xf = self._x.float()
        sq = (xf * xf).sum(dim=1)
        d2 = torch.addmm(sq[:, None] + sq[None, :], xf, xf.T, alpha=-2.0)
        d2.clamp_(min=0.0).sqrt_().fill_diagonal_(0.0)
        self.matrix: np.ndarray = d2.numpy()
        gamma = dim * _U32 / (1 - dim * _U32)
        max_sq = float((self._x * self._x).sum(dim=1).max()) if self.n else 0.0
        self._d2_error = (2 * gamma + 3 * _U32) * 2 * max_sq  # bound on the error of any squared distance
        # entries (flat indices) near the last eps, with their float64 distances for the neighbour test
        self.exact_index = np.zeros(0, dtype=np.int64)
        self.exact_values = np.zeros(0, dtype=np.float64)

    def tolerance(self, near: float) -> float:
        """Bound on ``|approx - exact|`` for distances near ``near``: ``|d^2 error| / (d + d')``."""
        return float(np.sqrt(self._d2_error)) if near <= 0 else min(
            float(np.sqrt(self._d2_error)), self._d2_error / near)

    def make_exact(self, flat_index: np.ndarray) -> None:
        """Recompute the given entries (indices into the flattened matrix) as the published code does."""
        i, j = np.divmod(flat_index, self.n)
        diff32 = self._x32[i] - self._x32[j]
        self.matrix.ravel()[flat_index] = np.linalg.norm(diff32, axis=1)
        self.exact_index = flat_index
        self.exact_values = np.sqrt(np.square(diff32.astype(np.float64)).sum(axis=1))

    def neighbours(self, eps: float) -> np.ndarray:
        """``(n, n)`` bool: ``distance <= eps``, the refined entries tested on their float64 distance."""
        adjacent = self.matrix <= eps
        adjacent.ravel()[self.exact_index] = self.exact_values <= eps
        return adjacent


def pairwise_distances(flat) -> np.ndarray:
    """Euclidean distances between rows, ``(n, n)`` float32, each within float32 rounding of the exact."""
    return Distances(flat).matrix


def _select(values: np.ndarray, k_lo: int, k_hi: int) -> tuple[float, float]:
    """The ``k_lo``-th and ``k_hi``-th smallest of ``values`` (1-D), exactly.

    A random sample (fixed seed, so the cost is repeatable; the answer is exact either way) brackets the two
    ranks, one comparison pass counts what lies below the bracket, and only the values inside it are
    partitioned: a few passes over the data instead of a full quickselect.
    """
    n = values.size
    m = min(n, 50000)
    sample = np.sort(values[np.random.default_rng(0).integers(0, n, m)])
    margin = int(5 * np.sqrt(m) / 2) + 8  # >= 5 standard deviations of a sample quantile's rank
    lo = sample[max(0, int(k_lo / max(n - 1, 1) * (m - 1)) - margin)]
    hi = sample[min(m - 1, int(k_hi / max(n - 1, 1) * (m - 1)) + margin)]
    below = int(np.count_nonzero(values < lo))
    inside = values[(values >= lo) & (values <= hi)]
    if below <= k_lo and k_hi < below + inside.size:
        part = np.partition(inside, (k_lo - below, k_hi - below))
        return float(part[k_lo - below]), float(part[k_hi - below])
    part = np.partition(values, (k_lo, k_hi))
    return float(part[k_lo]), float(part[k_hi])


def _percentile_ranks(n: int, percentile: float) -> tuple[int, int, float]:
    """Ranks in the whole ``n x n`` matrix of the two values the percentile interpolates, and the weight.

    The ``n`` zeros of the diagonal sort first, so rank ``i`` of the ``n*(n-1)`` off-diagonal entries (each
    pair counted twice, as in the published code) is rank ``n + i`` of the whole matrix.
    """
    total = n * (n - 1)
    index = percentile / 100.0 * (total - 1)
    lo = int(np.floor(index))
    return n + lo, n + min(lo + 1, total - 1), index - lo


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)  # numpy's own interpolation


def eps_from_distances(distances: np.ndarray, percentile: float, eps_min: float) -> float:
    """The ``percentile`` (linear interpolation) of the off-diagonal distances, at least ``eps_min``.

    Equals ``max(np.percentile(off_diagonal, percentile), eps_min)`` but selects two ranks instead of sorting.
    With fewer than two points there is no pair: ``eps_min`` is returned.
    """
    n = distances.shape[0]
    if n < 2:
        return float(eps_min)
    k_lo, k_hi, t = _percentile_ranks(n, percentile)
    a, b = _select(distances.ravel(), k_lo, k_hi)
    return max(_lerp(a, b, t), float(eps_min))


def exact_eps(distances: Distances, percentile: float, eps_min: float) -> float:
    """:func:`eps_from_distances` as the published code gets it, refining the entries that can decide it.

    The approximate rank statistics ``a <= b`` are within ``tol`` of the true ones. Every entry within
    ``w = 3 tol`` of ``[a, b]`` is recomputed as published (see :class:`Distances`); an entry outside that
    band cannot cross the true statistics, so they are found inside the band, and every neighbour test
    DBSCAN then makes with this ``eps`` is decided the published way too.
    """
    n = distances.n
    if n < 2:
        return float(eps_min)
    values = distances.matrix.ravel()
    k_lo, k_hi, t = _percentile_ranks(n, percentile)
    a, b = _select(values, k_lo, k_hi)
    w = 3.0 * distances.tolerance(a)
    band = np.flatnonzero((values >= a - w) & (values <= b + w))
    distances.make_exact(band)
    below = int(np.count_nonzero(values < a - w))
    if below <= k_lo and k_hi < below + band.size:
        part = np.partition(values[band], (k_lo - below, k_hi - below))
        a, b = float(part[k_lo - below]), float(part[k_hi - below])
    else:  # cannot happen with a valid bound; stay exact regardless
        a, b = _select(values, k_lo, k_hi)
    return max(_lerp(a, b, t), float(eps_min))


def min_samples_for(n_points: int, fraction: float, floor: int) -> int:
    """``max(floor, int(fraction * n_points))``, as published (int truncates)."""
    return max(int(floor), int(fraction * n_points))


@dataclass(frozen=True)
class DBSCANResult:
    labels: np.ndarray  # (n,) -1 noise, 0..K-1 cluster ids numbered as scikit-learn numbers them
    core: np.ndarray  # (n,) bool core points
    n_neighbors: np.ndarray  # (n,) neighbours within eps, the point itself included


def dbscan(distances: np.ndarray | Distances, eps: float, min_samples: int) -> DBSCANResult:
    """DBSCAN on a precomputed distance matrix with scikit-learn's semantics.

    ``distances`` is a matrix or a :class:`Distances` refined by :func:`exact_eps` for this ``eps``.
    Neighbours are points with ``distance <= eps`` (the point itself included); a core point has at least
    ``min_samples`` of them; a cluster is a connected component of core points plus the border points they
    reach. Clusters are grown from the lowest-index unlabelled core point, breadth first over whole frontiers
    (boolean matrix rows, no per-point Python loop), and a border point joins the first cluster that reaches
    it: exactly the labels scikit-learn's expansion gives.
    """
    n = distances.n if isinstance(distances, Distances) else distances.shape[0]
    labels = np.full(n, NOISE, dtype=np.int64)
    if n == 0:
        return DBSCANResult(labels, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64))
    adjacent = distances.neighbours(eps) if isinstance(distances, Distances) else distances <= eps
    n_neighbors = adjacent.sum(axis=1)
    core = n_neighbors >= min_samples
    unlabelled_core = core.copy()
    cluster = 0
    while True:
        seeds = np.flatnonzero(unlabelled_core)
        if seeds.size == 0:
            break
        members = np.zeros(n, dtype=bool)
        members[seeds[0]] = True
        frontier = seeds[:1]
        while frontier.size:
            reached = adjacent[frontier].any(axis=0) & ~members & (labels == NOISE)
            members |= reached
            frontier = np.flatnonzero(reached & core)
        labels[members] = cluster
        unlabelled_core &= ~members
        cluster += 1
    return DBSCANResult(labels, core, n_neighbors)
