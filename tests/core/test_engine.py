"""The fast engine (cfcam.core.engine): its distances, the percentile eps and DBSCAN against numpy and
scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import DBSCAN

from cfcam.core import clustering as cl
from cfcam.core.engine import exact as ex
from cfcam.core.engine import graph as gr
from cfcam.core.engine import triangle as tr


def exact_distances(x):
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


points = st.integers(1, 60).flatmap(
    lambda n: st.integers(1, 12).flatmap(
        lambda d: arrays(np.float32, (n, d), elements=st.floats(-50, 50, width=32))))


@settings(max_examples=60, deadline=None)
@given(points)
def test_distances_within_stated_tolerance(x):
    dist = ex.Distances(x)
    exact = exact_distances(x)
    assert dist.matrix.shape == (len(x), len(x))
    assert np.all(np.diag(dist.matrix) == 0)
    assert np.abs(dist.matrix - exact).max() <= dist.tolerance(0.0) + 1e-5 * exact.max() + 1e-6


@settings(max_examples=60, deadline=None)
@given(points, st.floats(0, 100))
def test_eps_equals_numpy_percentile_of_off_diagonal(x, pct):
    dist = ex.Distances(x)
    eps = ex.exact_eps(dist, pct, 1e-5)
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
    dist = ex.Distances(x)
    eps = ex.exact_eps(dist, 25, 1e-5)
    off = exact_distances(x.astype(np.float64))[~np.eye(300, dtype=bool)]
    assert abs(eps - np.percentile(off, 25)) <= 1e-5 * eps


@settings(max_examples=80, deadline=None)
@given(points, st.floats(0, 100), st.integers(1, 8))
def test_dbscan_labels_equal_scikit_learn(x, pct, min_samples):
    dist = ex.Distances(x)
    eps = ex.exact_eps(dist, pct, 1e-5)
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


# -- the one-triangle algorithms against brute force ---------------------------------------------------------

def published_matrix(x):
    """All pairwise distances as the published code computes them: float32 norms of float32 differences."""
    x = np.asarray(x, dtype=np.float32)
    return np.linalg.norm(x[:, None] - x[None, :], axis=2)


def float64_matrix(x):
    """The float64 distances of the same float32 differences (what decides a neighbour test here)."""
    diff = np.asarray(x, dtype=np.float32)[:, None] - np.asarray(x, dtype=np.float32)[None, :]
    return np.sqrt(np.square(diff.astype(np.float64)).sum(axis=2))


def published_eps(x, pct, eps_min=1e-5):
    """numpy's percentile of the published off-diagonal distances, interpolated as cfcam interpolates."""
    n = len(x)
    off = np.sort(published_matrix(x)[~np.eye(n, dtype=bool)])
    index = pct / 100.0 * (off.size - 1)
    lo = int(np.floor(index))
    return max(ex._lerp(float(off[lo]), float(off[min(lo + 1, off.size - 1)]), index - lo), eps_min)


def planted_points(seed, n, d, spread=0.3):
    """``n`` points around a few centres, float32, the way channel maps cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(4, d))
    return (centres[rng.integers(0, 4, n)] + rng.normal(0, spread, size=(n, d))).astype(np.float32)


def assert_dbscan_is_float64_sklearn(x, eps, min_samples):
    ours = ex.dbscan(ex.Distances(x), eps, min_samples)
    theirs = DBSCAN(eps=float(eps), min_samples=min_samples, metric="precomputed").fit(float64_matrix(x))
    np.testing.assert_array_equal(ours.labels, theirs.labels_)
    core = np.zeros(len(x), dtype=bool)
    core[theirs.core_sample_indices_] = True
    np.testing.assert_array_equal(ours.core, core)


@settings(max_examples=60, deadline=None)
@given(points, st.floats(0, 100))
def test_eps_is_bit_identical_to_the_published_percentile(x, pct):
    eps = ex.exact_eps(ex.Distances(x), pct, 1e-5)
    assert float(eps) == (published_eps(x, pct) if len(x) > 1 else 1e-5)


@settings(max_examples=60, deadline=None)
@given(points, st.floats(0, 100), st.integers(1, 8))
def test_dbscan_at_exact_eps_is_scikit_learn_on_float64_distances(x, pct, min_samples):
    dist = ex.Distances(x)
    assert_dbscan_is_float64_sklearn(x, ex.exact_eps(dist, pct, 1e-5), min_samples)


@settings(max_examples=40, deadline=None)
@given(points, st.floats(0, 100), st.integers(1, 8))
def test_float64_products_give_the_same_eps_and_labels(x, pct, min_samples):
    """The float64 path (long rows, outlying rows) on any input: bit-identical eps, scikit-learn's labels."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex, "_FLOAT32_MAX_RELATIVE_ERROR", -1.0)
        dist = ex.Distances(x)
        assert dist.squared.dtype == np.float64
        eps = ex.exact_eps(dist, pct, 1e-5)
        assert float(eps) == (published_eps(x, pct) if len(x) > 1 else 1e-5)
        assert_dbscan_is_float64_sklearn(x, eps, min_samples)


@pytest.mark.parametrize("seed,n,d", [(0, 400, 49), (1, 700, 9), (2, 300, 196), (10, 300, 784)])
def test_sampled_bracket_path_is_exact(seed, n, d):
    """Enough pairs for the sampled bracket (and several row blocks): still the published eps and labels."""
    assert n * (n - 1) // 2 > tr._SAMPLE
    x = planted_points(seed, n, d)
    eps = ex.exact_eps(ex.Distances(x), 25, 1e-5)
    assert float(eps) == published_eps(x, 25)
    assert_dbscan_is_float64_sklearn(x, eps, max(2, n // 20))


def test_a_bracket_that_misses_is_detected_and_the_answer_stays_exact(monkeypatch):
    x = planted_points(3, 300, 20)
    monkeypatch.setattr(ex, "_bracket", lambda sample, total, k_lo, k_hi, sigmas: (0.0, 1e-30))
    assert float(ex.exact_eps(ex.Distances(x), 25, 1e-5)) == published_eps(x, 25)


def test_a_narrow_bracket_that_misses_is_retried_wider(monkeypatch):
    """The first, narrow bracket is checked; when it misses the ranks, the wider one is tried (and holds)."""
    x = planted_points(6, 400, 49)
    real, widths = ex._bracket, []

    def first_misses(sample, total, k_lo, k_hi, sigmas):
        widths.append(sigmas)
        return (0.0, 1e-30) if len(widths) == 1 else real(sample, total, k_lo, k_hi, sigmas)

    monkeypatch.setattr(ex, "_bracket", first_misses)
    assert float(ex.exact_eps(ex.Distances(x), 25, 1e-5)) == published_eps(x, 25)
    assert widths == list(ex._BRACKET_SIGMAS)


def test_eps_min_above_the_percentile_refines_around_eps_min():
    x = planted_points(4, 120, 6, spread=0.01)
    dist = ex.Distances(x)
    eps_min = float(np.median(float64_matrix(x)))  # far above the 25th percentile
    eps = ex.exact_eps(dist, 25, eps_min)
    assert float(eps) == eps_min
    assert_dbscan_is_float64_sklearn(x, eps, 5)


def test_nothing_is_mutated_and_a_plain_float_eps_gives_the_same_labels():
    x = planted_points(5, 250, 12)
    dist = ex.Distances(x)
    before = dist.squared.flat.copy()
    eps = ex.exact_eps(dist, 25, 1e-5)
    first = ex.dbscan(dist, eps, 12)
    again = ex.dbscan(dist, float(eps), 12)  # no carried refinement: dbscan refines around eps itself
    np.testing.assert_array_equal(dist.squared.flat, before)
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.n_neighbors, again.n_neighbors)
    other = ex.exact_eps(ex.Distances(x), 25, 1e-5)  # an eps from other Distances is not trusted blindly
    np.testing.assert_array_equal(ex.dbscan(dist, other, 12).labels, first.labels)


def test_exact_eps_pickles_as_a_plain_float():
    import pickle

    eps = ex.exact_eps(ex.Distances(planted_points(6, 30, 4)), 25, 1e-5)
    assert isinstance(eps, ex.ExactEps)
    back = pickle.loads(pickle.dumps(eps))
    assert type(back) is float and back == float(eps)


def test_matrix_is_symmetric_with_zero_diagonal():
    x = planted_points(7, 90, 5)
    m = ex.Distances(x).matrix
    np.testing.assert_array_equal(m, m.T)
    assert np.all(np.diag(m) == 0)
    assert np.abs(m - float64_matrix(x)).max() <= ex.Distances(x).tolerance(0.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 150), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_packed_graph_counts_and_adds_edges_like_the_dense_matrix(n, density, seed):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < density, 1)
    graph = gr.PackedGraph.from_upper(upper)
    np.testing.assert_array_equal(graph.degree, (upper | upper.T).sum(axis=1))
    extra = np.triu(rng.random((n, n)) < 0.1, 1) & ~upper
    i, j = np.nonzero(extra)
    order = rng.permutation(i.size)  # in any order
    more = graph.plus(i[order], j[order])
    expected = gr.PackedGraph.from_upper(upper | extra)
    np.testing.assert_array_equal(more.rows, expected.rows)
    np.testing.assert_array_equal(more.degree, expected.degree)
    np.testing.assert_array_equal(graph.rows, gr.PackedGraph.from_upper(upper).rows)  # left as it was


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.floats(0.0, 0.3), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_cluster_growth_gives_scikit_learns_labels_on_any_graph(n, density, min_samples, seed):
    """The compiled expansion over bit rows numbers clusters and assigns border points as scikit-learn does."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < density, 1)
    dist = np.where(upper | upper.T, 0.5, 2.0)
    np.fill_diagonal(dist, 0.0)
    theirs = DBSCAN(eps=1.0, min_samples=min_samples, metric="precomputed").fit(dist)
    ours = gr.dbscan_on_graph(gr.PackedGraph.from_upper(np.triu(dist <= 1.0, 1)), 1, min_samples)
    np.testing.assert_array_equal(ours.labels, theirs.labels_)
    np.testing.assert_array_equal(np.flatnonzero(ours.core), theirs.core_sample_indices_)


def test_refinement_memory_is_bounded_by_its_chunk(monkeypatch):
    """Recomputing many pairs of long vectors holds one chunk of differences at a time."""
    import tracemalloc

    monkeypatch.setattr(ex, "_REFINE_BYTES", 1 << 20)
    x32 = np.random.default_rng(8).random((200, 784), dtype=np.float32)
    i, j = np.triu_indices(200, 1)  # 19900 pairs: 125 MB of float64 differences at once
    tracemalloc.start()
    published, exact = ex._recompute(x32, i, j)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    outputs = published.nbytes + exact.nbytes
    assert peak <= outputs + 4 * (1 << 20)  # a few chunk-sized temporaries
    np.testing.assert_array_equal(published, np.linalg.norm(x32[i] - x32[j], axis=1))


def test_scan_holds_one_row_block_of_masks(monkeypatch):
    import tracemalloc

    x = planted_points(9, 600, 8)
    monkeypatch.setattr(tr, "_BLOCK_ELEMENTS", 1 << 14)
    dist = ex.Distances(x)
    assert len(dist.squared.rows) > 4  # cut into many row blocks
    tracemalloc.start()
    band = tr.scan_upper(dist.squared, 0.0, 1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    found = band.index.nbytes + band.approx.nbytes
    largest = max(block.size for block in dist.squared.blocks)
    assert peak <= 4 * found + 8 * largest + 100_000  # the results and a few block-sized masks, not n^2
    upper = np.triu(np.ones((600, 600), dtype=bool), 1)
    values = dist.squared.dense()[upper]
    assert band.below == int((values < 0.0).sum())
    assert band.index.size == int(((values >= 0.0) & (values <= 1.0)).sum())
    np.testing.assert_array_equal(band.approx, dist.squared.dense().ravel()[band.index])


def test_the_triangle_keeps_each_pair_once_in_contiguous_row_blocks(monkeypatch):
    """The product's row blocks tile the upper triangle (rows start on a 64-row boundary), each block is
    one contiguous array, and ``positions`` finds any pair in them."""
    monkeypatch.setattr(tr, "_BLOCK_ELEMENTS", 1 << 14)
    x = planted_points(11, 333, 5)
    dist = ex.Distances(x)
    tri = dist.squared
    assert tri.rows[0][0] == 0 and tri.rows[-1][1] == 333 and len(tri.rows) > 2
    assert all(r1 == nxt for (_, r1), (nxt, _) in zip(tri.rows, tri.rows[1:]))
    assert all(r0 % 64 == 0 for r0, _ in tri.rows)
    assert all(b.flags.c_contiguous and b.shape == (r1 - r0, 333 - r0) for b, (r0, r1) in zip(tri.blocks, tri.rows))
    assert tri.flat.size == sum(b.size for b in tri.blocks) < 333 * 333
    i, j = np.triu_indices(333, 1)
    exact = float64_matrix(x) ** 2
    np.testing.assert_allclose(tri.flat[tri.positions(i * 333 + j)], exact[i, j], atol=4 * dist.error)
    np.testing.assert_array_equal(np.triu(tri.dense(), 1)[i, j], tri.flat[tri.positions(i * 333 + j)])
    # the entries on and below the diagonal count nowhere, not even in a scan of everything
    everything = tr.scan_upper(tri, -np.inf, np.inf, graph=True)
    assert everything.below == 0 and everything.index.size == 333 * 332 // 2
    np.testing.assert_array_equal(everything.index, np.sort(i * 333 + j))
    assert tr.scan_upper(tri, np.inf, np.inf).index.size == 0


@pytest.mark.parametrize("seed,n,d,percentile", [(0, 400, 49, 25), (1, 600, 9, 10), (2, 300, 196, 50),
                                                 (3, 500, 49, 90), (4, 130, 49, 25)])
def test_the_graph_built_during_the_scan_is_the_neighbour_graph_at_eps(seed, n, d, percentile):
    """The scan that chooses eps keeps the pairs below its band as a graph, and eps adds the band's; the
    result is the graph of the plain neighbour test at eps, made independently (refined around eps)."""
    x = planted_points(seed, n, d)
    dist = ex.Distances(x)
    eps = ex.exact_eps(dist, percentile, 1e-5)
    assert eps.graph is not None
    expected = gr.PackedGraph.from_upper(ex.neighbours(dist, float(eps)))
    np.testing.assert_array_equal(eps.graph.rows, expected.rows)
    np.testing.assert_array_equal(eps.graph.degree, expected.degree)
    assert_dbscan_is_float64_sklearn(x, eps, max(2, n // 20))


def test_the_graph_adds_edges_in_any_order_and_leaves_the_original_alone():
    rng = np.random.default_rng(5)
    upper = np.triu(rng.random((70, 70)) < 0.2, 1)
    extra = np.triu(rng.random((70, 70)) < 0.1, 1) & ~upper
    i, j = np.nonzero(extra)
    order = rng.permutation(i.size)
    base = gr.PackedGraph.from_upper(upper)
    rows_before = base.rows.copy()
    grown = base.plus(i[order], j[order])
    expected = gr.PackedGraph.from_upper(upper | extra)
    np.testing.assert_array_equal(grown.rows, expected.rows)
    np.testing.assert_array_equal(grown.degree, expected.degree)
    np.testing.assert_array_equal(base.rows, rows_before)


def test_kernels_compile_without_a_disk_cache_where_numba_finds_no_place_for_one(monkeypatch):
    """numba refuses ``cache=True`` when neither the package folder nor a user cache folder is writable: the
    loops are then compiled afresh in each process instead of failing."""
    import numba

    from cfcam.core.engine import kernels

    real = numba.njit

    def njit(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'kernels.py'")
        return real(**options)

    monkeypatch.setattr(kernels.numba, "njit", njit)
    compiled = kernels._compiled()(lambda a: a + 1)
    assert compiled(41) == 42
