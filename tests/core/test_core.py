"""The pure core: degenerate inputs, validation, properties over random inputs, filters, presets."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cfcam import CFCAMConfig, cluster_filter_cam, make_config
from cfcam.core.filtering import bilateral_filter, reference_filter

PRESETS = ["readme", "reference"]


@pytest.mark.parametrize("preset", PRESETS)
def test_all_zero_activations_give_zero_map(preset):
    r = cluster_filter_cam(np.zeros((16, 5, 5)), np.ones((16, 5, 5)), preset)
    assert r.cam.shape == (5, 5) and np.all(r.cam == 0)
    assert any("zero everywhere" in n for n in r.notes)


def test_no_cluster_no_important_falls_back_to_gradcam():
    rng = np.random.default_rng(0)
    a = rng.random((12, 4, 4)) * 100  # spread out: nothing is dense with min_samples 12
    g = rng.normal(size=(12, 4, 4))
    r = cluster_filter_cam(a, g, "readme", min_samples_fraction=1.0, eps_percentile=0.0)
    assert r.n_clusters == 0 and r.n_important == 0 and r.fallback == "gradcam"
    expected = np.maximum(np.einsum("chw,c->hw", a, g.mean(axis=(1, 2))), 0)
    np.testing.assert_allclose(r.cam, expected, rtol=1e-5, atol=1e-6)
    assert r.kept.all()
    z = cluster_filter_cam(a, g, "readme", min_samples_fraction=1.0, eps_percentile=0.0, fallback="zero")
    assert z.fallback == "zero" and np.all(z.cam == 0)


@pytest.mark.parametrize("preset", PRESETS)
def test_constant_maps(preset):
    a = np.full((20, 6, 6), 2.0)
    g = np.full((20, 6, 6), 0.5)
    r = cluster_filter_cam(a, g, preset)
    assert np.isfinite(r.cam).all() and np.all(r.cam >= 0)
    assert np.ptp(r.cam) <= 1e-6 * max(r.cam.max(), 1)  # a constant input gives a flat map


@pytest.mark.parametrize("preset", PRESETS)
def test_single_channel(preset):
    r = cluster_filter_cam(np.ones((1, 3, 3)), np.ones((1, 3, 3)), preset)
    assert r.cam.shape == (3, 3) and np.isfinite(r.cam).all()
    if preset == "reference":
        assert r.n_important == 1 and r.fallback is None
        np.testing.assert_allclose(r.cam, 1.0)  # softmax over one channel is 1
    else:
        assert r.fallback == "gradcam"


@pytest.mark.parametrize("preset", PRESETS)
def test_one_by_one_maps(preset):
    rng = np.random.default_rng(1)
    r = cluster_filter_cam(rng.random((64, 1, 1)), rng.normal(size=(64, 1, 1)), preset)
    assert r.cam.shape == (1, 1) and np.isfinite(r.cam).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["activations", "gradients"])
def test_nan_or_inf_is_a_clear_error(bad, which):
    a, g = np.ones((4, 3, 3)), np.ones((4, 3, 3))
    (a if which == "activations" else g)[1, 1, 1] = bad
    with pytest.raises(ValueError, match=f"{which} contains 1 NaN or infinite"):
        cluster_filter_cam(a, g)


@pytest.mark.parametrize("a,g,msg", [
    (np.ones((4, 3)), np.ones((4, 3)), r"activations must have shape \(C, h, w\)"),
    (np.ones((4, 3, 3)), np.ones((4, 3, 2)), "same shape"),
    (np.ones((0, 3, 3)), np.ones((0, 3, 3)), "must not be empty"),
    ("x", np.ones((4, 3, 3)), "torch tensor or numpy array"),
])
def test_bad_shapes_are_clear_errors(a, g, msg):
    with pytest.raises(ValueError, match=msg):
        cluster_filter_cam(a, g)


@pytest.mark.parametrize("changes,msg", [
    ({"important_fraction": 1.5}, r"important_fraction must be in \[0.0, 1.0\], got 1.5"),
    ({"eps_percentile": -1}, r"eps_percentile must be in \[0.0, 100.0\]"),
    ({"eps_min": 0}, r"eps_min must be in \(0.0, inf\]"),
    ({"min_samples_fraction": float("nan")}, "min_samples_fraction must be a finite number"),
    ({"min_samples_floor": 0}, "min_samples_floor must be an integer >= 1"),
    ({"filter": "median"}, r"filter must be one of \['reference', 'bilateral', 'gaussian', 'none'\]"),
    ({"spatial_sigma": 0}, "spatial_sigma must be in"),
    ({"range_sigma": "big"}, "range_sigma must be a finite number"),
    ({"weighting": "max"}, "weighting must be one of"),
    ({"normalize": "sigmoid"}, "normalize must be one of"),
    ({"fallback": "none"}, "fallback must be one of"),
    ({"eps": 3}, r"unknown CF-CAM parameter\(s\) \['eps'\]"),
])
def test_config_validation_messages(changes, msg):
    with pytest.raises(ValueError, match=msg):
        make_config("readme", **changes)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"preset must be one of \['readme', 'reference'\]"):
        make_config("paper")


def test_presets_are_the_documented_ones():
    ref = make_config("reference")
    assert (ref.important_fraction, ref.filter, ref.spatial_sigma, ref.range_sigma, ref.weighting) == \
        (0.25, "reference", 5.0, 0.1, "softmax")
    rd = make_config("readme")
    assert (rd.important_fraction, rd.filter, rd.weighting, rd.eps_percentile, rd.min_samples_fraction) == \
        (0.0, "bilateral", "gap", 25.0, 0.05)
    assert isinstance(rd, CFCAMConfig)


maps = st.tuples(st.integers(1, 40), st.integers(1, 8), st.integers(1, 8)).flatmap(
    lambda s: st.tuples(arrays(np.float32, s, elements=st.floats(0, 1e3, width=32)),
                        arrays(np.float32, s, elements=st.floats(-1, 1, width=32))))


@settings(max_examples=60, deadline=None)
@given(maps, st.sampled_from(PRESETS), st.sampled_from(["reference", "bilateral", "gaussian", "none"]),
       st.sampled_from(["softmax", "gap"]), st.floats(0, 1), st.floats(0, 100))
def test_properties_finite_nonnegative_right_shape(ag, preset, filt, weighting, frac, pct):
    a, g = ag
    r = cluster_filter_cam(a, g, preset, filter=filt, weighting=weighting, important_fraction=frac,
                           eps_percentile=pct)
    c, h, w = a.shape
    assert r.cam.shape == (h, w) and np.isfinite(r.cam).all() and (r.cam >= 0).all()
    assert r.labels.shape == (c,) and r.weights.shape == (c,) and r.kept.shape == (c,)
    assert np.isfinite(r.weights).all() and np.isfinite(r.alphas).all()
    assert set(np.unique(r.labels)) <= {-2, -1} | set(range(r.n_clusters))
    assert r.cluster_mean_gradients.shape == r.filtered_gradients.shape == (r.n_clusters, h, w)
    assert np.all(r.alphas[~r.kept] == 0)


def test_result_exposes_distances_on_request():
    rng = np.random.default_rng(2)
    a, g = rng.random((30, 4, 4)), rng.normal(size=(30, 4, 4))
    assert cluster_filter_cam(a, g).distances is None
    r = cluster_filter_cam(a, g, "reference", return_distances=True)
    n = len(r.clustered_channels)
    assert r.distances.shape == (n, n) and n == 30 - r.n_important


def test_bilateral_keeps_constant_map_and_reference_shrinks_it():
    const = torch.full((1, 7, 7), 3.0, dtype=torch.float64)
    np.testing.assert_allclose(bilateral_filter(const, 1.0, 0.2).numpy(), 3.0)
    np.testing.assert_allclose(bilateral_filter(const, 1.0, None).numpy(), 3.0)
    shrunk = reference_filter(const, 5.0, 0.1)
    ratio = float(shrunk.mean() / 3.0)
    assert 0.5 < ratio < 0.65  # about 0.58 on a 7x7 map: zero padding


def test_bilateral_preserves_an_edge_better_than_gaussian():
    step = torch.zeros((1, 9, 9), dtype=torch.float64)
    step[:, :, 5:] = 1.0
    bil = bilateral_filter(step, 1.5, 0.1)
    gau = bilateral_filter(step, 1.5, None)
    assert (bil - step).abs().max() < 0.05 < (gau - step).abs().max()


def test_gap_weights_without_filter_equal_gradcam_when_all_channels_cluster():
    """With the split off, no filtering and one cluster holding every channel, CF-CAM = Grad-CAM of the
    cluster mean: all channels share one weight, the mean of all gradients."""
    rng = np.random.default_rng(4)
    a = 1 + rng.normal(0, 0.01, size=(10, 3, 3))
    g = rng.normal(size=(10, 3, 3))
    r = cluster_filter_cam(a, g, "readme", filter="none", eps_percentile=100, min_samples_fraction=0)
    assert r.n_clusters == 1 and r.n_noise == 0
    np.testing.assert_allclose(r.weights, g.mean())


def test_gaussian_filter_equals_opencv_gaussian_blur():
    import cv2

    rng = np.random.default_rng(5)
    m = rng.normal(size=(9, 11))
    ours = bilateral_filter(torch.from_numpy(m)[None], 1.2, None)[0].numpy()
    radius = 3  # ceil(2 * 1.2)
    theirs = cv2.GaussianBlur(m, (2 * radius + 1, 2 * radius + 1), 1.2, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
