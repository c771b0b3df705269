"""Learners' answers to the exercises of notebooks 01-04, as a learner would write them: several right ones
written differently (torch, numpy, float32, lists, equivalent formulas) and the typical wrong ones, each with
a phrase its hint must contain (the hint names that mistake). Used by test_checks_mistakes.py."""

import math

import numpy as np
import torch
from scipy import special

# -- 01: Grad-CAM weights ---------------------------------------------------------------------------------


def weights_torch(gradients):
    return gradients.mean(dim=(1, 2))


def weights_numpy_float32(gradients):
    return gradients.numpy().astype(np.float32).mean(axis=(1, 2))


def weights_list(gradients):
    c, h, w = gradients.shape
    return [float(gradients[k].sum()) / (h * w) for k in range(c)]


def weights_pool(gradients):
    return torch.nn.functional.adaptive_avg_pool2d(gradients[None], 1).flatten()


RIGHT = {"check_gradcam_weights": [weights_torch, weights_numpy_float32, weights_list, weights_pool]}
WRONG = {"check_gradcam_weights": [
    (lambda g: g.sum(dim=(1, 2)), "summed each gradient map"),
    (lambda g: g.amax(dim=(1, 2)), "largest value"),
    (lambda g: torch.relu(g).mean(dim=(1, 2)), "positive gradients"),
    (lambda g: g.abs().mean(dim=(1, 2)), "size of the gradients"),
    (lambda g: g.mean(dim=2), "one spatial dimension"),
    (lambda g: g.mean(dim=0), "*spatial* dimensions"),
    (lambda g: g.mean(dim=(1, 2), keepdim=True), "(C,)"),
]}

# -- 01: Grad-CAM map -------------------------------------------------------------------------------------


def map_torch(activations, weights):
    return torch.relu((weights[:, None, None] * activations).sum(dim=0))


def map_einsum_numpy(activations, weights):
    return np.maximum(np.einsum("chw,c->hw", activations.numpy(), weights.numpy()), 0)


def map_loop_float64(activations, weights):
    total = torch.zeros(activations.shape[1:], dtype=torch.float64)
    for a, w in zip(activations, weights):
        total = total + float(w) * a.double()
    return total.clamp(min=0)


def map_tensordot(activations, weights):
    return torch.tensordot(weights, activations, dims=1).clamp_min(0).tolist()


RIGHT["check_gradcam_map"] = [map_torch, map_einsum_numpy, map_loop_float64, map_tensordot]
WRONG["check_gradcam_map"] = [
    (lambda a, w: map_torch(a, w).T, "looks transposed"),
    (lambda a, w: (w[:, None, None] * a).sum(0), "ReLU is missing"),
    (lambda a, w: torch.relu((w[:, None, None] * a).mean(0)), "averaged the weighted channels"),
    (lambda a, w: torch.relu(w[:, None, None] * a).sum(0), "each weighted channel"),
    (lambda a, w: (torch.relu(w)[:, None, None] * a).sum(0), "applied to the weights"),
    (lambda a, w: (w[:, None, None] * a).sum(0).abs(), "size of the weighted sum"),
    (lambda a, w: map_torch(a, w) / map_torch(a, w).max().clamp_min(1e-30), "maximum of 1"),
    (lambda a, w: None, "return"),
]

# -- 02: eps, min_samples, cluster sizes -------------------------------------------------------------------


def eps_numpy(distances, percentile=25.0):
    n = distances.shape[0]
    return max(float(np.percentile(distances[~np.eye(n, dtype=bool)], percentile)), 1e-5)


def eps_quantile_torch(distances, percentile=25.0):
    d = torch.as_tensor(distances, dtype=torch.float64)
    off = d[~torch.eye(len(d), dtype=torch.bool)]
    return torch.clamp(torch.quantile(off, percentile / 100), min=1e-5)


def eps_by_hand(distances, percentile=25.0):
    n = len(distances)
    values = sorted(float(distances[i][j]) for i in range(n) for j in range(n) if i != j)
    position = percentile / 100 * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    value = values[low] + (position - low) * (values[high] - values[low])
    return np.float64(max(value, 1e-5))


def _eps_off(d):
    return d[~np.eye(len(d), dtype=bool)]


RIGHT["check_percentile_eps"] = [eps_numpy, eps_quantile_torch, eps_by_hand]
WRONG["check_percentile_eps"] = [
    (lambda d, percentile=25.0: max(float(np.percentile(d[d > 0], percentile)), 1e-5), "every zero distance"),
    (lambda d, percentile=25.0: max(float(np.percentile(d[d > 0], percentile)), 1e-5) if (d > 0).any() else 1e-5,
     "every zero distance"),
    (lambda d, percentile=25.0: max(float(np.percentile(d, percentile)), 1e-5), "leave the diagonal out"),
    (lambda d, percentile=25.0: max(float(np.percentile(d[np.triu_indices(len(d), 1)], percentile)), 1e-5),
     "upper triangle"),
    (lambda d, percentile=25.0: max(float(np.percentile(_eps_off(d), 25)), 1e-5), "fixed 25"),
    (lambda d, percentile=25.0: max(float(np.percentile(_eps_off(d), percentile / 100)), 1e-5), "from 0 to 100"),
    (lambda d, percentile=25.0: float(np.percentile(_eps_off(d), percentile)), "at least 1e-5"),
    (lambda d, percentile=25.0: min(float(np.percentile(_eps_off(d), percentile)), 1e-5), "not the smaller"),
    (lambda d, percentile=25.0: max(float(np.percentile(_eps_off(d), percentile, method="lower")), 1e-5),
     "take the lower"),
    (lambda d, percentile=25.0: max(float(np.percentile(_eps_off(d), percentile, method="nearest")), 1e-5),
     "take the nearer"),
    (lambda d, percentile=25.0: max(float(np.percentile(_eps_off(d), percentile, method="midpoint")), 1e-5),
     "midpoint"),
]


def min_samples_int(n_channels, fraction=0.05, floor=2):
    return max(floor, int(fraction * n_channels))


def min_samples_floor(n_channels, fraction=0.05, floor=2):
    return max(floor, math.floor(n_channels * fraction))


def min_samples_numpy(n_channels, fraction=0.05, floor=2):
    return np.maximum(floor, np.floor(fraction * n_channels)).astype(np.int64)


RIGHT["check_min_samples"] = [min_samples_int, min_samples_floor, min_samples_numpy]
WRONG["check_min_samples"] = [
    (lambda n, fraction=0.05, floor=2: max(floor, round(fraction * n)), "to the nearest integer"),
    (lambda n, fraction=0.05, floor=2: max(floor, int(np.round(fraction * n))), "to the nearest integer"),
    (lambda n, fraction=0.05, floor=2: max(floor, math.ceil(fraction * n)), "rounded `fraction * n_channels` up"),
    (lambda n, fraction=0.05, floor=2: int(fraction * n), "never go below the floor"),
    (lambda n, fraction=0.05, floor=2: min(floor, int(fraction * n)), "not the smaller"),
    (lambda n, fraction=0.05, floor=2: floor + int(fraction * n), "not something to add"),
    (lambda n, fraction=0.05, floor=2: max(2, int(0.05 * n)), "instead of fixed 0.05 and 2"),
    (lambda n, fraction=0.05, floor=2: float(max(floor, int(fraction * n))), "not a float"),
    (lambda n, fraction=0.05, floor=2: max(floor, fraction * n), "to a whole number"),
]


def sizes_bincount(labels):
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=max(int(labels.max()) + 1, 0))


def sizes_loop(labels):
    return [int((labels == j).sum()) for j in range(int(labels.max()) + 1)]


def sizes_dict(labels):
    return {j: int((labels == j).sum()) for j in range(labels.max() + 1)}


def sizes_torch(labels):
    t = torch.as_tensor(labels)
    return torch.bincount(t[t >= 0], minlength=int(t.max()) + 1 if t.max() >= 0 else 0)


RIGHT["check_cluster_sizes"] = [sizes_bincount, sizes_loop, sizes_dict, sizes_torch]
WRONG["check_cluster_sizes"] = [
    (lambda labels: np.unique(labels, return_counts=True)[1], "leave them out of the count"),
    (lambda labels: np.sort(sizes_bincount(labels)), "do not sort"),
    (lambda labels: np.sort(sizes_bincount(labels))[::-1].copy(), "do not sort"),
    (lambda labels: [int((labels == j).sum()) for j in range(int(labels.max()))], "last cluster is missing"),
    (lambda labels: sizes_bincount(labels) / len(labels), "not its share"),
]

# -- 03: a cluster's mean gradient, the published kernel --------------------------------------------------


def mean_torch(gradients, labels, cluster):
    return gradients[torch.as_tensor(labels == cluster)].mean(dim=0)


def mean_numpy(gradients, labels, cluster):
    return gradients.numpy()[np.flatnonzero(labels == cluster)].mean(axis=0)


def mean_loop(gradients, labels, cluster):
    members = [k for k, label in enumerate(labels) if label == cluster]
    return sum(gradients[k].double() for k in members) / len(members)


RIGHT["check_cluster_mean_gradient"] = [mean_torch, mean_numpy, mean_loop]
WRONG["check_cluster_mean_gradient"] = [
    (lambda g, labels, j: mean_torch(g, labels, j).T, "looks transposed"),
    (lambda g, labels, j: g.mean(0), "averaged every channel"),
    (lambda g, labels, j: g[torch.as_tensor(labels == j)].sum(0), "not their sum"),
    (lambda g, labels, j: g[torch.as_tensor(labels == j)].median(dim=0).values
     if (labels == j).sum() % 2 else torch.quantile(g[torch.as_tensor(labels == j)], 0.5, dim=0), "median"),
    (lambda g, labels, j: g[j], "not a channel index"),
    (lambda g, labels, j: g[torch.as_tensor(labels == j)], "now average them"),
]


def kernel_torch(mean_map, spatial_sigma=5.0, range_sigma=0.1):
    h, w = mean_map.shape
    x = torch.arange(h, dtype=mean_map.dtype)[:, None] - h / 2
    y = torch.arange(w, dtype=mean_map.dtype)[None, :] - w / 2
    s = torch.exp(-(x**2 + y**2) / (2 * spatial_sigma**2))
    r = torch.exp(-((mean_map - mean_map.mean()) ** 2) / (2 * range_sigma**2))
    return s * r / ((s * r).sum() + 1e-6)


def kernel_numpy_meshgrid(mean_map, spatial_sigma=5.0, range_sigma=0.1):
    m = mean_map.numpy().astype(np.float64)
    h, w = m.shape
    rows, cols = np.meshgrid(np.arange(h) - h / 2, np.arange(w) - w / 2, indexing="ij")
    k = np.exp(-(rows**2 + cols**2) / (2 * spatial_sigma**2) - (m - m.mean()) ** 2 / (2 * range_sigma**2))
    return k / (k.sum() + 1e-6)


def kernel_float32(mean_map, spatial_sigma=5.0, range_sigma=0.1):
    return kernel_torch(mean_map.float(), spatial_sigma, range_sigma)


def _kernel(m, s=5.0, r=0.1, ch=None, cw=None, about=None, two=2.0, norm="sum"):
    h, w = m.shape
    x = torch.arange(h, dtype=torch.float64)[:, None] - (h / 2 if ch is None else ch)
    y = torch.arange(w, dtype=torch.float64)[None, :] - (w / 2 if cw is None else cw)
    m = m.double()
    k = torch.exp(-(x**2 + y**2) / (two * s**2)) * torch.exp(-((m - (m.mean() if about is None else about)) ** 2)
                                                             / (two * r**2))
    return {"sum": k / (k.sum() + 1e-6), "max": k / k.max(), "none": k}[norm]


RIGHT["check_reference_kernel"] = [kernel_torch, kernel_numpy_meshgrid, kernel_float32]
WRONG["check_reference_kernel"] = [
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, (m.shape[0] - 1) / 2,
                                                           (m.shape[1] - 1) / 2), "(h-1)/2"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, m.shape[0] // 2,
                                                           m.shape[1] // 2), "rounded down"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, m.shape[1] / 2,
                                                           m.shape[0] / 2), "x runs over the h rows"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: kernel_torch(m, spatial_sigma, range_sigma).T, "looks transposed"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, norm="none"),
     "not normalised"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, norm="max"),
     "maximum of 1"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: kernel_torch(torch.zeros_like(m), spatial_sigma, range_sigma),
     "range term R is missing"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, about=0.0),
     "compares each value with 0"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: _kernel(m, spatial_sigma, range_sigma, two=1.0),
     "not by sigma^2"),
    (lambda m, spatial_sigma=5.0, range_sigma=0.1: kernel_torch(m), "whatever the arguments say"),
]

# -- 04: softmax over the kept channels, min-max normalisation ---------------------------------------------


def softmax_torch(weights, kept):
    alphas = torch.zeros_like(weights)
    alphas[kept] = torch.softmax(weights[kept], dim=0)
    return alphas


def softmax_masked_fill(weights, kept):
    return torch.softmax(weights.masked_fill(~kept, float("-inf")), dim=0)


def softmax_scipy(weights, kept):
    w, k = weights.numpy(), kept.numpy()
    out = np.zeros(len(w))
    out[k] = special.softmax(w[k])
    return list(out)


RIGHT["check_softmax_weights"] = [softmax_torch, softmax_masked_fill, softmax_scipy]
WRONG["check_softmax_weights"] = [
    (lambda w, kept: torch.softmax(w, 0), "runs over the kept channels only, and dropped"),
    (lambda w, kept: torch.softmax(w, 0) * kept, "*after* a softmax"),
    (lambda w, kept: softmax_torch(w, ~kept), "runs over the dropped ones"),
    (lambda w, kept: torch.exp(w) * kept, "not divided by their sum"),
    (lambda w, kept: w * kept / w[kept].sum(), "divided the weights by their sum"),
    (lambda w, kept: torch.where(kept, torch.log_softmax(w.masked_fill(~kept, float("-inf")), 0),
                                 torch.zeros_like(w)), "logarithm"),
    (lambda w, kept: torch.exp(w) * kept / (torch.exp(w) * kept).sum(), "overflows"),
]


def normalize_torch(cam):
    lo, hi = cam.min(), cam.max()
    return torch.zeros_like(cam) if hi - lo <= 0 else (cam - lo) / (hi - lo)


def normalize_numpy_ptp(cam):
    c = cam.numpy()
    return np.zeros_like(c) if np.ptp(c) == 0 else (c - c.min()) / np.ptp(c)


def normalize_epsilon(cam):
    return (cam - cam.min()) / (cam.max() - cam.min() + 1e-12)


RIGHT["check_normalize"] = [normalize_torch, normalize_numpy_ptp, normalize_epsilon]


def _in_place(cam):
    cam -= cam.min()
    top = cam.max()
    return cam / top if top > 0 else cam


WRONG["check_normalize"] = [
    (lambda cam: normalize_torch(cam).T, "looks transposed"),
    (lambda cam: cam / cam.max(), "subtract the map's minimum before"),
    (lambda cam: cam / (cam.max() - cam.min()) if cam.max() > cam.min() else cam * 0, "divided the map itself"),
    (lambda cam: (cam - cam.min()) / cam.max() if cam.max() != 0 else cam * 0, "not by the maximum"),
    (lambda cam: (cam - cam.mean()) / cam.std(unbiased=False), "standardisation"),
    (lambda cam: (cam - cam.min()) / (cam - cam.min()).sum(), "dividing by the sum"),
    (lambda cam: cam.clamp(0, 1), "clipping"),
    (lambda cam: torch.ones_like(cam) if cam.max() == cam.min() else normalize_torch(cam), "not ones"),
    (lambda cam: cam if cam.max() == cam.min() else normalize_torch(cam), "not the map itself"),
    (lambda cam: (cam - cam.min()) / (cam.max() - cam.min()), "instead of dividing by it"),
    (_in_place, "in place"),
]
