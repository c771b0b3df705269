"""Notebook 02's checks (channel clustering): eps as a percentile, min_samples, the cluster sizes."""

from __future__ import annotations

import numpy as np
import torch

from ...core import clustering as cl
from ..reference import eps_from_distances, pairwise_distances
from .framework import Case, Mistake, Wrong, expect_array, to_array, to_scalar, verify

__all__ = ["check_cluster_sizes", "check_min_samples", "check_percentile_eps"]


def _distance_matrix(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


def _off(d) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    return d[~np.eye(d.shape[0], dtype=bool)]


def _eps(values, p, method="linear") -> float:
    values = np.asarray(values, dtype=np.float64)
    return max(float(np.percentile(values, p, method=method)), 1e-5) if values.size else 1e-5


_NONZERO = ("you left out every zero distance, not only the diagonal. Channels that are identical (dead, all-zero "
            "channels, for example) are at distance 0 from each other, and those pairs count: leave out the "
            "diagonal only.")


def _positive(d) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    return d[d > 0]


EPS_MISTAKES = [
    Mistake(_NONZERO, lambda d, percentile=25.0: max(float(np.percentile(_positive(d), percentile)), 1e-5)),
    Mistake(_NONZERO, lambda d, percentile=25.0: _eps(_positive(d), percentile)),
    Mistake("leave the diagonal out: a channel's distance to itself is always 0 and pulls the percentile down.",
            lambda d, percentile=25.0: _eps(d, percentile)),
    Mistake("take every off-diagonal entry of the full matrix (each pair counted twice, (i, j) and (j, i)), as the "
            "published code does, not only the upper triangle.",
            lambda d, percentile=25.0: _eps(np.asarray(d)[np.triu_indices(len(d), 1)], percentile)),
    Mistake("use the `percentile` argument instead of a fixed 25.", lambda d, percentile=25.0: _eps(_off(d), 25.0)),
    Mistake("percentiles run from 0 to 100 here (25, not 0.25).",
            lambda d, percentile=25.0: _eps(_off(d), percentile / 100)),
    Mistake("when every distance is 0 the percentile is 0, and DBSCAN needs eps > 0: return at least 1e-5.",
            lambda d, percentile=25.0: float(np.percentile(_off(d), percentile))),
    Mistake("the answer must be *at least* 1e-5: the larger of the percentile and 1e-5, not the smaller.",
            lambda d, percentile=25.0: min(float(np.percentile(_off(d), percentile)), 1e-5)),
] + [Mistake(f"the percentile falls between two distances: interpolate linearly between them (NumPy's default), "
             f"do not take {word}.", lambda d, percentile=25.0, m=method: _eps(_off(d), percentile, m))
     for method, word in [("lower", "the lower of the two"), ("higher", "the higher of the two"),
                          ("nearest", "the nearer of the two"), ("midpoint", "the midpoint between them")]]

MIN_SAMPLES_MISTAKES = [
    Mistake("you rounded `fraction * n_channels` to the nearest integer; the published code truncates (drops the "
            "fractional part), then applies the floor.",
            lambda n, fraction=0.05, floor=2: max(floor, round(fraction * n))),
    Mistake("you rounded `fraction * n_channels` up; the published code truncates (drops the fractional part).",
            lambda n, fraction=0.05, floor=2: max(floor, int(np.ceil(fraction * n)))),
    Mistake("never go below the floor: a cluster needs at least `floor` channels.",
            lambda n, fraction=0.05, floor=2: int(fraction * n)),
    Mistake("the floor is a lower bound: take the larger of the floor and the truncated fraction, not the smaller.",
            lambda n, fraction=0.05, floor=2: min(floor, int(fraction * n))),
    Mistake("the floor is a lower bound, not something to add.",
            lambda n, fraction=0.05, floor=2: floor + int(fraction * n)),
    Mistake("use the `fraction` and `floor` arguments instead of fixed 0.05 and 2.",
            lambda n, fraction=0.05, floor=2: max(2, int(0.05 * n))),
]


def _sizes(labels) -> np.ndarray:
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=int(labels.max()) + 1 if labels.max() >= 0 else 0)


SIZE_MISTAKES = [
    Mistake("noise (-1) and important (-2) channels are not clusters: leave them out of the count.",
            lambda labels: np.unique(labels, return_counts=True)[1]),
    Mistake("entry j must be the size of the cluster labelled j: do not sort the sizes.",
            lambda labels: np.sort(_sizes(labels))),
    Mistake("entry j must be the size of the cluster labelled j: do not sort the sizes.",
            lambda labels: np.sort(_sizes(labels))[::-1]),
    Mistake("the last cluster is missing: the cluster ids run from 0 to the largest label, inclusive.",
            lambda labels: _sizes(labels)[:-1]),
    Mistake("return how many channels each cluster has (a count), not its share of the channels.",
            lambda labels: _sizes(labels) / len(labels)),
]


def check_percentile_eps(fn) -> bool:
    """``fn(distances, percentile=25.0)``: the percentile (linear interpolation) of the off-diagonal distances,
    each pair counted twice, at least ``1e-5``."""
    line = np.array([[0.0], [1.0], [3.0], [7.0]])
    rand = np.random.default_rng(3).normal(size=(30, 12))
    d_line = _distance_matrix(line).astype(np.float32)
    d_rand = pairwise_distances(rand)
    d_same = np.zeros((6, 6), dtype=np.float32)
    dead = np.random.default_rng(5).normal(size=(14, 9))
    dead[[1, 4, 6, 9, 12]] = 0.0  # five dead channels: all zero, at distance 0 from each other
    d_dead = pairwise_distances(dead)
    cases = [
        Case("the 4 x 4 distances between 4 points at 0, 1, 3 and 7 on a line", (d_line,), None),
        Case("distances between 30 random channels (30 x 30)", (d_rand,), None),
        Case("the same 30 x 30 distances with percentile=10", (d_rand,), None, {"percentile": 10.0}),
        Case("the same 30 x 30 distances with percentile=40 (between two different distances, nearer the upper)",
             (d_rand,), None, {"percentile": 40.0}),
        Case("6 identical channels: every distance is 0", (d_same,), None),
        Case("14 channels, 5 of them dead (all zero, so at distance 0 from each other)", (d_dead,), None),
        Case("the same 14 channels with percentile=10", (d_dead,), None, {"percentile": 10.0}),
    ]
    for case in cases:
        p = case.kwargs.get("percentile", 25.0)
        case.expected = eps_from_distances(case.args[0].astype(np.float64), p, 1e-5)

    def compare(out, case):
        got = to_scalar(out, "eps")
        d = case.args[0].astype(np.float64)
        p = case.kwargs.get("percentile", 25.0)
        n = d.shape[0]
        off = d[~np.eye(n, dtype=bool)]
        upper = d[np.triu_indices(n, 1)]
        expected = case.expected
        if not np.isfinite(got):
            raise Wrong(f"it returned {got}")
        if np.isclose(got, expected, rtol=1e-5, atol=1e-12):
            return
        if expected > 1e-5:
            if np.isclose(got, _eps(d[d > 0], p), rtol=1e-5) and (off == 0).any():
                raise Wrong(f"eps = {got:.6g}, expected {expected:.6g} (too large)", _NONZERO)
            if np.isclose(got, np.percentile(d, p), rtol=1e-5):
                raise Wrong(f"eps = {got:.6g}, expected {expected:.6g} (too small)",
                             "leave the diagonal out: a channel's distance to itself is always 0 and pulls the "
                             "percentile down.")
            if np.isclose(got, np.percentile(upper, p), rtol=1e-5):
                raise Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                             "take every off-diagonal entry of the full matrix (each pair counted twice, (i, j) and "
                             "(j, i)), as the published code does, not only the upper triangle.")
            if np.isclose(got, np.percentile(off, 25.0), rtol=1e-5) and p != 25.0:
                raise Wrong(f"eps = {got:.6g}, expected {expected:.6g} for percentile={p}",
                             "use the `percentile` argument instead of a fixed 25.")
            if np.isclose(got, np.percentile(off, p / 100.0), rtol=1e-5):
                raise Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                             "percentiles run from 0 to 100 here (25, not 0.25).")
        elif got < 1e-5:
            raise Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                         "when every distance is 0 the percentile is 0, and DBSCAN needs eps > 0: return at least "
                         "eps_min = 1e-5.")
        raise Wrong(f"eps = {got:.6g}, expected {expected:.6g}")

    return verify(fn, "the percentile of the off-diagonal distances", cases, compare,
                   "eps is the `percentile`-th percentile (numpy's default linear interpolation) of all off-diagonal "
                   "entries of the distance matrix, and at least 1e-5.",
                   "eps is a percentile of the pairwise distances between channels (diagonal left out), at least "
                   "1e-5.", EPS_MISTAKES)


def check_min_samples(fn) -> bool:
    """``fn(n_channels, fraction=0.05, floor=2)`` -> ``max(floor, int(fraction * n_channels))``."""
    specs = [
        ("512 channels (all of layer4)", (512,), {}),
        ("384 channels (layer4 after the important split)", (384,), {}),
        ("20 channels", (20,), {}),
        ("59 channels (5 % is 2.95)", (59,), {}),
        ("419 channels (5 % is 20.95)", (419,), {}),
        ("100 channels with fraction=0.1", (100,), {"fraction": 0.1}),
        ("10 channels with fraction=0.5 and floor=6", (10,), {"fraction": 0.5, "floor": 6}),
    ]
    cases = [Case(label, args, cl.min_samples_for(args[0], kw.get("fraction", 0.05), kw.get("floor", 2)), kw)
             for label, args, kw in specs]

    def compare(out, case):
        if isinstance(out, bool) or isinstance(out, np.bool_):
            raise Wrong(f"it returned {out!r}, expected an integer")
        got = to_scalar(out, "min_samples")
        n = case.args[0]
        frac = case.kwargs.get("fraction", 0.05)
        floor = case.kwargs.get("floor", 2)
        expected = case.expected
        if got == expected:
            if not isinstance(out, (int, np.integer)) and not (isinstance(out, torch.Tensor)
                                                               and not out.is_floating_point()):
                raise Wrong(f"it returned {out!r} ({type(out).__name__}), the right value but not an integer",
                             "min_samples is a count of channels: return a Python (or NumPy) integer, not a float.")
            return
        if float(got) != int(got):
            raise Wrong(f"min_samples = {got!r}, expected the whole number {expected}",
                         "min_samples counts channels: truncate `fraction * n_channels` to a whole number (the "
                         "published code drops the fractional part), then apply the floor.")
        if got == max(floor, round(frac * n)) or got == max(floor, int(np.ceil(frac * n))):
            raise Wrong(f"min_samples = {got}, expected {expected}",
                         "the published code truncates (drops the fractional part); it does not round.")
        if got == int(frac * n) or got == frac * n:
            raise Wrong(f"min_samples = {got}, expected {expected}",
                         f"never go below the floor (floor={floor}): a cluster needs at least two channels.")
        if got == max(2, int(0.05 * n)) and (frac, floor) != (0.05, 2):
            raise Wrong(f"min_samples = {got}, expected {expected}",
                         "use the `fraction` and `floor` arguments instead of fixed 0.05 and 2.")
        raise Wrong(f"min_samples = {got}, expected {expected}")

    return verify(fn, "min_samples from the number of channels", cases, compare,
                   "min_samples is `fraction` of the number of channels, truncated to an integer, but never less "
                   "than `floor`.",
                   "min_samples is the truncated fraction of the channels, at least the floor.",
                   MIN_SAMPLES_MISTAKES)


def check_cluster_sizes(fn) -> bool:
    """``fn(labels)``: per-channel labels (-2 important, -1 noise, 0..K-1 cluster) -> sizes ``(K,)``."""
    rng = np.random.default_rng(4)
    big = rng.choice([-1, 0, 1, 2, 3, 4], size=384, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05])
    cases = [
        Case("labels [0, 0, 1, -1, 1, 1, 2, -1]", (np.array([0, 0, 1, -1, 1, 1, 2, -1]),), None),
        Case("labels with important channels (-2), noise (-1) and clusters out of order",
              (np.array([2, -2, 0, -2, 1, 0, -1, 2, 2, -2]),), None),
        Case("every channel is noise: no cluster at all", (np.full(7, -1),), None),
        Case("384 channels in 5 clusters plus noise", (big,), None),
    ]
    for case in cases:
        labels = case.args[0]
        k = int(labels.max()) + 1 if labels.max() >= 0 else 0
        case.expected = np.bincount(labels[labels >= 0], minlength=k).astype(np.float64)

    def compare(out, case):
        labels = case.args[0]
        if isinstance(out, dict):
            try:
                k = len(case.expected)
                if sorted(out) != list(range(k)):
                    raise Wrong(f"the dict has keys {sorted(out)}, expected the cluster ids {list(range(k))}",
                                 "noise (-1) and important (-2) channels are not clusters: count only labels 0..K-1.")
                out = [out[j] for j in range(k)]
            except TypeError:
                raise Wrong("it returned a dict whose keys are not cluster ids") from None
        got = to_array(out, "an array of cluster sizes")
        expected = case.expected
        k = len(expected)
        values, counts = np.unique(labels, return_counts=True)
        if got.ndim != 1:
            raise Wrong(f"the result has shape {got.shape}, expected ({k},): one size per cluster")
        if got.shape == counts.shape and np.array_equal(got, counts) and got.shape != expected.shape:
            raise Wrong(f"the result has {got.size} entries, expected {k} (one per cluster)",
                         "noise (-1) and important (-2) channels are not clusters: leave them out of the count.")
        if got.shape != expected.shape:
            hint = ("with no cluster at all the answer is an empty array (length 0)." if k == 0 else
                    "entry j is the size of cluster j, for j = 0 .. K-1, where K = the largest label + 1.")
            raise Wrong(f"the result has {got.size} entries, expected {k} (one per cluster)", hint)
        if np.array_equal(np.sort(got), np.sort(expected)) and not np.array_equal(got, expected):
            raise Wrong(f"the sizes are right but in the wrong order: got {got.astype(int).tolist()}, expected "
                         f"{expected.astype(int).tolist()}", "entry j must be the size of the cluster labelled j.")
        expect_array(got, expected, rtol=0, atol=0)

    return verify(fn, "cluster sizes from DBSCAN labels", cases, compare,
                   "for each cluster id j = 0, 1, ..., K-1 count the channels labelled j; -1 (noise) and -2 "
                   "(important) are not clusters.",
                   "cluster j's size is the number of channels labelled j; noise and important channels are not "
                   "clusters.", SIZE_MISTAKES)
