"""Distances, the percentile eps and DBSCAN against numpy and scikit-learn."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import DBSCAN

from cfcam.core import clustering as cl


def exact_distances(x):
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


points = st.integers(1, 60).flatmap(
    lambda n: st.integers(1, 12).flatmap(
        lambda d: arrays(np.float32, (n, d), elements=st.floats(-50, 50, width=32))))


@settings(max_examples=60, deadline=None)
@given(points)
def test_distances_within_stated_tolerance(x):
    dist = cl.Distances(x)
    exact = exact_distances(x)
    assert dist.matrix.shape == (len(x), len(x))
    assert np.all(np.diag(dist.matrix) == 0)
    assert np.abs(dist.matrix - exact).max() <= dist.tolerance(0.0) + 1e-5 * exact.max() + 1e-6


@settings(max_examples=60, deadline=None)
@given(points, st.floats(0, 100))
def test_eps_equals_numpy_percentile_of_off_diagonal(x, pct):
    dist = cl.Distances(x)
    eps = cl.exact_eps(dist, pct, 1e-5)
    n = len(x)
    if n < 2:
        assert eps == 1e-5
        return
    off = exact_distances(x)[~np.eye(n, dtype=bool)]
    expected = max(np.percentile(off, pct), 1e-5)
    assert abs(eps - expected) <= 1e-6 * max(1.0, expected)


def test_eps_is_exact_under_bad_conditioning():
    """Tight clusters far from the origin: the float32 Gram matrix alone would be off; refinement fixes it."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.normal(0, 1e-2, size=(300, 40))).astype(np.float32)
    x[150:] += 50
    dist = cl.Distances(x)
    eps = cl.exact_eps(dist, 25, 1e-5)
    off = exact_distances(x.astype(np.float64))[~np.eye(300, dtype=bool)]
    assert abs(eps - np.percentile(off, 25)) <= 1e-5 * eps


@settings(max_examples=80, deadline=None)
@given(points, st.floats(0, 100), st.integers(1, 8))
def test_dbscan_labels_equal_scikit_learn(x, pct, min_samples):
    dist = cl.Distances(x)
    eps = cl.exact_eps(dist, pct, 1e-5)
    ours = cl.dbscan(dist.matrix, eps, min_samples)
    theirs = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(dist.matrix)
    np.testing.assert_array_equal(ours.labels, theirs.labels_)
    core = np.zeros(len(x), dtype=bool)
    core[theirs.core_sample_indices_] = True
    np.testing.assert_array_equal(ours.core, core)


def test_important_split_follows_published_rule():
    rng = np.random.default_rng(0)
    flat = rng.random((40, 9))
    split = cl.split_important(flat, 0.25)
    norms = np.linalg.norm(flat, axis=1)
    np.testing.assert_array_equal(split.important, norms >= np.percentile(norms, 75))
    assert split.important.sum() == 10
    off = cl.split_important(flat, 0.0)
    assert off.threshold is None and not off.important.any()


def test_min_samples_truncates_and_has_a_floor():
    assert cl.min_samples_for(1536, 0.05, 2) == 76
    assert cl.min_samples_for(30, 0.05, 2) == 2
    assert cl.min_samples_for(0, 0.05, 2) == 2
