"""Automatic checks for the notebook exercises.

Each ``check_*`` function takes the learner's function, runs it on a few small inputs and compares what it
returns with the package's own implementation. It prints one verdict and returns ``True``/``False``:

- success: one line starting with ``Correct:``;
- a stub that still raises ``NotImplementedError``: a line starting with ``Not implemented yet:``;
- anything else: what is wrong (the shape, the values, which input) and a ``Hint:`` that points at the idea
  without giving the code away.

A check never raises because an answer is wrong, whatever the function does (raises, returns ``None``, a
string, NaNs, changes its input in place).

Checks by notebook, with the function the learner writes:

- 01: :func:`check_gradcam_weights` ``gradcam_weights(gradients) -> (C,)``;
  :func:`check_gradcam_map` ``gradcam_map(activations, weights) -> (h, w)``
- 02: :func:`check_percentile_eps` ``percentile_eps(distances, percentile=25.0) -> float``;
  :func:`check_min_samples` ``min_samples(n_channels, fraction=0.05, floor=2) -> int``;
  :func:`check_cluster_sizes` ``cluster_sizes(labels) -> (K,)``
- 03: :func:`check_cluster_mean_gradient` ``cluster_mean_gradient(gradients, labels, cluster) -> (h, w)``;
  :func:`check_reference_kernel` ``reference_kernel(mean_map, spatial_sigma=5.0, range_sigma=0.1) -> (h, w)``
- 04: :func:`check_softmax_weights` ``softmax_weights(weights, kept) -> (C,)``;
  :func:`check_normalize` ``normalize_map(cam) -> (H, W)`` in [0, 1]
- 05 (optional): :func:`check_pointing_game` ``pointing_game(cam, mask, tolerance=15) -> bool``
- 07: :func:`check_cfcam` ``cfcam(activations, gradients) -> (h, w)``, the reference preset from the parts
- 08: :func:`check_energy_in_mask` ``energy_in_mask(cam, mask) -> float`` in [0, 1]

Solutions in the notebooks are named ``solution_<name>``, so running every cell never replaces the learner's
function; :func:`yours_or_solution` picks the learner's function when it passes, else the solution, and says
which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage

from ..core import clustering as cl
from .reference import eps_from_distances, pairwise_distances
from ..core.compose import coefficients, gradcam_weights, normalize, weighted_relu_sum
from ..core.pipeline import cluster_mean_gradients
from ..core.filtering import reference_kernels
from ..evaluation.metrics import pointing_hits
from ..evaluation.shortcut import energy_in_mask

__all__ = [
    "CHECKS",
    "check_cfcam",
    "check_cluster_mean_gradient",
    "check_cluster_sizes",
    "check_energy_in_mask",
    "check_gradcam_map",
    "check_gradcam_weights",
    "check_min_samples",
    "check_normalize",
    "check_percentile_eps",
    "check_pointing_game",
    "check_reference_kernel",
    "check_softmax_weights",
    "yours_or_solution",
]


# -- the machinery ----------------------------------------------------------------------------------------

@dataclass
class _Case:
    """One input for the learner's function and the package's answer for it."""

    label: str  # what the input is, in words, for the verdict
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)


class _Wrong(Exception):
    """Raised by a comparison: ``problem`` says what is wrong, ``hint`` (optional) a targeted hint."""

    def __init__(self, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _copy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def _same(a, b) -> bool:
    """Whether an argument still equals the copy taken before the call (NaN-free inputs only)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    return True


def _call_signature(case: _Case) -> str:
    parts = [_describe(a) for a in case.args] + [f"{k}={v!r}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor{tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"array{x.shape}"
    return repr(x)


def _verify(fn, exercise: str, cases: list[_Case], compare: Callable[[Any, _Case], None], hint: str,
            success: str) -> bool:
    """Run ``fn`` on every case; print one verdict; True when every case passes."""
    if not callable(fn):
        print(f"Not quite: expected the function itself (for example `check(my_function)`, without calling "
              f"it), got a {type(fn).__name__}.\nHint: pass the function's name, not its result.")
        return False
    name = _name(fn)
    for case in cases:
        args = tuple(_copy(a) for a in case.args)
        kwargs = {k: _copy(v) for k, v in case.kwargs.items()}
        try:
            out = fn(*args, **kwargs)
        except NotImplementedError:
            print(f"Not implemented yet: `{name}` still raises NotImplementedError. Replace the "
                  f"`raise NotImplementedError` line with your code ({exercise}), then run this cell again.")
            return False
        except Exception as exc:  # the learner's bug, reported, never re-raised
            print(f"Not quite: `{name}({_call_signature(case)})` raised {type(exc).__name__}: {exc}\n"
                  f"  input: {case.label}\nHint: {hint}")
            return False
        changed = [i for i, (a, b) in enumerate(zip(args, case.args)) if not _same(a, b)]
        changed += [k for k in kwargs if not _same(kwargs[k], case.kwargs[k])]
        if changed:
            print(f"Not quite: `{name}` changed its input in place (argument {changed[0]!r}).\n"
                  f"  input: {case.label}\nHint: compute a new tensor/array instead of modifying the argument "
                  "(avoid in-place operations such as `x -= ...`, `x /= ...` or methods ending in `_`).")
            return False
        try:
            if out is None:
                raise _Wrong("it returned None. Did you forget the `return` statement?")
            compare(out, case)
        except _Wrong as wrong:
            print(f"Not quite: {wrong.problem}\n  input: {case.label}\nHint: {wrong.hint or hint}")
            return False
        except Exception as exc:  # a result so odd that comparing it failed
            print(f"Not quite: could not compare what `{name}` returned ({type(out).__name__}) with the expected "
                  f"answer ({type(exc).__name__}: {exc}).\n  input: {case.label}\nHint: {hint}")
            return False
    print(f"Correct: {success}")
    return True


def _to_array(out, what: str = "an array or tensor") -> np.ndarray:
    """The learner's output as a float64 numpy array, or ``_Wrong`` saying what it was."""
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().double().numpy() if out.is_floating_point() or out.dtype == torch.bool \
            else out.detach().cpu().numpy()
    if isinstance(out, (str, bytes, dict, set)) or out is None:
        raise _Wrong(f"it returned a {type(out).__name__}, expected {what}")
    try:
        arr = np.asarray(out)
    except Exception:
        raise _Wrong(f"it returned a {type(out).__name__}, expected {what}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise _Wrong(f"it returned a {type(out).__name__} that is not numeric, expected {what}")
    return arr.astype(np.float64) if np.issubdtype(arr.dtype, np.floating) else arr


def _to_scalar(out, what: str) -> float:
    arr = _to_array(out, what)
    if arr.size != 1:
        raise _Wrong(f"it returned something of shape {arr.shape}, expected {what} (a single number)")
    return arr.reshape(()).item()


def _is_right(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """The answer matches (checked first, so that a right answer is never mistaken for a known mistake)."""
    return got.shape == np.shape(expected) and bool(np.isfinite(got).all()) and \
        bool(np.allclose(got.astype(np.float64), expected, rtol=rtol, atol=atol))


def _values_close(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def _check_array(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-5, atol: float = 0.0,
                 shape_hint: str | None = None) -> None:
    """Shape, finiteness and values; ``_Wrong`` describing the first difference."""
    if got.shape != expected.shape:
        raise _Wrong(f"the result has shape {got.shape}, expected {expected.shape}", shape_hint)
    got = got.astype(np.float64)
    if not np.isfinite(got).all():
        bad = int((~np.isfinite(got)).sum())
        raise _Wrong(f"the result contains {bad} NaN or infinite value(s)")
    if not _values_close(got, expected, rtol, atol):
        err = np.abs(got - expected)
        where = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        index = f" at index {tuple(int(i) for i in where)}" if err.ndim else ""
        raise _Wrong(f"the shape is right {got.shape} but the values differ: largest difference "
                     f"{float(err.max()):.3g}{index} (got {float(got[where]):.6g}, expected "
                     f"{float(expected[where]):.6g})")


def _matches(got: np.ndarray, candidate, rtol: float = 1e-5, atol: float = 1e-12) -> bool:
    """Whether ``got`` equals a known wrong answer ``candidate`` (used to name the mistake)."""
    try:
        candidate = np.asarray(candidate, dtype=np.float64)
        return got.shape == candidate.shape and bool(np.allclose(got, candidate, rtol=rtol, atol=atol))
    except Exception:
        return False


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- notebook 01: Grad-CAM --------------------------------------------------------------------------------

def check_gradcam_weights(fn) -> bool:
    """``fn(gradients)``: gradients ``(C, h, w)`` tensor -> Grad-CAM weights ``(C,)``, one per channel."""
    g = _rng(1)
    cases = [
        _Case("random gradients, 4 channels of 3 x 5", (torch.randn(4, 3, 5, generator=g),), None),
        _Case("gradients constant over each map (as at layer4[-1] of a GAP network), 6 channels of 7 x 7",
              (torch.randn(6, 1, 1, generator=g).expand(6, 7, 7).contiguous(),), None),
        _Case("small gradients (order 1e-3), 8 channels of 2 x 6", (1e-3 * torch.randn(8, 2, 6, generator=g),), None),
    ]
    for case in cases:
        case.expected = gradcam_weights(case.args[0].double()).numpy()

    def compare(out, case):
        got = _to_array(out)
        if _is_right(got, case.expected, 1e-4, 1e-9):
            return
        grads = case.args[0].double().numpy()
        c, h, w = grads.shape
        if got.shape == (h, w) or got.shape == (c, h) or got.shape == (c, w):
            raise _Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "average over the two *spatial* dimensions (the last two), keeping one number per channel.")
        if got.shape == (c, 1, 1):
            raise _Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "the values may be right, but return one number per channel: shape (C,), not (C, 1, 1).")
        if got.size == 1 and c > 1:
            raise _Wrong("the result is a single number, expected one weight per channel",
                         "average over the spatial positions only, not over the channels too.")
        if _matches(got, grads.sum(axis=(1, 2))) and h * w > 1:
            raise _Wrong("the values are h*w times too large",
                         "you summed the gradient map; Grad-CAM takes its average (global average pooling).")
        _check_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return _verify(fn, "average each channel's gradient over its h*w positions", cases, compare,
                   "Grad-CAM's weight for channel k is one number: the average of the gradient map G_k over all "
                   "its h*w positions (global average pooling).",
                   "Grad-CAM's weights are the global average pool of the gradients, one per channel.")


def check_gradcam_map(fn) -> bool:
    """``fn(activations, weights)``: ``(C, h, w)`` and ``(C,)`` -> ``ReLU(sum_k w_k A_k)``, ``(h, w)``."""
    g = _rng(2)
    acts = torch.relu(torch.randn(5, 4, 6, generator=g))
    cases = [
        _Case("5 non-negative activation maps of 4 x 6, weights of both signs",
              (acts, torch.tensor([0.9, -1.2, 0.4, -0.3, 0.7])), None),
        _Case("3 activation maps of 2 x 3, all weights positive",
              (torch.relu(torch.randn(3, 2, 3, generator=g)) + 0.1, torch.tensor([0.2, 0.5, 0.1])), None),
        _Case("the same 5 maps, all weights negative (the map must then be all zero)",
              (acts, -torch.tensor([0.3, 0.1, 0.2, 0.5, 0.4])), None),
    ]
    for case in cases:
        case.expected = weighted_relu_sum(case.args[0].double(), case.args[1].double()).numpy()

    def compare(out, case):
        got = _to_array(out)
        if _is_right(got, case.expected, 1e-4, 1e-7):
            return
        a = case.args[0].double().numpy()
        w = case.args[1].double().numpy()
        c, h, wd = a.shape
        raw = np.einsum("chw,c->hw", a, w)
        if got.shape == (c, h, wd):
            raise _Wrong(f"the result has shape {got.shape}, expected ({h}, {wd})",
                         "after weighting each channel, add the channels up: the map has one value per position.")
        if got.shape == (h, wd):
            if (got < 0).any() and _matches(got, raw):
                raise _Wrong("the map has negative values",
                             "Grad-CAM keeps only positive evidence: apply ReLU to the weighted sum.")
            if _matches(got, np.maximum(raw, 0) / c):
                raise _Wrong(f"the values are {c} times too small",
                             "Grad-CAM adds the weighted channels up (a sum), it does not average them.")
            if _matches(got, (np.maximum(w[:, None, None] * a, 0)).sum(0)):
                raise _Wrong("the values are too large where some terms are negative",
                             "apply ReLU once, to the weighted sum, not to each weighted channel.")
            peak = np.maximum(raw, 0).max()
            if peak > 0 and _matches(got, np.maximum(raw, 0) / peak) and not np.isclose(peak, 1.0):
                raise _Wrong("the map is scaled to a maximum of 1",
                             "return the raw ReLU(sum) map here; scaling to [0, 1] comes later (notebook 04).")
        _check_array(got, case.expected, rtol=1e-4, atol=1e-7)

    return _verify(fn, "ReLU of the weighted sum of the activation maps", cases, compare,
                   "multiply each activation map A_k by its weight w_k, add the C weighted maps up, then keep only "
                   "the positive part (ReLU). The result is one h x w map.",
                   "the Grad-CAM map is ReLU(sum_k w_k A_k), an h x w map.")


# -- notebook 02: channel clustering ----------------------------------------------------------------------

def _distance_matrix(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


def check_percentile_eps(fn) -> bool:
    """``fn(distances, percentile=25.0)``: the percentile (linear interpolation) of the off-diagonal distances,
    each pair counted twice, at least ``1e-5``."""
    line = np.array([[0.0], [1.0], [3.0], [7.0]])
    rand = np.random.default_rng(3).normal(size=(30, 12))
    d_line = _distance_matrix(line).astype(np.float32)
    d_rand = pairwise_distances(rand)
    d_same = np.zeros((6, 6), dtype=np.float32)
    cases = [
        _Case("the 4 x 4 distances between 4 points at 0, 1, 3 and 7 on a line", (d_line,), None),
        _Case("distances between 30 random channels (30 x 30)", (d_rand,), None),
        _Case("the same 30 x 30 distances with percentile=10", (d_rand,), None, {"percentile": 10.0}),
        _Case("6 identical channels: every distance is 0", (d_same,), None),
    ]
    for case in cases:
        p = case.kwargs.get("percentile", 25.0)
        case.expected = eps_from_distances(case.args[0].astype(np.float64), p, 1e-5)

    def compare(out, case):
        got = _to_scalar(out, "eps")
        d = case.args[0].astype(np.float64)
        p = case.kwargs.get("percentile", 25.0)
        n = d.shape[0]
        off = d[~np.eye(n, dtype=bool)]
        upper = d[np.triu_indices(n, 1)]
        expected = case.expected
        if not np.isfinite(got):
            raise _Wrong(f"it returned {got}")
        if np.isclose(got, expected, rtol=1e-5, atol=1e-12):
            return
        if expected > 1e-5:
            if np.isclose(got, np.percentile(d, p), rtol=1e-5):
                raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g} (too small)",
                             "leave the diagonal out: a channel's distance to itself is always 0 and pulls the "
                             "percentile down.")
            if np.isclose(got, np.percentile(upper, p), rtol=1e-5):
                raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                             "take every off-diagonal entry of the full matrix (each pair counted twice, (i, j) and "
                             "(j, i)), as the published code does, not only the upper triangle.")
            if np.isclose(got, np.percentile(off, 25.0), rtol=1e-5) and p != 25.0:
                raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g} for percentile={p}",
                             "use the `percentile` argument instead of a fixed 25.")
            if np.isclose(got, np.percentile(off, p / 100.0), rtol=1e-5):
                raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                             "np.percentile takes percentiles from 0 to 100 (25, not 0.25).")
        elif got < 1e-5:
            raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g}",
                         "when every distance is 0 the percentile is 0, and DBSCAN needs eps > 0: return at least "
                         "eps_min = 1e-5.")
        raise _Wrong(f"eps = {got:.6g}, expected {expected:.6g}")

    return _verify(fn, "the percentile of the off-diagonal distances", cases, compare,
                   "eps is the `percentile`-th percentile (numpy's default linear interpolation) of all off-diagonal "
                   "entries of the distance matrix, and at least 1e-5.",
                   "eps is a percentile of the pairwise distances between channels (diagonal left out), at least "
                   "1e-5.")


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
    cases = [_Case(label, args, cl.min_samples_for(args[0], kw.get("fraction", 0.05), kw.get("floor", 2)), kw)
             for label, args, kw in specs]

    def compare(out, case):
        if isinstance(out, bool) or isinstance(out, np.bool_):
            raise _Wrong(f"it returned {out!r}, expected an integer")
        got = _to_scalar(out, "min_samples")
        n = case.args[0]
        frac = case.kwargs.get("fraction", 0.05)
        floor = case.kwargs.get("floor", 2)
        expected = case.expected
        if got == expected:
            if not isinstance(out, (int, np.integer)) and not (isinstance(out, torch.Tensor)
                                                               and not out.is_floating_point()):
                raise _Wrong(f"it returned {out!r} ({type(out).__name__}), the right value but not an integer",
                             "min_samples is a count of channels: return an int (e.g. with int(...)).")
            return
        if float(got) != int(got):
            raise _Wrong(f"min_samples = {got!r}, expected the whole number {expected}",
                         "min_samples counts channels: truncate `fraction * n_channels` with int(...) (the "
                         "published code rounds down), then apply the floor.")
        if got == max(floor, round(frac * n)) or got == max(floor, int(np.ceil(frac * n))):
            raise _Wrong(f"min_samples = {got}, expected {expected}",
                         "the published code truncates with int(...), which rounds down; it does not round.")
        if got == int(frac * n) or got == frac * n:
            raise _Wrong(f"min_samples = {got}, expected {expected}",
                         f"never go below the floor (floor={floor}): a cluster needs at least two channels.")
        if got == max(2, int(0.05 * n)) and (frac, floor) != (0.05, 2):
            raise _Wrong(f"min_samples = {got}, expected {expected}",
                         "use the `fraction` and `floor` arguments instead of fixed 0.05 and 2.")
        raise _Wrong(f"min_samples = {got}, expected {expected}")

    return _verify(fn, "min_samples from the number of channels", cases, compare,
                   "min_samples is `fraction` of the number of channels, truncated to an integer, but never less "
                   "than `floor`.",
                   "min_samples = max(floor, int(fraction * n_channels)).")


def check_cluster_sizes(fn) -> bool:
    """``fn(labels)``: per-channel labels (-2 important, -1 noise, 0..K-1 cluster) -> sizes ``(K,)``."""
    rng = np.random.default_rng(4)
    big = rng.choice([-1, 0, 1, 2, 3, 4], size=384, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05])
    cases = [
        _Case("labels [0, 0, 1, -1, 1, 1, 2, -1]", (np.array([0, 0, 1, -1, 1, 1, 2, -1]),), None),
        _Case("labels with important channels (-2), noise (-1) and clusters out of order",
              (np.array([2, -2, 0, -2, 1, 0, -1, 2, 2, -2]),), None),
        _Case("every channel is noise: no cluster at all", (np.full(7, -1),), None),
        _Case("384 channels in 5 clusters plus noise", (big,), None),
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
                    raise _Wrong(f"the dict has keys {sorted(out)}, expected the cluster ids {list(range(k))}",
                                 "noise (-1) and important (-2) channels are not clusters: count only labels 0..K-1.")
                out = [out[j] for j in range(k)]
            except TypeError:
                raise _Wrong("it returned a dict whose keys are not cluster ids") from None
        got = _to_array(out, "an array of cluster sizes")
        expected = case.expected
        k = len(expected)
        values, counts = np.unique(labels, return_counts=True)
        if got.ndim != 1:
            raise _Wrong(f"the result has shape {got.shape}, expected ({k},): one size per cluster")
        if got.shape == counts.shape and np.array_equal(got, counts) and got.shape != expected.shape:
            raise _Wrong(f"the result has {got.size} entries, expected {k} (one per cluster)",
                         "noise (-1) and important (-2) channels are not clusters: leave them out of the count.")
        if got.shape != expected.shape:
            hint = ("with no cluster at all the answer is an empty array (length 0)." if k == 0 else
                    "entry j is the size of cluster j, for j = 0 .. K-1, where K = the largest label + 1.")
            raise _Wrong(f"the result has {got.size} entries, expected {k} (one per cluster)", hint)
        if np.array_equal(np.sort(got), np.sort(expected)) and not np.array_equal(got, expected):
            raise _Wrong(f"the sizes are right but in the wrong order: got {got.astype(int).tolist()}, expected "
                         f"{expected.astype(int).tolist()}", "entry j must be the size of the cluster labelled j.")
        _check_array(got, expected, rtol=0, atol=0)

    return _verify(fn, "cluster sizes from DBSCAN labels", cases, compare,
                   "for each cluster id j = 0, 1, ..., K-1 count the channels labelled j; -1 (noise) and -2 "
                   "(important) are not clusters.",
                   "cluster j's size is the number of channels labelled j; noise and important channels are not "
                   "clusters.")


# -- notebook 03: gradient filtering ----------------------------------------------------------------------

def check_cluster_mean_gradient(fn) -> bool:
    """``fn(gradients, labels, cluster)``: the mean gradient map over the channels labelled ``cluster``."""
    g = _rng(5)
    grads = torch.randn(10, 4, 6, generator=g)
    labels = np.array([1, -2, 0, 1, -1, 2, 1, 0, -1, -2])
    cases = [
        _Case("10 gradient maps of 4 x 6, cluster 1 (channels 0, 3 and 6)", (grads, labels, 1), None),
        _Case("the same maps, cluster 0 (channels 2 and 7)", (grads, labels, 0), None),
        _Case("the same maps, cluster 2 (a single channel, 5)", (grads, labels, 2), None),
        _Case("6 small gradient maps of 7 x 7 (order 1e-3), cluster 0",
              (1e-3 * torch.randn(6, 7, 7, generator=g), np.array([0, 0, -1, 1, 0, 1]), 0), None),
    ]
    for case in cases:
        case.expected = cluster_mean_gradients(case.args[0].double(), case.args[1])[case.args[2]].numpy()

    def compare(out, case):
        got = _to_array(out)
        if _is_right(got, case.expected, 1e-4, 1e-9):
            return
        grads, labels, j = case.args[0].double().numpy(), case.args[1], case.args[2]
        members = grads[labels == j]
        h, w = grads.shape[1:]
        if got.shape == members.shape and members.shape[0] > 1:
            raise _Wrong(f"the result has shape {got.shape}, expected ({h}, {w})",
                         "you selected the cluster's channels; now average them into one map.")
        if got.shape == (members.shape[0],) or got.size == 1:
            raise _Wrong(f"the result has shape {got.shape}, expected ({h}, {w})",
                         "average across the cluster's channels only, not over positions: the result is a map.")
        if _matches(got, grads.mean(0)):
            raise _Wrong("you averaged every channel",
                         "use only the channels whose label equals `cluster`.")
        if _matches(got, members.sum(0)) and members.shape[0] > 1:
            raise _Wrong(f"the values are {members.shape[0]} times too large",
                         "take the mean of the cluster's gradient maps, not their sum.")
        _check_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return _verify(fn, "the mean gradient map of one cluster", cases, compare,
                   "select the gradient maps of the channels whose label is `cluster` and average them, "
                   "position by position, into one h x w map.",
                   "a cluster's mean gradient M_j is the average of its channels' gradient maps.")


def check_reference_kernel(fn) -> bool:
    """``fn(mean_map, spatial_sigma=5.0, range_sigma=0.1)``: the published kernel ``K = S*R / (sum(S*R)+1e-6)``."""
    g = _rng(6)
    cases = [
        _Case("a 7 x 7 map with values of order 0.1 (odd size)", (0.1 * torch.randn(7, 7, generator=g),), None),
        _Case("a 6 x 9 map (not square) with values of order 0.1",
              (0.1 * torch.randn(6, 9, generator=g) + 0.05,), None),
        _Case("a 14 x 14 map of small gradients (order 1e-3)", (1e-3 * torch.randn(14, 14, generator=g),), None),
        _Case("a 5 x 8 map with spatial_sigma=2.0 and range_sigma=0.05",
              (0.05 * torch.randn(5, 8, generator=g),), None, {"spatial_sigma": 2.0, "range_sigma": 0.05}),
        _Case("a constant 4 x 4 map", (torch.full((4, 4), 0.3),), None),
    ]

    def kernel(m, s=5.0, r=0.1, centre=None, swap=False, use_range=True, norm=True):
        h, w = m.shape
        ch, cw = (h / 2, w / 2) if centre is None else centre
        x = np.arange(h)[:, None] - ch
        y = np.arange(w)[None, :] - cw
        if swap:
            x = np.arange(h)[:, None] - w / 2
            y = np.arange(w)[None, :] - h / 2
        k = np.exp(-(x**2 + y**2) / (2 * s**2))
        if use_range:
            k = k * np.exp(-((m - m.mean()) ** 2) / (2 * r**2))
        return k / (k.sum() + 1e-6) if norm else k

    for case in cases:
        case.expected = reference_kernels(case.args[0].double()[None], case.kwargs.get("spatial_sigma", 5.0),
                                          case.kwargs.get("range_sigma", 0.1))[0].numpy()

    def compare(out, case):
        got = _to_array(out)
        m = case.args[0].double().numpy()
        s, r = case.kwargs.get("spatial_sigma", 5.0), case.kwargs.get("range_sigma", 0.1)
        h, w = m.shape
        if got.shape != m.shape:
            raise _Wrong(f"the result has shape {got.shape}, expected {m.shape}",
                         "the kernel is as large as the map: one weight per position (x, y).")
        if np.isclose(got, case.expected, rtol=1e-4, atol=1e-9).all():
            return
        if _matches(got, kernel(m, s, r, centre=((h - 1) / 2, (w - 1) / 2)), rtol=1e-4):
            raise _Wrong("the kernel is centred in the middle of the map, (h-1)/2, (w-1)/2",
                         "the published code centres the spatial term at (h/2, w/2), half a pixel off the middle "
                         "for odd sizes; reproduce that.")
        if h != w and _matches(got, kernel(m, s, r, swap=True), rtol=1e-4):
            raise _Wrong("rows and columns are swapped",
                         "x runs over the h rows (centred at h/2), y over the w columns (centred at w/2).")
        if _matches(got, kernel(m, s, r, norm=False), rtol=1e-4):
            raise _Wrong(f"the kernel is not normalised (it sums to {got.sum():.4g})",
                         "divide S * R by its sum (plus 1e-6).")
        if _matches(got, kernel(m, s, r, use_range=False), rtol=1e-4):
            raise _Wrong("the range term R is missing",
                         "multiply the spatial Gaussian S by R = exp(-(M - mean(M))^2 / (2 range_sigma^2)).")
        if (s, r) != (5.0, 0.1) and _matches(got, kernel(m), rtol=1e-4):
            raise _Wrong("the kernel uses spatial_sigma=5.0 and range_sigma=0.1 whatever the arguments say",
                         "use the `spatial_sigma` and `range_sigma` arguments.")
        if np.isfinite(got).all() and not np.isclose(got.sum(), case.expected.sum(), rtol=1e-3):
            raise _Wrong(f"the kernel sums to {got.sum():.4g}, expected {case.expected.sum():.4g}",
                         "normalise: divide S * R by its sum (plus 1e-6), so the weights add up to (almost) 1.")
        _check_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return _verify(fn, "the published kernel K = S * R / (sum(S * R) + 1e-6)", cases, compare,
                   "S is a Gaussian of the distance from (h/2, w/2) with sigma = spatial_sigma; R compares each value "
                   "of the map with the map's global mean, with sigma = range_sigma; K = S * R normalised to sum "
                   "to (almost) 1.",
                   "the published kernel is a centred Gaussian times a range term around the map's mean, normalised.")


# -- notebook 04: composition -----------------------------------------------------------------------------

def check_softmax_weights(fn) -> bool:
    """``fn(weights, kept)``: softmax of ``weights`` over the kept channels, 0 for the dropped ones."""
    g = _rng(7)
    cases = [
        _Case("8 weights of order 1e-3 (as at a real layer), channels 2 and 5 dropped",
              (1e-3 * torch.randn(8, generator=g),
               torch.tensor([True, True, False, True, True, False, True, True])), None),
        _Case("4 weights, all kept", (torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.ones(4, dtype=torch.bool)), None),
        _Case("large weights [1000, 999, 998, -5, 3] (exp overflows unless handled), channel 3 dropped",
              (torch.tensor([1000.0, 999.0, 998.0, -5.0, 3.0]), torch.tensor([True, True, True, False, True])),
              None),
    ]
    for case in cases:
        case.expected = coefficients(case.args[0].double(), case.args[1], "softmax").numpy()

    def compare(out, case):
        got = _to_array(out)
        if _is_right(got, case.expected, 1e-4, 1e-9):
            return
        w, kept = case.args[0].double().numpy(), case.args[1].numpy()
        c = w.shape[0]
        if got.shape == (int(kept.sum()),) and kept.sum() != c:
            raise _Wrong(f"the result has shape {got.shape}, expected ({c},)",
                         "return one coefficient per channel: the softmax values for the kept channels and 0 for "
                         "the dropped ones.")
        if got.shape != (c,):
            raise _Wrong(f"the result has shape {got.shape}, expected ({c},)")
        if not np.isfinite(got).all():
            raise _Wrong("the result contains NaN or infinite values",
                         "exp of a large weight overflows: subtract the largest kept weight before exponentiating "
                         "(the softmax does not change), or use torch.softmax.")
        if (~kept).any() and np.abs(got[~kept]).max() > 0:
            sm_all = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
            if _matches(got, sm_all):
                raise _Wrong("dropped channels got a nonzero coefficient",
                             "the softmax runs over the kept channels only; dropped channels get 0.")
            raise _Wrong("dropped channels got a nonzero coefficient", "dropped (noise) channels must get 0.")
        if not np.isclose(got[kept].sum(), 1.0, rtol=1e-5):
            raise _Wrong(f"the kept coefficients sum to {got[kept].sum():.6g}, expected 1",
                         "the softmax over the kept channels is exp(w_k) divided by the sum of exp(w_j) over the kept "
                         "channels j only.")
        _check_array(got, case.expected, rtol=1e-4, atol=1e-9)

    return _verify(fn, "softmax over the kept channels", cases, compare,
                   "alpha_k = exp(w_k) / sum_j exp(w_j), where j runs over the kept channels; dropped channels get 0.",
                   "alpha is the softmax of the weights over the kept channels, 0 elsewhere.")


def check_normalize(fn) -> bool:
    """``fn(cam)``: min-max normalisation of a ``(H, W)`` map to [0, 1]; a flat map becomes all zeros."""
    g = _rng(8)
    cases = [
        _Case("a 5 x 7 map with values between about 2 and 3", (2.0 + torch.rand(5, 7, generator=g),), None),
        _Case("a 6 x 6 ReLU map with zeros and a maximum of 4",
              (torch.relu(4 * torch.randn(6, 6, generator=g)).clamp(max=4.0),), None),
        _Case("a map with negative values, -3 .. 1", (torch.linspace(-3, 1, 12).reshape(3, 4),), None),
        _Case("a flat 4 x 4 map (every value 2.5)", (torch.full((4, 4), 2.5),), None),
        _Case("an all-zero 3 x 5 map", (torch.zeros(3, 5),), None),
    ]
    for case in cases:
        case.expected = normalize(case.args[0].double(), "minmax").double().numpy()

    def compare(out, case):
        got = _to_array(out)
        if _is_right(got, case.expected, 1e-5, 1e-6):
            return
        m = case.args[0].double().numpy()
        if got.shape != m.shape:
            raise _Wrong(f"the result has shape {got.shape}, expected {m.shape}", "keep the map's shape.")
        flat = m.max() == m.min()
        if not np.isfinite(got).all():
            if flat:
                raise _Wrong("a flat map gave NaN or infinite values",
                             "when max == min the range is 0: return all zeros instead of dividing by it.")
            raise _Wrong("the result contains NaN or infinite values")
        if not flat and m.max() > 0 and _matches(got, m / m.max()) and m.min() != 0:
            raise _Wrong(f"the smallest value is {got.min():.4g}, expected 0",
                         "subtract the map's minimum before dividing by the range (max - min).")
        if flat and np.abs(got).max() > 0:
            raise _Wrong(f"a flat map gave {got.flat[0]:.4g} everywhere, expected 0",
                         "a map without any contrast carries no information: return all zeros.")
        _check_array(got, case.expected, rtol=1e-5, atol=1e-6)

    return _verify(fn, "min-max normalisation to [0, 1]", cases, compare,
                   "subtract the map's minimum, then divide by its range (max - min) so the values run from 0 to 1; "
                   "a flat map (range 0) becomes all zeros.",
                   "min-max normalisation maps the smallest value to 0 and the largest to 1 (a flat map to 0).")


# -- notebook 05 (optional): the pointing game ------------------------------------------------------------

def _disc_mask(size: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _peak_map(size: int, cy: int, cx: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0**2)).astype(np.float32)


def _box_mask(height: int, width: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[rows, cols] = True
    return mask


def _peak_at(height: int, width: int, y: int, x: int) -> np.ndarray:
    """A non-square map whose single maximum is at row ``y``, column ``x``."""
    yy, xx = np.mgrid[:height, :width]
    return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 6.0**2)).astype(np.float32)


def check_pointing_game(fn) -> bool:
    """``fn(cam, mask, tolerance=15)``: is the map's maximum within ``tolerance`` pixels of the mask?

    Besides symmetric cases, non-square maps with the lesion away from the diagonal (so that swapping rows and
    columns gives the wrong answer) and peaks exactly ``tolerance`` pixels away (a hit: "within" includes the
    boundary, so a strict ``<`` fails).
    """
    mask = _disc_mask(96, 40, 40, 8)
    wide = _box_mask(80, 128, slice(50, 61), slice(10, 21))  # lesion in the lower left of a wide image
    edge = _box_mask(96, 96, slice(40, 50), slice(20, 31))  # right edge at column 30
    cases = [
        _Case("a wide 80 x 128 map, peak on a lesion in the lower left (row 55, column 15)",
              (_peak_at(80, 128, 55, 15), wide), None),
        _Case("the same wide image, peak at row 15, column 55: far from the lesion (with rows and columns "
              "swapped it would land on it)", (_peak_at(80, 128, 15, 55), wide), None),
        _Case("peak exactly 15 px right of the lesion's edge (distance = tolerance)",
              (_peak_at(96, 96, 45, 45), edge), None),
        _Case("peak exactly 5 px right of the lesion's edge with tolerance=5", (_peak_at(96, 96, 45, 35), edge), None,
              {"tolerance": 5}),
        _Case("peak 16 px right of the lesion's edge (just beyond the tolerance)", (_peak_at(96, 96, 45, 46), edge),
              None),
        _Case("peak inside the lesion", (_peak_map(96, 42, 38), mask), None),
        _Case("peak 10 px outside the lesion's edge", (_peak_map(96, 40, 58), mask), None),
        _Case("peak 25 px outside the lesion's edge", (_peak_map(96, 73, 40), mask), None),
        _Case("peak 10 px outside the edge with tolerance=5", (_peak_map(96, 40, 58), mask), None,
              {"tolerance": 5}),
        _Case("a broad second bump far away, the maximum inside the lesion",
              (np.maximum(_peak_map(96, 40, 40), 0.9 * _peak_map(96, 80, 80)), mask), None),
    ]
    for case in cases:
        case.expected = bool(pointing_hits(case.args[0][None], case.args[1][None], case.kwargs.get("tolerance", 15))[0])

    def compare(out, case):
        if not isinstance(out, (bool, np.bool_)) and not (isinstance(out, (int, np.integer)) and out in (0, 1)) \
                and not (isinstance(out, torch.Tensor) and out.numel() == 1):
            raise _Wrong(f"it returned a {type(out).__name__}, expected True or False")
        got = bool(out)
        if got != case.expected:
            cam, lesion = case.args
            tolerance = case.kwargs.get("tolerance", 15)
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            distance = ndimage.distance_transform_edt(~lesion)
            hint = None
            if x < lesion.shape[0] and y < lesion.shape[1] and bool(distance[x, y] <= tolerance) == got:
                hint = ("rows and columns look swapped: np.unravel_index returns (row, column) = (y, x), and "
                        "arrays are indexed [row, column].")
            elif distance[y, x] == tolerance and not got:
                hint = (f"the maximum is exactly {tolerance} px from the lesion, which is *within* the tolerance: "
                        "compare with <=, not <.")
            elif case.kwargs.get("tolerance") is not None:
                hint = "use the `tolerance` argument, not a fixed 15 pixels."
            raise _Wrong(f"it returned {got}, expected {case.expected}", hint)

    return _verify(fn, "the pointing game", cases, compare,
                   "find the position of the map's maximum, then ask whether it lies inside the lesion mask grown "
                   "by `tolerance` pixels (or: is its distance to the nearest lesion pixel <= tolerance?).",
                   "the pointing game asks whether the map's maximum falls on (or next to) the lesion.")


# -- notebook 07: the capstone ----------------------------------------------------------------------------

def _capstone_case(seed: int, channels: int, size: int, gradient_scale: float) -> tuple:
    """Activations with four groups of similar channels (DBSCAN clusters) and a few loners (DBSCAN noise)."""
    g = _rng(seed)
    prototypes = torch.relu(torch.randn(4, size, size, generator=g, dtype=torch.float64))
    group = torch.arange(channels) % 4
    acts = torch.relu(prototypes[group] * (1 + 0.5 * torch.rand(channels, 1, 1, generator=g, dtype=torch.float64))
                      + 0.15 * torch.randn(channels, size, size, generator=g, dtype=torch.float64))
    loners = torch.relu(1.5 * torch.randn(channels // 8, size, size, generator=g, dtype=torch.float64))
    acts = torch.cat([acts, loners])  # unlike any group: DBSCAN noise
    grads = gradient_scale * torch.randn(acts.shape, generator=g, dtype=torch.float64)
    return acts, grads


def check_cfcam(fn) -> bool:
    """``fn(activations, gradients)``: the published CF-CAM (``reference`` preset) map, ``(h, w)`` after ReLU.

    Compared with :func:`cfcam.cluster_filter_cam` ``(..., "reference").cam`` within 1e-4 of its maximum, on
    gradients of order 1e-3 (as at a real layer: the softmax is nearly uniform) and of order 1 (where it is
    not, so a missing or misplaced softmax shows).
    """
    from ..core.pipeline import cluster_filter_cam

    specs = [("72 channels of 7 x 7 (four groups and 8 loners), gradients of order 1e-3", 11, 64, 7, 1e-3),
             ("72 channels of 7 x 7, gradients of order 1 (the softmax is far from uniform)", 12, 64, 7, 1.0),
             ("54 channels of 10 x 10 (an even size), gradients of order 0.1", 13, 48, 10, 0.1)]
    cases = []
    for label, seed, c, size, scale in specs:
        acts, grads = _capstone_case(seed, c, size, scale)
        cases.append(_Case(label, (acts, grads), cluster_filter_cam(acts, grads, "reference").cam.astype(np.float64)))

    def compare(out, case):
        got = _to_array(out)
        expected = case.expected
        scale = max(float(np.abs(expected).max()), 1e-30)
        if _is_right(got, expected, 0.0, 1e-4 * scale):
            return
        acts, grads = case.args
        if got.shape != expected.shape:
            raise _Wrong(f"the map has shape {got.shape}, expected {expected.shape}",
                         "return the (h, w) map before upsampling: ReLU(sum_k alpha_k A_k).")
        others = {"readme": "the readme preset (no important split, bilateral filter, no softmax)"}
        for preset, words in others.items():
            if _matches(got, cluster_filter_cam(acts, grads, preset).cam, rtol=1e-4, atol=1e-4 * scale):
                raise _Wrong(f"this is {words}", "the capstone asks for the published code: the reference preset.")
        from ..core.config import make_config
        variants = {"weighting='gap'": ("the weights were not passed through the softmax",
                                        "alpha = softmax of the weights over the kept channels."),
                    "filter='none'": ("the cluster gradients were not filtered",
                                      "filter each cluster's mean gradient with the published kernel, then take "
                                      "the mean of the filtered map as the cluster's weight."),
                    "important_fraction=0.0": ("no channel was set aside as important",
                                               "channels whose norm is >= the 75th percentile of the norms are "
                                               "important: never clustered, weight = their mean gradient.")}
        for change, (problem, hint) in variants.items():
            key, value = change.split("=")
            config = make_config("reference", **{key: eval(value)})  # noqa: S307 - fixed literals above
            if _matches(got, cluster_filter_cam(acts, grads, config).cam, rtol=1e-4, atol=1e-4 * scale):
                raise _Wrong(problem, hint)
        _check_array(got, expected, rtol=0.0, atol=1e-4 * scale)

    return _verify(fn, "CF-CAM from your parts", cases, compare,
                   "follow the steps of the reference preset in order: important split, eps and min_samples, DBSCAN "
                   "on the rest, each cluster's mean gradient through the published kernel, weights (mean of the "
                   "filtered map, or mean gradient for important channels), softmax over the kept channels, ReLU of "
                   "the weighted sum.",
                   "your CF-CAM reproduces the published implementation.")


# -- using the learner's function or the solution ---------------------------------------------------------

def yours_or_solution(yours, solution, check: Callable[[Any], bool] | None = None):
    """``yours`` when it passes its check, else ``solution``; prints one line saying which, and never changes
    the learner's name (the notebook keeps both and uses what this returns).

    The check is looked up by the solution's name (``solution_gradcam_weights`` -> ``check_gradcam_weights``)
    unless given. Raises ``AssertionError`` if the solution itself fails its check (a bug in the notebook).
    """
    import contextlib
    import io

    name = _name(solution)
    base = name.removeprefix("solution_")
    check = check or CHECKS[base]
    with contextlib.redirect_stdout(io.StringIO()):
        mine = callable(yours) and check(yours)
    if mine:
        print(f"Using your `{_name(yours)}` (it passes its check).")
        return yours
    with contextlib.redirect_stdout(io.StringIO()) as said:
        ok = check(solution)
    if not ok:
        raise AssertionError(f"{name} fails its own check:\n{said.getvalue()}")
    print(f"Using `{name}` for now: your `{base}` does not pass its check yet. It is left as you wrote it; "
          "fix it and run this cell again to use yours.")
    return solution


# -- notebook 08: energy in a mask -------------------------------------------------------------------------

def check_energy_in_mask(fn) -> bool:
    """``fn(cam, mask)``: the share of the map's total value that lies inside the mask (0 for an all-zero map)."""
    mask = _disc_mask(64, 20, 20, 6)
    marker = np.zeros((64, 64), dtype=bool)
    marker[44:56, 44:56] = True
    two_bumps = _peak_map(64, 20, 20) + 2.0 * _peak_map(64, 50, 50)
    cases = [
        _Case("a bump on the lesion and a twice as bright one on the marker; mask = the lesion", (two_bumps, mask), None),
        _Case("the same map; mask = the marker", (two_bumps, marker), None),
        _Case("a map that is 7 everywhere inside the lesion and 0 elsewhere", (7.0 * mask.astype(np.float32), mask),
              None),
        _Case("a map that is 1 everywhere (a flat map)", (np.ones((64, 64), np.float32), marker), None),
        _Case("an all-zero map", (np.zeros((64, 64), np.float32), mask), None),
    ]
    for case in cases:
        case.expected = float(energy_in_mask(case.args[0][None], case.args[1][None])[0])

    def compare(out, case):
        got = _to_scalar(out, "a number between 0 and 1")
        if np.isfinite(got) and abs(got - case.expected) <= 1e-6:
            return
        cam, m = case.args[0].astype(np.float64), case.args[1]
        if not np.isfinite(got):
            raise _Wrong(f"it returned {got}, expected {case.expected:.4g}",
                         "an all-zero map has total 0: return 0 instead of dividing by it." if cam.sum() == 0 else None)
        if abs(got - m.mean()) <= 1e-6 or (m.any() and abs(got - cam[m].mean()) <= 1e-6):
            raise _Wrong(f"it returned {got:.4g}, expected {case.expected:.4g}",
                         "sum the map's values inside the mask and divide by the sum of the map over the whole image "
                         "(not a mean, and not the mask's share of the image).")
        raise _Wrong(f"it returned {got:.4g}, expected {case.expected:.4g}")

    return _verify(fn, "the energy in a mask", cases, compare,
                   "divide the sum of the map inside the mask by the sum of the whole map; when the whole map sums "
                   "to 0, return 0.",
                   "the energy in a mask is the share of the map's total that falls inside it.")


CHECKS: dict[str, Callable[[Any], bool]] = {
    "gradcam_weights": check_gradcam_weights,
    "gradcam_map": check_gradcam_map,
    "percentile_eps": check_percentile_eps,
    "min_samples": check_min_samples,
    "cluster_sizes": check_cluster_sizes,
    "cluster_mean_gradient": check_cluster_mean_gradient,
    "reference_kernel": check_reference_kernel,
    "softmax_weights": check_softmax_weights,
    "normalize_map": check_normalize,
    "pointing_game": check_pointing_game,
    "cfcam": check_cfcam,
    "energy_in_mask": check_energy_in_mask,
}
"""Every check by the name of the function the learner writes."""
