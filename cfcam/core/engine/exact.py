"""Exact eps and neighbours from the approximate triangle: only the pairs that could decide something are
recomputed the way the published code computes them, so eps and the labels are the published ones.

:class:`Distances` is the fast engine's answer to :class:`cfcam.core.clustering.ChannelDistances` (same
``eps``, ``dbscan`` and ``matrix``, the same values), built on :mod:`.triangle` and :mod:`.graph`.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ..clustering import DBSCANResult
from .graph import PackedGraph, dbscan_on_graph
from .threads import single_threaded
from .triangle import Band, scan_upper, squared_distances

_U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32
_U64 = float(np.finfo(np.float64).eps) / 2
# float32 products while their worst-case error, relative to a typical squared distance, stays below this:
# beyond it so many pairs need recomputing that float64 products (twice the product's cost) are cheaper
_FLOAT32_MAX_RELATIVE_ERROR = 2e-3
_REFINE_BYTES = 1 << 23  # bound on the differences held at once while recomputing pairs (8 MB of float64)
_tokens = itertools.count()


def _gamma(k: int, unit: float = _U32) -> float:
    """Higham's ``gamma_k``: the relative error bound of a sum or dot product of ``k`` terms (float32 default)."""
    return k * unit / (1 - k * unit)


class Distances:
    """Pairwise Euclidean distances between the rows of ``flat`` (channels), immutable once built.

    ``sample`` holds the entries of ``squared`` at a fixed random sample of pairs
    (:func:`~cfcam.core.engine.triangle.sample_pairs`). ``squared`` (a :class:`~.triangle.Triangle`) holds, for the
    pairs ``i < j`` (the diagonal is undefined), the squared distances of the mean-centred rows (distances do not
    change under translation; centring keeps the product well conditioned), from one matrix product, float32, or
    float64 when the float32 error bound would be large against the typical squared distance (long rows, a few rows
    far from the others). An entry ``v`` is within :meth:`error_at` ``(v)`` of the squared distance the published
    code computes (float32 norms of float32 differences), of the float64 one and of the exact one (worst-case
    rounding bounds: ``error`` from the product, ``relative`` from the published rounding). The entries that decide
    something, the ranks that give ``eps`` and the pairs whose comparison with ``eps`` could flip, are recomputed by
    :func:`exact_eps` the way the published code computes them: ``eps`` from float32 distances of float32
    differences (numpy's ``linalg.norm``), and each neighbour test ``d <= eps`` on the float64 distance. So the
    clustering is the published one, except at an exact tie: when the percentile falls on a pair counted twice,
    ``eps`` *is* that pair's float32 distance, and whether scikit-learn then counts the pair as neighbours depends
    on its own internal rounding. Here a tie is decided by the float64 distance, the same way every time.
    """

    @single_threaded
    def __init__(self, flat) -> None:
        x = torch.as_tensor(flat).to(device="cpu", dtype=torch.float64)
        self.n, self.dim = x.shape
        self.token = next(_tokens)  # identifies these distances in the eps chosen from them
        self._x32 = x.float().numpy()
        centred = x - x.mean(dim=0) if self.n else x
        sq = centred.square().sum(dim=1)
        max_sq = float(sq.max()) if self.n else 0.0
        # the product: d + 2 terms of size <= 4 max_sq, plus rounding the norms and (float32) the centred rows
        error32 = (4 * _gamma(self.dim + 2) + 12 * _U32) * max_sq
        typical = 2 * float(sq.median()) if self.n else 0.0
        wide = error32 >= _FLOAT32_MAX_RELATIVE_ERROR * typical
        if wide:
            self.error = (4 * _gamma(self.dim + 2, _U64) + 8 * _U64) * max_sq
        else:
            centred = centred.float()
            sq = centred.double().square().sum(dim=1)
            self.error = error32
        self.squared, self.sample = squared_distances(centred, sq.to(centred.dtype))
        # the published float32 differences and norm, relative to the distance itself
        self.relative = _gamma(self.dim + 5)

    def error_at(self, value: float) -> float:
        """Bound on ``|squared - published^2|`` (and float64, exact) for an entry ``squared`` near ``value``."""
        return 1.01 * (self.error + self.relative * abs(value))

    @functools.cached_property
    def matrix(self) -> np.ndarray:
        """``(n, n)`` float32 distances (symmetric, zero diagonal), each within :meth:`tolerance` of the exact."""
        upper = np.sqrt(np.maximum(np.triu(self.squared.dense(), 1), 0.0)).astype(np.float32)
        return upper + upper.T

    def tolerance(self, near: float) -> float:
        """Bound on ``|distance - exact|`` for distances near ``near``: ``|d^2 error| / (d + d')``."""
        root = float(np.sqrt(self.error))
        return root if near <= 0 else min(root, self.error / near)

    def eps(self, percentile: float, eps_min: float) -> ExactEps:
        """The published eps (see :func:`exact_eps`)."""
        return exact_eps(self, percentile, eps_min)

    def dbscan(self, eps: float, min_samples: int) -> DBSCANResult:
        """scikit-learn's DBSCAN labels at ``eps`` (see :func:`dbscan`)."""
        return dbscan(self, eps, min_samples)


@dataclass(frozen=True)
class Refined:
    """Pairs recomputed as published, with the range of approximate squared distances they cover."""

    lo: float
    hi: float
    below: int  # pairs below lo
    i: np.ndarray
    j: np.ndarray
    published: np.ndarray  # float32 distances as the published code computes them
    exact: np.ndarray  # float64 distances of the same float32 differences
    positions: np.ndarray | None = None  # where these pairs are in the scanned band (Band.positions)


def _recompute(x32: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances of pairs ``(i, j)`` as published (float32 norm of float32 differences) and in float64, in
    chunks that hold at most ``_REFINE_BYTES`` of float64 differences."""
    published = np.empty(i.size, dtype=np.float32)
    exact = np.empty(i.size, dtype=np.float64)
    step = max(1, _REFINE_BYTES // (8 * max(x32.shape[1], 1)))
    for s in range(0, i.size, step):
        diff = x32[i[s:s + step]] - x32[j[s:s + step]]
        published[s:s + step] = np.linalg.norm(diff, axis=1)
        exact[s:s + step] = np.sqrt(np.square(diff.astype(np.float64)).sum(axis=1))
    return published, exact


def refine(distances: Distances, band: Band) -> Refined:
    """Recompute the pairs of ``band`` as the published code computes them."""
    i, j = np.divmod(band.index, max(distances.n, 1))
    published, exact = _recompute(distances._x32, i, j)
    return Refined(band.lo, band.hi, band.below, i, j, published, exact, band.positions)


class ExactEps(float):
    """``eps`` (a float), carrying the pairs refined to choose it, so that :func:`dbscan` tests neighbours
    near ``eps`` without recomputing them, and the neighbour graph at ``eps`` when the scan that chose it
    could build it on the way. Pickles and copies as a plain float."""

    refined: Refined
    token: int  # the Distances it was chosen from
    graph: PackedGraph | None  # the neighbours at eps (the upper triangle), None: dbscan builds them

    def __new__(cls, value: float, refined: Refined, token: int, graph: PackedGraph | None = None):
        obj = super().__new__(cls, value)
        obj.refined, obj.token, obj.graph = refined, token, graph
        return obj

    def __reduce__(self):
        return float, (float(self),)


def _triangle_ranks(n: int, percentile: float) -> tuple[int, int, float]:
    """Ranks in the upper triangle of the two values the percentile interpolates, and the weight.

    The published code takes the percentile over the ``n*(n-1)`` off-diagonal entries, each pair counted
    twice: sorted, that list holds every triangle value twice, so its rank ``r`` is triangle rank ``r // 2``.
    """
    total = n * (n - 1)
    index = percentile / 100.0 * (total - 1)
    lo = int(np.floor(index))
    return lo // 2, min(lo + 1, total - 1) // 2, index - lo


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)  # numpy's own interpolation


#: standard deviations of a sample quantile's rank that the bracket adds on each side, first try and retry: a
#: narrow bracket makes the scan cheap (fewer pairs collected, sorted and searched; about 1.5 % of the pairs
#: at 2.5), and a miss (about 1 input in 80 at 2.5) is detected and costs one more scan with the wide bracket
#: (a miss at 8: about one in 10^15)
_BRACKET_SIGMAS = (2.5, 8.0)


def _bracket(sample: np.ndarray, total: int, k_lo: int, k_hi: int,
             sigmas: float = _BRACKET_SIGMAS[0]) -> tuple[float, float]:
    """Bounds that hold triangle ranks ``k_lo..k_hi`` of ``total`` pairs, from a uniform ``sample`` of them,
    ``sigmas`` standard deviations of the sample quantile's rank wide on each side (a bracket that misses is
    detected and widened, so the answer is exact either way). No sample: everything, ``(-inf, inf)``."""
    size = sample.size
    if size < 2:
        return -np.inf, np.inf
    p = min(max(k_lo / max(total - 1, 1), 0.0), 1.0)
    margin = int(sigmas * np.sqrt(size * p * (1.0 - p))) + 8  # binomial sd of the sample rank, plus a floor
    r_lo = max(0, int(k_lo / (total - 1) * (size - 1)) - margin)
    r_hi = min(size - 1, int(k_hi / (total - 1) * (size - 1)) + margin)
    part = np.partition(sample, (r_lo, r_hi))
    lo = -np.inf if r_lo == 0 else float(part[r_lo])
    hi = np.inf if r_hi == size - 1 else float(part[r_hi])
    return lo, hi


def _two_ranks(values: np.ndarray, a: int, b: int) -> tuple[float, float]:
    """The values of ranks ``a`` and ``b`` (``b`` is ``a`` or ``a + 1``) of ``values``, by one selection."""
    part = np.partition(values, a)
    return part[a], part[a] if b == a else part[a + 1:].min()


def _holds(band: Band | Refined, k_lo: int, k_hi: int, size: int) -> bool:
    """Whether ranks ``k_lo..k_hi`` fall among the ``size`` pairs of the band."""
    return band.below <= k_lo and k_hi < band.below + size


def _refined_band(distances: Distances, k_lo: int, k_hi: int) -> tuple[Refined, Band | None]:
    """The pairs within ``3 * error_at`` of the approximate rank statistics, recomputed as published, and the
    scanned band they were cut from (with the pairs below it as a graph; None when a rescan was needed).

    An entry outside that band cannot cross the published statistics (nor any ``eps`` between them), so the
    published values of ranks ``k_lo..k_hi`` are found inside it."""
    squared = distances.squared
    total = distances.n * (distances.n - 1) // 2
    for sigmas in _BRACKET_SIGMAS:
        band = scan_upper(squared, *_bracket(distances.sample, total, k_lo, k_hi, sigmas), graph=True)
        if _holds(band, k_lo, k_hi, band.index.size):
            break
    else:  # both brackets missed: not expected to happen, but stay exact
        band = scan_upper(squared, -np.inf, np.inf)
    a2, b2 = _two_ranks(band.approx, k_lo - band.below, k_hi - band.below)
    lo, hi = float(a2) - 3 * distances.error_at(a2), float(b2) + 3 * distances.error_at(b2)
    if band.lo <= lo and hi <= band.hi:
        inner = band.within(lo, hi)
    else:
        inner, band = scan_upper(squared, lo, hi), None
    refined = refine(distances, inner)
    if not _holds(refined, k_lo, k_hi, refined.i.size):  # cannot happen with a valid bound; stay exact
        refined, band = refine(distances, scan_upper(squared, -np.inf, np.inf)), None
    return refined, band


def _covers(refined: Refined, eps: float, distances: Distances) -> bool:
    """Whether every pair left out of ``refined`` is certainly on the same side of ``eps`` either way."""
    w = 2 * distances.error_at(eps * eps)
    return refined.lo + w <= eps * eps <= refined.hi - w


def _around(distances: Distances, eps: float) -> Refined:
    """The pairs whose neighbour test at ``eps`` the approximate distances cannot decide, recomputed."""
    w = 3 * distances.error_at(eps * eps)
    return refine(distances, scan_upper(distances.squared, eps * eps - w, eps * eps + w))


@single_threaded
def exact_eps(distances: Distances, percentile: float, eps_min: float) -> ExactEps:
    """``max(percentile of the off-diagonal distances, eps_min)`` as the published code gets it.

    The percentile interpolates two ranks of the upper triangle; only the pairs that can decide them are
    recomputed as published (see :class:`Distances`). The returned :class:`ExactEps` is a float that also
    carries the refined pairs, so that :func:`dbscan` decides every neighbour test near ``eps`` the
    published way too. ``distances`` is left as it was.
    """
    n = distances.n
    if n < 2:
        empty = Refined(0.0, 0.0, 0, *(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.float32, np.float64)))
        return ExactEps(float(eps_min), empty, distances.token)
    k_lo, k_hi, t = _triangle_ranks(n, percentile)
    refined, band = _refined_band(distances, k_lo, k_hi)
    ranks = (k_lo - refined.below, k_hi - refined.below)
    a, b = _two_ranks(refined.published, *ranks)
    eps = max(_lerp(float(a), float(b), t), float(eps_min))
    if not _covers(refined, eps, distances):  # eps_min above the percentile
        return ExactEps(eps, _around(distances, eps), distances.token)
    graph = None
    if band is not None and band.under is not None and refined.positions is not None:
        # below the band: neighbours; above it: not; in it: the approximate test, or the exact one if refined
        near = band.approx <= band.approx.dtype.type(eps * eps)
        near[refined.positions] = refined.exact <= eps
        index = band.index[near]
        graph = band.under.plus(index // n, index % n)
    return ExactEps(eps, refined, distances.token, graph)



def neighbours(distances: Distances, eps: float) -> np.ndarray:
    """``(n, n)`` bool, True at ``i < j`` where ``distance <= eps`` (the upper triangle only, each pair once),
    every test that the approximate distances cannot decide made on the float64 distance of the published
    float32 differences."""
    usable = isinstance(eps, ExactEps) and eps.token == distances.token
    refined = eps.refined if usable and _covers(eps.refined, eps, distances) else _around(distances, eps)
    n = distances.n
    upper = np.zeros((n, n), dtype=bool)
    threshold = distances.squared.dtype.type(eps * eps)
    for (r0, r1), block in zip(distances.squared.rows, distances.squared.blocks):
        np.less_equal(block, threshold, out=upper[r0:r1, r0:])
    upper = np.triu(upper, 1)  # the blocks' entries on and below the diagonal are not distances
    upper[refined.i, refined.j] = refined.exact <= eps
    return upper



@single_threaded
def dbscan(distances: Distances, eps: float, min_samples: int) -> DBSCANResult:
    """DBSCAN at ``eps`` (best the :class:`ExactEps` that :func:`exact_eps` returned), with scikit-learn's
    semantics: neighbours are points with ``distance <= eps`` (each point its own neighbour), a core point has at
    least ``min_samples`` of them, clusters numbered and border points assigned as scikit-learn does."""
    carried = isinstance(eps, ExactEps) and eps.token == distances.token and eps.graph is not None
    graph = eps.graph if carried else PackedGraph.from_upper(neighbours(distances, eps))
    return dbscan_on_graph(graph, 1, min_samples)
