"""The notebook exercise checks: right answers pass, wrong ones fail with a hint, stubs say so; none raises."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from cfcam.teaching import checks


def stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# -- right answers (what the hidden solution cells do) ----------------------------------------------------

def gradcam_weights(gradients):
    return gradients.mean(dim=(1, 2))


def gradcam_map(activations, weights):
    return torch.relu((weights[:, None, None] * activations).sum(dim=0))


def percentile_eps(distances, percentile=25.0):
    n = distances.shape[0]
    off = distances[~np.eye(n, dtype=bool)]
    return max(float(np.percentile(off, percentile)), 1e-5)


def min_samples(n_channels, fraction=0.05, floor=2):
    return max(floor, int(fraction * n_channels))


def cluster_sizes(labels):
    labels = np.asarray(labels)
    k = labels.max() + 1 if labels.max() >= 0 else 0
    return np.array([(labels == j).sum() for j in range(k)], dtype=int)


def cluster_mean_gradient(gradients, labels, cluster):
    return gradients[torch.as_tensor(labels == cluster)].mean(dim=0)


def reference_kernel(mean_map, spatial_sigma=5.0, range_sigma=0.1):
    h, w = mean_map.shape
    x = torch.arange(h, dtype=mean_map.dtype)[:, None] - h / 2
    y = torch.arange(w, dtype=mean_map.dtype)[None, :] - w / 2
    s = torch.exp(-(x**2 + y**2) / (2 * spatial_sigma**2))
    r = torch.exp(-((mean_map - mean_map.mean()) ** 2) / (2 * range_sigma**2))
    return s * r / ((s * r).sum() + 1e-6)


def softmax_weights(weights, kept):
    alphas = torch.zeros_like(weights)
    alphas[kept] = torch.softmax(weights[kept], dim=0)
    return alphas


def normalize_map(cam):
    lo, hi = cam.min(), cam.max()
    if hi - lo <= 0:
        return torch.zeros_like(cam)
    return (cam - lo) / (hi - lo)


def pointing_game(cam, mask, tolerance=15):
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return bool(ndimage.distance_transform_edt(~mask)[y, x] <= tolerance)


def _same_padding_filter(m, kernel):
    h, w = m.shape
    top, left = (h - 1) // 2, (w - 1) // 2
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(m[None, None], (left, w - 1 - left, top, h - 1 - top)), kernel[None, None])[0, 0]


def cfcam_from_parts(activations, gradients, weighting="softmax", use_filter=True, important_fraction=0.25):
    """The capstone's assembly, from the right answers above (and its three typical mistakes as options)."""
    from sklearn.cluster import DBSCAN

    c = activations.shape[0]
    flat = activations.reshape(c, -1)
    norms = flat.norm(dim=1).numpy()
    important = norms >= np.percentile(norms, 100 * (1 - important_fraction)) if important_fraction else \
        np.zeros(c, dtype=bool)
    rest = np.flatnonzero(~important)
    d = torch.cdist(flat[rest], flat[rest], compute_mode="donot_use_mm_for_euclid_dist").numpy()
    labels = np.full(c, -2)
    fit = DBSCAN(eps=percentile_eps(d), min_samples=min_samples(len(rest)), metric="precomputed").fit(d)
    labels[rest] = fit.labels_
    weights = torch.zeros(c, dtype=activations.dtype)
    weights[important] = gradcam_weights(gradients)[important]
    for j in range(labels.max() + 1):
        m = cluster_mean_gradient(gradients, labels, j)
        f = _same_padding_filter(m, reference_kernel(m)) if use_filter else m
        weights[torch.as_tensor(labels == j)] = f.mean()
    kept = torch.as_tensor(labels != -1)
    alphas = softmax_weights(weights, kept) if weighting == "softmax" else weights * kept
    return gradcam_map(activations, alphas)


def energy_in_mask(cam, mask):
    total = cam.sum()
    return float(cam[mask].sum() / total) if total > 0 else 0.0


# -- wrong answers, each a typical mistake, with a word its hint must contain -----------------------------

def _weights_sum(g):
    return g.sum(dim=(1, 2))


def _weights_channel_mean(g):
    return g.mean(dim=0)


def _weights_keepdim(g):
    return g.mean(dim=(1, 2), keepdim=True)


def _map_no_relu(a, w):
    return (w[:, None, None] * a).sum(0)


def _map_mean(a, w):
    return torch.relu((w[:, None, None] * a).mean(0))


def _map_relu_each(a, w):
    return torch.relu(w[:, None, None] * a).sum(0)


def _map_no_return(a, w):
    torch.relu((w[:, None, None] * a).sum(0))


def _eps_with_diagonal(d, percentile=25.0):
    return max(float(np.percentile(d, percentile)), 1e-5)


def _eps_upper(d, percentile=25.0):
    return max(float(np.percentile(d[np.triu_indices(d.shape[0], 1)], percentile)), 1e-5)


def _eps_no_floor(d, percentile=25.0):
    return float(np.percentile(d[~np.eye(d.shape[0], dtype=bool)], percentile))


def _eps_fixed_25(d, percentile=25.0):
    return max(float(np.percentile(d[~np.eye(d.shape[0], dtype=bool)], 25)), 1e-5)


def _min_samples_round(n, fraction=0.05, floor=2):
    return max(floor, round(fraction * n))


def _min_samples_no_floor(n, fraction=0.05, floor=2):
    return int(fraction * n)


def _min_samples_float(n, fraction=0.05, floor=2):
    return float(max(floor, int(fraction * n)))


def _sizes_with_noise(labels):
    return np.unique(labels, return_counts=True)[1]


def _sizes_sorted(labels):
    return np.sort(np.bincount(labels[labels >= 0]))


def _mean_all(g, labels, j):
    return g.mean(0)


def _sum_cluster(g, labels, j):
    return g[torch.as_tensor(labels == j)].sum(0)


def _kernel_centre(m, spatial_sigma=5.0, range_sigma=0.1):
    h, w = m.shape
    x = torch.arange(h, dtype=m.dtype)[:, None] - (h - 1) / 2
    y = torch.arange(w, dtype=m.dtype)[None, :] - (w - 1) / 2
    k = torch.exp(-(x**2 + y**2) / (2 * spatial_sigma**2)) * torch.exp(-((m - m.mean()) ** 2) / (2 * range_sigma**2))
    return k / (k.sum() + 1e-6)


def _kernel_unnormalised(m, spatial_sigma=5.0, range_sigma=0.1):
    return reference_kernel(m, spatial_sigma, range_sigma) * 3.0


def _kernel_no_range(m, spatial_sigma=5.0, range_sigma=0.1):
    return reference_kernel(torch.zeros_like(m), spatial_sigma, range_sigma)


def _softmax_all(w, kept):
    return torch.softmax(w, 0)


def _softmax_overflow(w, kept):
    e = torch.exp(w) * kept
    return e / e.sum()


def _normalize_by_max(cam):
    return cam / cam.max()


def _normalize_nan(cam):
    return (cam - cam.min()) / (cam.max() - cam.min())


def _normalize_in_place(cam):
    cam -= cam.min()
    rng = cam.max()
    return cam / rng if rng > 0 else cam


def _pointing_fixed_tolerance(cam, mask, tolerance=15):
    return pointing_game(cam, mask, 15)


def _pointing_inside_only(cam, mask, tolerance=15):
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return bool(mask[y, x])


def _pointing_swapped(cam, mask, tolerance=15):
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    distance = ndimage.distance_transform_edt(~mask)
    if x >= mask.shape[0] or y >= mask.shape[1]:
        return False
    return bool(distance[x, y] <= tolerance)  # (x, y) where (y, x) belongs


def _pointing_strict(cam, mask, tolerance=15):
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return bool(ndimage.distance_transform_edt(~mask)[y, x] < tolerance)


def _min_samples_unrounded(n, fraction=0.05, floor=2):
    return max(floor, fraction * n)  # forgot int(): 25.6 for 512 channels


def _energy_mean_inside(cam, mask):
    return float(cam[mask].mean())


def _energy_nan_when_zero(cam, mask):
    with np.errstate(invalid="ignore"):
        return float(cam[mask].sum() / cam.sum())


def _energy_mask_share(cam, mask):
    return float(mask.mean())


CASES = [
    ("check_cfcam", cfcam_from_parts,
     [(lambda a, g: cfcam_from_parts(a, g, weighting="gap"), "softmax"),
      (lambda a, g: cfcam_from_parts(a, g, use_filter=False), "filter"),
      (lambda a, g: cfcam_from_parts(a, g, important_fraction=0.0), "important")]),
    ("check_gradcam_weights", gradcam_weights,
     [(_weights_sum, "average"), (_weights_channel_mean, "spatial"), (_weights_keepdim, "(C,)")]),
    ("check_gradcam_map", gradcam_map,
     [(_map_no_relu, "ReLU"), (_map_mean, "sum"), (_map_relu_each, "once"), (_map_no_return, "return")]),
    ("check_percentile_eps", percentile_eps,
     [(_eps_with_diagonal, "diagonal"), (_eps_upper, "twice"), (_eps_no_floor, "1e-5"),
      (_eps_fixed_25, "`percentile` argument")]),
    ("check_min_samples", min_samples,
     [(_min_samples_round, "truncates"), (_min_samples_no_floor, "floor"), (_min_samples_float, "int"),
      (_min_samples_unrounded, "truncate `fraction * n_channels` with int")]),
    ("check_cluster_sizes", cluster_sizes, [(_sizes_with_noise, "noise"), (_sizes_sorted, "order")]),
    ("check_cluster_mean_gradient", cluster_mean_gradient, [(_mean_all, "label"), (_sum_cluster, "mean")]),
    ("check_reference_kernel", reference_kernel,
     [(_kernel_centre, "h/2"), (_kernel_unnormalised, "sum"), (_kernel_no_range, "range")]),
    ("check_softmax_weights", softmax_weights, [(_softmax_all, "kept channels only"), (_softmax_overflow, "overflow")]),
    ("check_normalize", normalize_map,
     [(_normalize_by_max, "minimum"), (_normalize_nan, "zeros"), (_normalize_in_place, "in place")]),
    ("check_pointing_game", pointing_game,
     [(_pointing_fixed_tolerance, "tolerance"), (_pointing_inside_only, "Hint"),
      (_pointing_swapped, "swapped"), (_pointing_strict, "<=")]),
    ("check_energy_in_mask", energy_in_mask,
     [(_energy_mean_inside, "not a mean"), (_energy_nan_when_zero, "return 0"), (_energy_mask_share, "whole image")]),
]


@pytest.mark.parametrize("check_name, right, wrongs", CASES, ids=[c[0] for c in CASES])
def test_right_answer_passes(check_name, right, wrongs, capsys):
    assert getattr(checks, check_name)(right) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and out.count("\n") == 1


@pytest.mark.parametrize("check_name, right, wrongs", CASES, ids=[c[0] for c in CASES])
def test_wrong_answers_fail_with_a_hint(check_name, right, wrongs, capsys):
    for wrong, word in wrongs:
        assert getattr(checks, check_name)(wrong) is False, wrong.__name__
        out = capsys.readouterr().out
        assert out.startswith("Not quite:"), out
        assert "Hint:" in out and "input:" in out, out
        assert word in out, (wrong.__name__, out)
        assert "Correct" not in out


@pytest.mark.parametrize("check_name", [c[0] for c in CASES])
def test_stub_is_not_implemented_yet(check_name, capsys):
    assert getattr(checks, check_name)(stub) is False
    out = capsys.readouterr().out
    assert out.startswith("Not implemented yet:") and "stub" in out


@pytest.mark.parametrize("check_name", [c[0] for c in CASES])
def test_nothing_raises_for_odd_answers(check_name, capsys):
    for odd in (lambda *a, **k: "a string", lambda *a, **k: {"x": 1}, lambda *a, **k: [float("nan")],
                lambda *a, **k: 1 / 0, lambda *a, **k: torch.full((3, 3), float("nan"))):
        assert getattr(checks, check_name)(odd) is False
        assert capsys.readouterr().out.startswith("Not quite:")
    assert getattr(checks, check_name)(42) is False  # a value, not a function
    assert "function" in capsys.readouterr().out


def test_registry_names_every_check():
    assert set(checks.CHECKS.values()) == {getattr(checks, n) for n in checks.__all__ if n.startswith("check_")}


def test_numpy_answers_are_accepted(capsys):
    assert checks.check_gradcam_weights(lambda g: g.numpy().mean(axis=(1, 2)))
    assert checks.check_cluster_sizes(lambda labels: {j: int((labels == j).sum()) for j in range(labels.max() + 1)})
    assert checks.check_min_samples(lambda n, fraction=0.05, floor=2: np.int64(max(floor, int(fraction * n))))
    assert capsys.readouterr().out.count("Correct:") == 3


def solution_gradcam_weights(gradients):
    return gradients.mean(dim=(1, 2))


def test_yours_or_solution_keeps_the_learners_function(capsys):
    chosen = checks.yours_or_solution(stub, solution_gradcam_weights)
    assert chosen is solution_gradcam_weights
    out = capsys.readouterr().out
    assert out.startswith("Using `solution_gradcam_weights` for now") and "Correct" not in out
    assert out.count("\n") == 1
    with pytest.raises(NotImplementedError):
        stub(torch.zeros(1, 1, 1))  # the learner's function is untouched
    assert checks.yours_or_solution(gradcam_weights, solution_gradcam_weights) is gradcam_weights
    assert capsys.readouterr().out.startswith("Using your `gradcam_weights`")


def test_yours_or_solution_refuses_a_broken_solution():
    def solution_gradcam_weights(gradients):  # noqa: F811 - a deliberately wrong solution
        return gradients.sum(dim=(1, 2))

    with pytest.raises(AssertionError, match="fails its own check"):
        checks.yours_or_solution(stub, solution_gradcam_weights)


def test_framework_is_public_for_new_checks(capsys):
    """A notebook (or a new module) writes its own check with the same machinery and verdicts."""
    from cfcam.teaching.checks import Case, Wrong, verify

    def compare(out, case):
        if out != case.expected:
            raise Wrong(f"it returned {out}, expected {case.expected}", "multiply by two.")

    cases = [Case("the number 2", (2,), 4), Case("the number 3", (3,), 6)]
    assert verify(lambda x: 2 * x, "doubling", cases, compare, "double it.", "it doubles.") is True
    assert verify(lambda x: x + 2, "doubling", cases, compare, "double it.", "it doubles.") is False
    out = capsys.readouterr().out
    assert out.startswith("Correct: it doubles.\nNot quite: it returned 5, expected 6")
    assert "input: the number 3" in out and "Hint: multiply by two." in out


def test_teaching_modules_are_small_and_import_no_private_names():
    """Every module under cfcam/teaching is under 500 lines and imports only public names from others."""
    import ast
    from pathlib import Path

    root = Path(checks.__file__).resolve().parents[1]
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 10
    for path in modules:
        text = path.read_text()
        assert text.count("\n") < 500, f"{path} has {text.count(chr(10))} lines"
        private = [(node.module, alias.name) for node in ast.walk(ast.parse(text))
                   if isinstance(node, ast.ImportFrom) for alias in node.names if alias.name.startswith("_")]
        assert private == [], f"{path} imports private names {private}"


def test_reference_eps_is_numpys_percentile():
    from cfcam.teaching.reference import eps_from_distances, pairwise_distances

    d = pairwise_distances(np.random.default_rng(0).normal(size=(40, 9)))
    off = d[~np.eye(40, dtype=bool)].astype(np.float64)
    for p in (0.0, 10.0, 25.0, 73.3, 100.0):
        assert eps_from_distances(d, p, 1e-5) == max(np.percentile(off, p), 1e-5)
    assert eps_from_distances(np.zeros((5, 5), np.float32), 25.0, 1e-5) == 1e-5
    assert eps_from_distances(np.zeros((1, 1), np.float32), 25.0, 0.5) == 0.5
