"""The distance triangle: squared distances between channels for the pairs ``i <= j`` from one matrix product
per row block, and one compiled scan that sorts its entries into below / inside / above a bracket.

Half the memory of the square matrix, each row block one contiguous array; large products are shared out over
threads (:func:`~cfcam.core.engine.threads.map_blocks`). Part of the fast engine: the plain path
(:mod:`cfcam.core.clustering`) builds the full matrix instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .graph import PackedGraph
from .kernels import scan_triangle
from .threads import map_blocks, product_threads, torch_threads

_BLOCK_ELEMENTS = 1 << 19  # at most about this many entries per row block (2 MB float32): few, long products
_MIN_BLOCK_ELEMENTS = 1 << 15  # at least this many: below it the threads' hand-over costs more than it saves
_ROW_ALIGN = 64  # row blocks start on a multiple of this (one 64-bit word of packed bits)
_BLOCKS_FOR_THREADS = 8  # row blocks a large pass is cut into at least, so that threads can share it evenly
# Tuning thresholds, in multiply-adds of the distance product (``_product_size``). They only choose how the work
# is scheduled, never what it computes, and `make bench` is where to re-tune them for other machines.
# Above this, a product's row blocks are shared out over threads (below it, waking another CPU costs about what
# it saves: a ResNet50 layer4 at 224 px is ~1e8).
_PARALLEL_PRODUCT = 4e8
# Above this, one image's core is worth a thread of its own when the model's pass left a CPU free (a batch's
# images one a thread, or a single image's product on torch's threads); below it (a 512-channel 7x7 layer is
# 7e6) the hand-overs of Python's lock cost more than they save.
_PARALLEL_IMAGES = 3e7
_SCAN_ROOM = 4096  # pairs inside a scan's band that its first try keeps room for, at least (1/32 of all)
_SAMPLE = 20_000  # pairs sampled to bracket the two ranks of the percentile


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
    :func:`~cfcam.core.engine.threads.map_blocks` can share them out. Blocks start on multiples of ``_ROW_ALIGN``
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
def sample_pairs(n: int) -> np.ndarray:
    """``_SAMPLE`` uniformly drawn pairs ``i < j`` (repeats allowed) as increasing flat indices ``i * n + j``;
    a fixed seed, so that the cost of a call is repeatable (the answer is exact either way)."""
    rng = np.random.default_rng(0)
    i = rng.integers(0, n, _SAMPLE)
    j = rng.integers(0, n - 1, _SAMPLE)
    j += j >= i  # a uniform pair of distinct points
    return np.sort(np.minimum(i, j) * n + np.maximum(i, j))


@functools.lru_cache(maxsize=8)
def _sample_positions(n: int, rows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Where :func:`sample_pairs` lie in a :class:`Triangle` of ``n`` points cut into ``rows`` (increasing)."""
    return _positions(n, rows, sample_pairs(n))


def squared_distances(x: torch.Tensor, sq: torch.Tensor) -> tuple[Triangle, np.ndarray]:
    """``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` for the pairs ``i <= j``, as a :class:`Triangle` of x's dtype, and its
    values at :func:`sample_pairs` (empty when the triangle has no more pairs than the sample).

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
    pairs = sample_pairs(n) if sampled else np.zeros(0, dtype=np.int64)
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
    """Multiply-adds of :func:`squared_distances` for ``n`` rows of ``dim`` values (the triangle, two norm
    columns)."""
    return n * (n + 1) / 2 * (dim + 2)


def worth_threads_per_image(channels: int, positions: int) -> bool:
    """Whether one image's core, ``channels`` maps of ``positions`` values, is worth a second thread (a batch's
    images one a thread, or a single image's product on torch's threads): true when its distance product is
    large."""
    return _product_size(channels, positions) > _PARALLEL_IMAGES


@dataclass(frozen=True)
class Band:
    """The upper-triangle pairs ``i < j`` whose approximate squared distance lies in ``[lo, hi]``."""

    lo: float
    hi: float
    below: int  # pairs whose approximate squared distance is below lo
    index: np.ndarray  # the pairs in it, as flat indices ``i * n + j`` of the matrix, increasing
    approx: np.ndarray  # their approximate squared distances
    under: PackedGraph | None = None  # the pairs below lo as a graph (``scan_upper(..., graph=True)``)
    positions: np.ndarray | None = None  # where this band's pairs are in the band it was cut from (within)

    def within(self, lo: float, hi: float) -> Band:
        """The part of this band inside ``[lo, hi]`` (which must lie inside the band's own range)."""
        keep = (self.approx >= lo) & (self.approx <= hi)
        below = self.below + int(np.count_nonzero(self.approx < lo))
        return Band(lo, hi, below, self.index[keep], self.approx[keep], positions=np.flatnonzero(keep))



def scan_upper(squared: Triangle, lo: float, hi: float, graph: bool = False) -> Band:
    """Count the upper-triangle entries below ``lo`` and collect those in ``[lo, hi]``, in one compiled pass
    that reads each entry once (:func:`~cfcam.core.engine.kernels.scan_triangle`), on the calling thread.
    ``graph``: also keep the entries below ``lo`` as a bit-packed graph (``Band.under``), for DBSCAN at an
    eps inside the band. The thresholds are compared in the triangle's dtype, as numpy compares them."""
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
    under = PackedGraph(packed, column_sums, n) if graph else None
    return Band(lo, hi, int(below), index[:found].copy(), approx[:found].copy(), under)


@functools.lru_cache(maxsize=16)
def _rows_array(rows: tuple[tuple[int, int], ...]) -> np.ndarray:
    """A :class:`Triangle`'s row ranges as an ``(blocks, 2)`` int64 array (for the compiled scan)."""
    return np.array(rows, dtype=np.int64).reshape(-1, 2)

