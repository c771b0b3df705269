"""Channel clustering: the important-channel split, pairwise distances, the percentile ``eps`` and DBSCAN.

Everything works on the ``(C, h*w)`` matrix of flattened channel maps and is vectorised over channels.
Squared distances come from one matrix product; ``eps`` is selected from the upper triangle only
(each pair once), a row block at a time, and only the pairs that could decide it (or a neighbour test at it)
are recomputed the way the published code computes them, in chunks of bounded size. ``dbscan`` reproduces
scikit-learn's ``DBSCAN`` labels exactly (same clusters, same numbering, same border assignment) from the
neighbour matrix, without scikit-learn's per-point neighbour lists. No function changes its arguments:
:func:`exact_eps` returns the pairs it refined with ``eps`` (an :class:`ExactEps`), and :func:`dbscan`
uses them from there. The three loops that numpy would take many passes for (the scan, adding edges, DBSCAN's
expansion) are compiled (:mod:`cfcam.core.kernels`, numba), imported on first use so that importing cfcam
stays fast.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from .threads import map_blocks, product_threads, single_threaded, torch_threads

IMPORTANT = -2
NOISE = -1

_U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32
_U64 = float(np.finfo(np.float64).eps) / 2
# float32 products while their worst-case error, relative to a typical squared distance, stays below this:
# beyond it so many pairs need recomputing that float64 products (twice the product's cost) are cheaper
_FLOAT32_MAX_RELATIVE_ERROR = 2e-3
_BLOCK_ELEMENTS = 1 << 19  # at most about this many entries per row block (2 MB float32): few, long products
_MIN_BLOCK_ELEMENTS = 1 << 15  # at least this many: below it the threads' hand-over costs more than it saves
_ROW_ALIGN = 64  # row blocks start on a multiple of this (one 64-bit word of packed bits)
_BLOCKS_FOR_THREADS = 8  # row blocks a large pass is cut into at least, so that threads can share it evenly
# multiply-adds of the distance product above which its blocks are shared out over threads; below it (layer4 at
# 224 px: ~1e8, 3 ms) waking another CPU costs about what it saves (measured on a 2-CPU virtual machine)
_PARALLEL_PRODUCT = 4e8
# multiply-adds of one image's product above which a second thread pays when the model's pass left one free: a
# batch's images are shared out over threads, a single image's product runs on torch's threads. Below it (a
# 512-channel 7x7 layer: 7e6, a core of ~2 ms) the hand-overs cost more than they save
_PARALLEL_IMAGES = 3e7
_REFINE_BYTES = 1 << 23  # bound on the differences held at once while recomputing pairs (8 MB of float64)
_SCAN_ROOM = 4096  # pairs inside a scan's band that its first try keeps room for, at least (1/32 of all)
_SAMPLE = 20_000  # pairs sampled to bracket the two ranks of the percentile
_tokens = itertools.count()


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


@functools.lru_cache(maxsize=16)
def _triangle_blocks_cached(n: int, largest: int, smallest: int, count: int) -> tuple[tuple[int, int], ...]:
    rows = max(1, largest // max(n, 1))
    if n * n // (2 * count) >= smallest:
        rows = min(rows, -(-n // count))
    rows = max(_ROW_ALIGN, rows - rows % _ROW_ALIGN)
    return tuple((r0, min(n, r0 + rows)) for r0 in range(0, n, rows))


def _triangle_blocks(n: int) -> tuple[tuple[int, int], ...]:
    """Row ranges ``(r0, r1)`` that cut the upper triangle of an ``n x n`` matrix into row blocks, largest
    first: at most about ``_BLOCK_ELEMENTS`` entries each (few blocks mean few products, each of which hands
    the GIL over when images run in threads), and at least
    ``_BLOCKS_FOR_THREADS`` blocks when the triangle is large enough, so that
    :func:`~cfcam.core.threads.map_blocks` can share them out. Blocks start on multiples of ``_ROW_ALIGN``
    rows, so that a block's packed neighbour bits start on a word."""
    return _triangle_blocks_cached(n, _BLOCK_ELEMENTS, _MIN_BLOCK_ELEMENTS, _BLOCKS_FOR_THREADS)


@functools.lru_cache(maxsize=16)
def _block_offsets(n: int, rows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Where each row block of a :class:`Triangle` starts in its flat array, and the total, ``(blocks + 1,)``."""
    return np.concatenate([[0], np.cumsum([(r1 - r0) * (n - r0) for r0, r1 in rows])]).astype(np.int64)


def _positions(n: int, rows: tuple[tuple[int, int], ...], index: np.ndarray) -> np.ndarray:
    """Where the entries at flat indices ``i * n + j`` (``i <= j``) of the square lie in the flat array of a
    :class:`Triangle` of ``n`` points cut into ``rows``."""
    i, j = np.divmod(index, max(n, 1))
    starts = np.array([r0 for r0, _ in rows], dtype=np.int64)
    k = np.searchsorted(starts, i, side="right") - 1
    r0 = starts[k]
    return _block_offsets(n, rows)[k] + (i - r0) * (n - r0) + (j - r0)


class Triangle:
    """The upper triangle of an ``(n, n)`` matrix, as the contiguous row blocks of :func:`_triangle_blocks`:
    block ``k`` holds rows ``r0:r1`` from column ``r0`` on, ``(r1 - r0, n - r0)``; its entries on and below
    the diagonal (in the square at its left) are whatever the product wrote there, and every reader skips
    them. Half the memory of the square, and each row block one contiguous array."""

    def __init__(self, n: int, dtype) -> None:
        self.n = n
        self.rows = _triangle_blocks(n)
        offsets = _block_offsets(n, self.rows)
        # one allocation (numpy's allocator reuses it, with huge pages): no page faults on every call
        self.flat = np.empty(int(offsets[-1]), dtype=dtype)
        self.blocks = [self.flat[o0:o1].reshape(r1 - r0, n - r0)
                       for o0, o1, (r0, r1) in zip(offsets, offsets[1:], self.rows)]

    @property
    def dtype(self) -> np.dtype:
        return self.flat.dtype

    def positions(self, index: np.ndarray) -> np.ndarray:
        """Positions in :attr:`flat` of the entries at flat indices ``i * n + j`` (``i <= j``) of the square."""
        return _positions(self.n, self.rows, index)

    def dense(self) -> np.ndarray:
        """``(n, n)``: the entries above the diagonal filled in, zeros on and below it."""
        out = np.zeros((self.n, self.n), dtype=self.dtype)
        for (r0, r1), block in zip(self.rows, self.blocks):
            out[r0:r1, r0:] = block
        return np.triu(out, 1)


@functools.lru_cache(maxsize=8)
def _sample_pairs(n: int) -> np.ndarray:
    """``_SAMPLE`` uniformly drawn pairs ``i < j`` (repeats allowed) as increasing flat indices ``i * n + j``;
    a fixed seed, so that the cost of a call is repeatable (the answer is exact either way)."""
    rng = np.random.default_rng(0)
    i = rng.integers(0, n, _SAMPLE)
    j = rng.integers(0, n - 1, _SAMPLE)
    j += j >= i  # a uniform pair of distinct points
    return np.sort(np.minimum(i, j) * n + np.maximum(i, j))


@functools.lru_cache(maxsize=8)
def _sample_positions(n: int, rows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Where :func:`_sample_pairs` lie in a :class:`Triangle` of ``n`` points cut into ``rows`` (increasing)."""
    return _positions(n, rows, _sample_pairs(n))


def _squared_distances(x: torch.Tensor, sq: torch.Tensor) -> tuple[Triangle, np.ndarray]:
    """``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` for the pairs ``i <= j``, as a :class:`Triangle` of x's dtype, and its
    values at :func:`_sample_pairs` (empty when the triangle has no more pairs than the sample).

    One matrix product per row block, over the block's own columns and those to its right only (about half
    the work of the full matrix), the blocks of a large product shared out over the core's threads; the two
    norms ride along as two extra columns (``[x, |x|^2, 1] . [-2x, 1, |x|^2]``), so each entry is written
    once, by the product, and the sampled entries are read while the block is in cache."""
    n = x.shape[0]
    ones = x.new_ones(n, 1)
    left = torch.cat([x, sq[:, None], ones], dim=1)
    right = torch.cat([-2.0 * x.T, ones.T, sq[None, :]], dim=0)
    out = Triangle(n, np.float32 if x.dtype == torch.float32 else np.float64)
    sampled = n * (n - 1) // 2 > _SAMPLE
    pairs = _sample_pairs(n) if sampled else np.zeros(0, dtype=np.int64)
    where = _sample_positions(n, out.rows) if sampled else pairs
    sample = np.empty(pairs.size, dtype=out.dtype)

    def product(k: int) -> None:
        r0, r1 = out.rows[k]
        torch.mm(left[r0:r1], right[:, r0:], out=torch.from_numpy(out.blocks[k]))
        s0, s1 = np.searchsorted(pairs, (r0 * n, r1 * n))
        sample[s0:s1] = out.flat[where[s0:s1]]

    if _product_size(n, x.shape[1]) > _PARALLEL_PRODUCT:
        map_blocks(product, range(len(out.rows)))
    else:
        with torch_threads(product_threads() if worth_threads_per_image(n, x.shape[1]) else 1):
            for k in range(len(out.rows)):
                product(k)
    return out, sample


def _product_size(n: int, dim: int) -> float:
    """Multiply-adds of :func:`_squared_distances` for ``n`` rows of ``dim`` values (the triangle, two norm
    columns)."""
    return n * (n + 1) / 2 * (dim + 2)


def worth_threads_per_image(channels: int, positions: int) -> bool:
    """Whether one image's core, ``channels`` maps of ``positions`` values, is worth a second thread (a batch's
    images one a thread, or a single image's product on torch's threads): true when its distance product is
    large."""
    return _product_size(channels, positions) > _PARALLEL_IMAGES


def _gamma(k: int, unit: float = _U32) -> float:
    """Higham's ``gamma_k``: the relative error bound of a sum or dot product of ``k`` terms (float32 default)."""
    return k * unit / (1 - k * unit)


class Distances:
    """Pairwise Euclidean distances between the rows of ``flat`` (channels), immutable once built.

    ``sample`` holds the entries of ``squared`` at a fixed random sample of pairs (:func:`_sample_pairs`).
    ``squared`` (a :class:`Triangle`) holds, for the pairs ``i < j`` (the diagonal is undefined), the squared
    distances of the mean-centred rows (distances do not change under translation; centring keeps the product well
    conditioned),
    from one matrix product, float32, or float64 when the float32 error bound would be large against the typical
    squared distance (long rows, a few rows far from the others). An entry ``v`` is within :meth:`error_at` ``(v)``
    of the squared distance the published code computes (float32 norms of float32 differences), of the float64 one
    and of the exact one (worst-case rounding bounds: ``error`` from the product, ``relative`` from the published
    rounding). The entries that decide something, the ranks that give ``eps`` and the pairs whose comparison with
    ``eps`` could flip, are recomputed by :func:`exact_eps` the way the published code computes them: ``eps`` from
    float32 distances of float32 differences (numpy's ``linalg.norm``), and each neighbour test ``d <= eps`` on the
    float64 distance. So the clustering is the published one, except at an exact tie: when the percentile falls on a
    pair counted twice, ``eps`` *is* that pair's float32 distance, and whether scikit-learn then counts the pair as
    neighbours depends on its own internal rounding. Here a tie is decided by the float64 distance, the same way
    every time.
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
        self.squared, self.sample = _squared_distances(centred, sq.to(centred.dtype))
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


@dataclass(frozen=True)
class Band:
    """The upper-triangle pairs ``i < j`` whose approximate squared distance lies in ``[lo, hi]``."""

    lo: float
    hi: float
    below: int  # pairs whose approximate squared distance is below lo
    index: np.ndarray  # the pairs in it, as flat indices ``i * n + j`` of the matrix, increasing
    approx: np.ndarray  # their approximate squared distances
    under: _PackedGraph | None = None  # the pairs below lo as a graph (``scan_upper(..., graph=True)``)
    positions: np.ndarray | None = None  # where this band's pairs are in the band it was cut from (within)

    def within(self, lo: float, hi: float) -> Band:
        """The part of this band inside ``[lo, hi]`` (which must lie inside the band's own range)."""
        keep = (self.approx >= lo) & (self.approx <= hi)
        below = self.below + int(np.count_nonzero(self.approx < lo))
        return Band(lo, hi, below, self.index[keep], self.approx[keep], positions=np.flatnonzero(keep))


def _column_counts(mask: np.ndarray) -> np.ndarray:
    """``mask.sum(axis=0)`` as uint32, adding bytes 255 rows at a time (numpy's fastest reduction)."""
    counts = np.zeros(mask.shape[1], dtype=np.uint32)
    as_bytes = mask.view(np.uint8)
    for s in range(0, mask.shape[0], 255):
        counts += np.add.reduce(as_bytes[s:s + 255], axis=0, dtype=np.uint8)
    return counts


def scan_upper(squared: Triangle, lo: float, hi: float, graph: bool = False) -> Band:
    """Count the upper-triangle entries below ``lo`` and collect those in ``[lo, hi]``, in one compiled pass
    that reads each entry once (:func:`~cfcam.core.kernels.scan_triangle`), on the calling thread.
    ``graph``: also keep the entries below ``lo`` as a bit-packed graph (``Band.under``), for DBSCAN at an
    eps inside the band. The thresholds are compared in the triangle's dtype, as numpy compares them."""
    from .kernels import scan_triangle

    n = squared.n
    packed = np.zeros((n, 8 * -(-n // 64)), dtype=np.uint8) if graph else np.zeros((1, 8), dtype=np.uint8)
    column_sums = np.zeros(n, dtype=np.int64)
    rows = _rows_array(squared.rows)
    offsets = _block_offsets(n, squared.rows)
    lo_t, hi_t = squared.dtype.type(lo), squared.dtype.type(hi)
    room = max(_SCAN_ROOM, squared.flat.size // 32)
    while True:
        index = np.empty(room, dtype=np.int64)
        approx = np.empty(room, dtype=squared.dtype)
        below, found = scan_triangle(squared.flat, rows, offsets, n, lo_t, hi_t, graph, packed, column_sums,
                                     index, approx)
        if found <= room:
            break
        room = found  # more pairs inside than guessed: once more, with room for all of them
        packed[:] = 0
        column_sums[:] = 0
    under = _PackedGraph(packed, column_sums, n) if graph else None
    return Band(lo, hi, int(below), index[:found].copy(), approx[:found].copy(), under)


@functools.lru_cache(maxsize=16)
def _rows_array(rows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """A :class:`Triangle`'s row ranges as an ``(blocks, 2)`` int64 array (for the compiled scan)."""
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


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
    graph: _PackedGraph | None  # the neighbours at eps (the upper triangle), None: dbscan builds them

    def __new__(cls, value: float, refined: Refined, token: int, graph: _PackedGraph | None = None):
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


def min_samples_for(n_points: int, fraction: float, floor: int) -> int:
    """``max(floor, int(fraction * n_points))``, as published (int truncates)."""
    return max(int(floor), int(fraction * n_points))


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


@dataclass(frozen=True)
class DBSCANResult:
    labels: np.ndarray  # (n,) -1 noise, 0..K-1 cluster ids numbered as scikit-learn numbers them
    core: np.ndarray  # (n,) bool core points
    n_neighbors: np.ndarray  # (n,) neighbours within eps, the point itself included


class _PackedGraph:
    """A symmetric graph given by its upper triangle, rows packed into bits (an eighth of a bool matrix's
    memory); DBSCAN's expansion walks it compiled (:func:`~cfcam.core.kernels.grow_clusters`)."""

    def __init__(self, packed: np.ndarray, column_sums: np.ndarray, n: int) -> None:
        """``packed`` ``(n, 8 * words)`` uint8: row ``i``'s bits ``i < j`` (numpy's packbits order), zero padded;
        ``column_sums`` ``(n,)``: the bits set in each column."""
        self.n = n
        self.rows = packed.view(np.uint64)
        self.column_sums = column_sums

    @functools.cached_property
    def degree(self) -> np.ndarray:
        """``(n,)`` neighbours of each point (itself not counted)."""
        return np.bitwise_count(self.rows).sum(axis=1, dtype=np.int64) + self.column_sums

    @classmethod
    def from_upper(cls, upper: np.ndarray) -> _PackedGraph:
        """The graph of an ``(n, n)`` bool matrix that is False on and below the diagonal."""
        n = upper.shape[0]
        packed = np.zeros((n, 8 * -(-n // 64)), dtype=np.uint8)
        packed[:, :-(-n // 8)] = np.packbits(upper, axis=1)
        return cls(packed, _column_counts(upper).astype(np.int64), n)

    def plus(self, i: np.ndarray, j: np.ndarray) -> _PackedGraph:
        """A new graph with the edges ``(i, j)`` (``i < j``, no pair twice) added; this one is left as it is."""
        from .kernels import set_bits

        packed = self.rows.view(np.uint8).copy()
        gained = set_bits(packed, np.ascontiguousarray(i, dtype=np.int64), np.ascontiguousarray(j, dtype=np.int64))
        return _PackedGraph(packed, self.column_sums + gained, self.n)


def _grow_clusters(graph: _PackedGraph, core: np.ndarray) -> np.ndarray:
    """Labels of scikit-learn's expansion: clusters grown from the lowest-index unlabelled core point, breadth
    first over whole frontiers, a border point joining the first cluster that reaches it (compiled:
    :func:`~cfcam.core.kernels.grow_clusters`)."""
    from .kernels import grow_clusters

    return grow_clusters(np.ascontiguousarray(graph.rows), np.ascontiguousarray(core, dtype=np.bool_))


@single_threaded
def dbscan(distances: np.ndarray | Distances, eps: float, min_samples: int) -> DBSCANResult:
    """DBSCAN on a symmetric distance matrix, or on :class:`Distances` at ``eps`` (best the
    :class:`ExactEps` that :func:`exact_eps` returned), with scikit-learn's semantics.

    Neighbours are points with ``distance <= eps`` (each point its own neighbour); a core point has at least
    ``min_samples`` of them; a cluster is a connected component of core points plus the border points they
    reach, numbered and assigned exactly as scikit-learn does.
    """
    if isinstance(distances, Distances):
        carried = isinstance(eps, ExactEps) and eps.token == distances.token and eps.graph is not None
        graph = eps.graph if carried else _PackedGraph.from_upper(neighbours(distances, eps))
        itself = 1
    else:
        itself = (np.diagonal(distances) <= eps).astype(np.int64)
        graph = _PackedGraph.from_upper(np.triu(distances <= eps, 1))
    if graph.n == 0:
        return DBSCANResult(np.full(0, NOISE, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64))
    n_neighbors = graph.degree + itself
    core = n_neighbors >= min_samples
    return DBSCANResult(_grow_clusters(graph, core), core, n_neighbors)
