"""DBSCAN over a neighbour graph packed into bits: the expansion compiled (:mod:`.kernels`), the labels
scikit-learn's exactly (same clusters, same numbering, same border assignment)."""

from __future__ import annotations

import functools

import numpy as np

from ..clustering import NOISE, DBSCANResult
from .kernels import grow_clusters, set_bits


def column_counts(mask: np.ndarray) -> np.ndarray:
    """``mask.sum(axis=0)`` as uint32, adding bytes 255 rows at a time (numpy's fastest reduction)."""
    counts = np.zeros(mask.shape[1], dtype=np.uint32)
    as_bytes = mask.view(np.uint8)
    for s in range(0, mask.shape[0], 255):
        counts += np.add.reduce(as_bytes[s:s + 255], axis=0, dtype=np.uint8)
    return counts


class PackedGraph:
    """A symmetric graph given by its upper triangle, rows packed into bits (an eighth of a bool matrix's
    memory); DBSCAN's expansion walks it compiled (:func:`~cfcam.core.engine.kernels.grow_clusters`)."""

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
    def from_upper(cls, upper: np.ndarray) -> PackedGraph:
        """The graph of an ``(n, n)`` bool matrix that is False on and below the diagonal."""
        n = upper.shape[0]
        packed = np.zeros((n, 8 * -(-n // 64)), dtype=np.uint8)
        packed[:, :-(-n // 8)] = np.packbits(upper, axis=1)
        return cls(packed, column_counts(upper).astype(np.int64), n)

    def plus(self, i: np.ndarray, j: np.ndarray) -> PackedGraph:
        """A new graph with the edges ``(i, j)`` (``i < j``, no pair twice) added; this one is left as it is."""
        packed = self.rows.view(np.uint8).copy()
        gained = set_bits(packed, np.ascontiguousarray(i, dtype=np.int64), np.ascontiguousarray(j, dtype=np.int64))
        return PackedGraph(packed, self.column_sums + gained, self.n)


def grow(graph: PackedGraph, core: np.ndarray) -> np.ndarray:
    """Labels of scikit-learn's expansion: clusters grown from the lowest-index unlabelled core point, breadth
    first over whole frontiers, a border point joining the first cluster that reaches it (compiled:
    :func:`~cfcam.core.engine.kernels.grow_clusters`)."""
    return grow_clusters(np.ascontiguousarray(graph.rows), np.ascontiguousarray(core, dtype=np.bool_))


def dbscan_on_graph(graph: PackedGraph, itself, min_samples: int) -> DBSCANResult:
    """DBSCAN's labels on ``graph``: ``itself`` (1, or an ``(n,)`` array) counts each point as its own neighbour."""
    if graph.n == 0:
        return DBSCANResult(np.full(0, NOISE, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64))
    n_neighbors = graph.degree + itself
    core = n_neighbors >= min_samples
    return DBSCANResult(grow(graph, core), core, n_neighbors)

