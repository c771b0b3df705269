"""Compiled loops (numba) for the three steps of the core that numpy can only do in many passes.

- :func:`scan_triangle` sorts every pair of the distance triangle into below ``lo`` / in ``[lo, hi]`` /
  above, keeping the pairs below as packed neighbour bits with their column counts and the pairs inside as a
  list: one pass that reads each distance once (numpy: seven passes and about fifteen calls per row block).
- :func:`set_bits` adds the band's neighbours to those bits.
- :func:`grow_clusters` is DBSCAN's expansion over the bit rows.

They are plain Python over arrays, compiled on first use and cached on disk, single-threaded and without the
GIL (a batch's images can run them in threads). Values are compared exactly as numpy compares them (same
dtype, same thresholds) and the labels are scikit-learn's, so results are the same bit for bit.

Every loop runs over an offset from its start (``for t in range(stop - start): j = start + t``): LLVM does
not vectorise a loop whose range starts at a variable index, which makes it 4-7x slower.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numba
import numpy as np


def cache_dir() -> Path | None:
    """Where the compiled loops are cached: ``NUMBA_CACHE_DIR`` when the user set it (numba's own setting,
    None here), else the user's cache folder (``$XDG_CACHE_HOME/cfcam/numba``, ``~/.cache/cfcam/numba``,
    ``%LOCALAPPDATA%\\cfcam\\numba`` on Windows), so that nothing is written into the installed package."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cfcam" / "numba"


@contextmanager
def _caching_in(folder: Path | None):
    """numba's cache folder set to ``folder`` while a function is decorated (it keeps the path), then restored,
    so that other numba code in the process keeps its own setting. A folder that cannot be made: numba's
    default places (beside this file, else none)."""
    before = numba.config.CACHE_DIR
    try:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            numba.config.CACHE_DIR = str(folder)
    except OSError:
        pass
    try:
        yield
    finally:
        numba.config.CACHE_DIR = before


def _compiled(**options):
    """``numba.njit`` without the GIL and bounds checks, cached on disk in :func:`cache_dir` (or where numba
    finds a writable place); compiled afresh in each process where there is none."""
    def decorate(fn):
        try:
            with warnings.catch_warnings(), _caching_in(cache_dir()):
                warnings.simplefilter("ignore", numba.NumbaWarning)
                return numba.njit(nogil=True, boundscheck=False, cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, boundscheck=False, **options)(fn)
    return decorate


def _de_bruijn_positions(constant: int) -> np.ndarray:
    """``table[(2**t * constant mod 2**64) >> 58] = t``: a single set bit's position from one product."""
    table = np.zeros(64, dtype=np.int64)
    for t in range(64):
        table[((1 << t) * constant % (1 << 64)) >> 58] = t
    return table


_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)  # a de Bruijn sequence: the top 6 bits of 2**t * it differ for each t
_DE_BRUIJN_POSITION = _de_bruijn_positions(int(_DE_BRUIJN))
_TOP6 = np.uint64(58)
_ONE = np.uint64(1)


@_compiled()
def scan_triangle(flat, rows, offsets, n, lo, hi, graph, packed, column_sums, index, values):  # pragma: no cover
    """One pass over a :class:`~cfcam.core.engine.triangle.Triangle`'s ``flat`` row blocks (``rows`` ``(B, 2)``
    row ranges, ``offsets`` ``(B + 1,)`` where each starts): returns ``(below, found)``, the pairs ``i < j``
    whose value is ``< lo`` and those in ``[lo, hi]``. The first ``min(found, index.size)`` pairs inside are
    written to ``index`` (``i * n + j``, increasing) and ``values``; when ``found`` is larger the caller
    calls again with room for them. ``graph``: the pairs below ``lo`` are also set in ``packed``
    (``(n, bytes)`` uint8, zeros, rows in numpy's packbits order); they are counted per column into
    ``column_sums`` (``(n,)`` int64, zeros) either way. ``lo`` and ``hi`` must have ``flat``'s dtype."""
    room = index.size
    width8 = (n + 15) // 8 * 8
    under = np.zeros(width8, dtype=np.uint8)
    inside = np.zeros(width8, dtype=np.uint8)
    inside_bits = np.zeros((width8 // 64 + 1) * 8, dtype=np.uint8)
    inside_words = inside_bits.view(np.uint64)
    below = 0
    found = 0
    for k in range(rows.shape[0]):
        r0 = rows[k, 0]
        r1 = rows[k, 1]
        width = n - r0
        block = flat[offsets[k]:offsets[k + 1]].reshape(r1 - r0, width)
        sums = column_sums[r0:]
        for a in range(r1 - r0):
            row = block[a]
            first = a + 1  # the first column above the diagonal
            if first >= width:
                continue
            count = 0
            count_inside = 0
            for t in range(width - first):
                j = first + t
                v = row[j]
                u = v < lo
                w = (v <= hi) & (not u)
                under[j] = u
                inside[j] = w
                sums[j] += u
                count += u
                count_inside += w
            below += count
            byte0 = first // 8
            end = (width + 7) // 8
            for j in range(8 * byte0, first):  # the first byte's columns on or below the diagonal
                under[j] = 0
                inside[j] = 0
            for j in range(width, 8 * end):  # past the last column
                under[j] = 0
                inside[j] = 0
            if graph and count:
                out = packed[r0 + a, r0 // 8:]
                for t in range(end - byte0):
                    b = byte0 + t
                    s = 8 * b
                    out[b] = ((under[s] << 7) | (under[s + 1] << 6) | (under[s + 2] << 5) | (under[s + 3] << 4)
                              | (under[s + 4] << 3) | (under[s + 5] << 2) | (under[s + 6] << 1) | under[s + 7])
            if count_inside:
                # the inside bytes packed into 64-column words (column 64 q + t is bit t of word q), then each
                # set bit visited by its position (the lowest set bit, looked up through a de Bruijn product)
                word0 = byte0 // 8
                words_end = (end + 7) // 8
                for b in range(8 * word0, byte0):
                    inside_bits[b] = 0
                for t in range(end - byte0):
                    b = byte0 + t
                    s = 8 * b
                    inside_bits[b] = (inside[s] | (inside[s + 1] << 1) | (inside[s + 2] << 2) | (inside[s + 3] << 3)
                                      | (inside[s + 4] << 4) | (inside[s + 5] << 5) | (inside[s + 6] << 6)
                                      | (inside[s + 7] << 7))
                for b in range(end, 8 * words_end):
                    inside_bits[b] = 0
                base = (r0 + a) * n + r0
                for t in range(words_end - word0):
                    q = word0 + t
                    bits = inside_words[q]
                    while bits:
                        lowest = bits & (~bits + _ONE)
                        j = 64 * q + _DE_BRUIJN_POSITION[(lowest * _DE_BRUIJN) >> _TOP6]
                        if found < room:
                            index[found] = base + j
                            values[found] = row[j]
                        found += 1
                        bits ^= lowest
    return below, found


@_compiled()
def set_bits(packed, i, j):  # pragma: no cover - compiled
    """Set bit ``(i[e], j[e])`` of ``packed`` (``(n, bytes)`` uint8, numpy's packbits order) for every ``e``;
    returns how many bits each column ``j`` gained, ``(packed.shape[0],)`` int64 (each pair given once)."""
    gained = np.zeros(packed.shape[0], dtype=np.int64)
    for e in range(i.size):
        c = j[e]
        packed[i[e], c >> 3] |= np.uint8(128 >> (c & 7))
        gained[c] += 1
    return gained


@_compiled(inline="always")
def _word_bit(c):  # pragma: no cover - compiled
    """Column ``c``'s bit in its uint64 word of a packbits row: byte ``(c >> 3) & 7``, bit ``7 - (c & 7)``."""
    return np.uint64(1) << np.uint64(8 * ((c >> 3) & 7) + 7 - (c & 7))


@_compiled()
def grow_clusters(rows, core):  # pragma: no cover - compiled
    """scikit-learn's DBSCAN labels on a graph given by its upper triangle as bit rows (``(n, words)``
    uint64, numpy's packbits byte order): clusters grown from the lowest-index unlabelled core point, whole
    frontiers at a time, a border point joining the first cluster that reaches it; -1 for noise.

    A point ``k`` is adjacent to the frontier when a frontier point above it has ``k``'s bit in its row, or
    when ``k``'s own row has the bit of a frontier point below it."""
    n, words = rows.shape
    labels = np.full(n, -1, dtype=np.int64)
    frontier = np.empty(n, dtype=np.int64)
    following = np.empty(n, dtype=np.int64)
    frontier_bits = np.zeros(words, dtype=np.uint64)
    reach = np.zeros(words, dtype=np.uint64)
    cluster = 0
    for seed in range(n):
        if not core[seed] or labels[seed] != -1:
            continue
        labels[seed] = cluster
        frontier[0] = seed
        size = 1
        while size:
            reach[:] = 0
            for f in range(size):
                p = frontier[f]
                frontier_bits[p >> 6] |= _word_bit(p)
                for w in range(words):
                    reach[w] |= rows[p, w]
            following_size = 0
            for k in range(n):
                if labels[k] != -1:
                    continue
                adjacent = (reach[k >> 6] & _word_bit(k)) != 0
                if not adjacent:
                    for w in range(words):
                        if rows[k, w] & frontier_bits[w]:
                            adjacent = True
                            break
                if adjacent:
                    labels[k] = cluster
                    if core[k]:
                        following[following_size] = k
                        following_size += 1
            for f in range(size):
                frontier_bits[frontier[f] >> 6] = np.uint64(0)
            frontier, following = following, frontier
            size = following_size
        cluster += 1
    return labels
