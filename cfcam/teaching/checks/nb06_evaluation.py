"""Notebook 06's checks (evaluation): the deletion AUC and the randomisation check.

- :func:`check_deletion_auc` ``deletion_auc(predict, image, cam, steps=11) -> float``
- :func:`check_randomisation_check` ``randomisation_check(explain, model, images, seed=0) -> float``

Each compares the learner's function with the package's own metric code (:mod:`cfcam.evaluation`) on small
constructed inputs (:class:`TinyNet` and two explanations of it, one that reads its classifier layer and one
that does not), through :func:`.framework.verify`.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch import nn

from ...evaluation.faithfulness import auc, step_counts
from ...evaluation.sanity import randomised
from ...evaluation.similarity import pearson, spearman
from .framework import Case, Mistake, Wrong, to_scalar, verify

__all__ = ["TinyNet", "check_deletion_auc", "check_randomisation_check", "class_blind_maps", "input_gradient_maps",
           "reference_deletion_auc", "reference_randomisation_check"]


# -- exercise 1: deletion AUC -----------------------------------------------------------------------------

def _deletion(predict, image: torch.Tensor, cam, steps: int = 11, order: str = "decreasing", channels: str = "all",
              counts: str = "reference", area: str = "trapezoid", fill: str = "zero", start: int = 0,
              stop: int = 0) -> float:
    """The deletion AUC, or (through the options) one of its typical mistakes."""
    c, h, w = image.shape
    cam = np.asarray(cam.detach().cpu() if isinstance(cam, torch.Tensor) else cam, dtype=np.float64)
    if order == "transposed":
        cam = cam.T.reshape(h, w)
    ranking = np.argsort(cam.ravel() if order == "increasing" else -cam.ravel(), kind="stable")
    schedule = {"reference": step_counts(h * w, steps),
                "no last step": np.arange(steps) * (h * w // (steps - 1)),
                "rounded": np.round(np.linspace(0, h * w, steps)).astype(int)}[counts]
    value = image.mean().expand(c, 1, 1) if fill == "mean" else torch.zeros(c, 1, 1, dtype=image.dtype)
    probs = []
    for count in schedule[start:steps - stop]:
        deleted = torch.zeros(h * w, dtype=torch.bool)
        deleted[torch.from_numpy(ranking[:count].copy())] = True
        deleted = deleted.reshape(1, h, w).expand(c, h, w).clone()
        if channels == "first":
            deleted[1:] = False
        probs.append(float(predict(torch.where(deleted, value.expand(c, h, w), image))))
    probs = np.array(probs)
    if area == "mean":
        return float(probs.mean())
    dx = 1.0 if area == "unit steps" else 1 / (steps - 1)
    return float(np.sum((probs[1:] + probs[:-1]) / 2) * dx)


def reference_deletion_auc(predict, image: torch.Tensor, cam, steps: int = 11) -> float:
    """The package's answer: pixels by decreasing ``cam`` set to 0 on all channels, ``steps`` points from
    none to all deleted (:func:`cfcam.evaluation.faithfulness.step_counts`), trapezoid area over 0..1."""
    c, h, w = image.shape
    order = np.argsort(-np.asarray(cam, dtype=np.float64).ravel(), kind="stable")
    probs = []
    for count in step_counts(h * w, steps):
        keep = torch.ones(h * w, dtype=image.dtype)
        keep[torch.from_numpy(order[:count].copy())] = 0
        probs.append(float(predict(image * keep.reshape(1, h, w))))
    return float(auc(np.array(probs)[None])[0])


def _box_predictor(box=(slice(1, 4), slice(5, 9)), channel_weights=(0.5, 0.3, 0.2)):
    """p(class) = sigmoid(4 * box evidence + whole-image evidence - 5), each a channel-weighted mean: it reads
    every channel (deleting on one channel only lowers it less) and every pixel (the last pixels deleted
    count too); the box is off the diagonal, so a transposed ranking misses it."""
    weights = torch.tensor(channel_weights, dtype=torch.float64)

    def predict(image: torch.Tensor) -> float:
        image = image.double()
        box_mean = image[:, box[0], box[1]].mean(dim=(1, 2))
        return float(torch.sigmoid(4 * (weights * box_mean).sum() + (weights * image.mean(dim=(1, 2))).sum() - 5))
    return predict


def _deletion_mistake(hint: str, **options) -> Mistake:
    return Mistake(hint, lambda predict, image, cam, steps=11: _deletion(predict, image, cam, steps, **options))


DELETION_MISTAKES = [
    _deletion_mistake("delete the pixels with the *largest* map values first (decreasing order).", order="increasing"),
    _deletion_mistake("you deleted the pixels on the first channel only: set each deleted pixel to 0 on *every* "
                      "channel.", channels="first"),
    _deletion_mistake("your ranking looks transposed: rows and columns swapped. Flatten the map in the same (row, "
                      "column) order as the image.", order="transposed"),
    _deletion_mistake("the last step must delete *all* the pixels, even when H*W is not a multiple of steps - 1.",
                      counts="no last step"),
    _deletion_mistake("step k deletes k times the whole number H*W // (steps - 1) of pixels (the last step all of "
                      "them), not a rounded even share.", counts="rounded"),
    _deletion_mistake("the area under the curve is the trapezoid area, not the mean of the probabilities.",
                      area="mean"),
    _deletion_mistake("the x axis runs from 0 to 1 (the fraction deleted): each step is 1 / (steps - 1) wide, not "
                      "1.", area="unit steps"),
    _deletion_mistake("deleted pixels become 0, not the image's mean value.", fill="mean"),
    _deletion_mistake("the curve starts with nothing deleted (step 0): record the prediction on the untouched "
                      "image first.", start=1),
    _deletion_mistake("the curve has `steps` points, from nothing deleted to everything deleted: the last point "
                      "(every pixel deleted) is missing.", stop=1),
    Mistake("use the `steps` argument, not a fixed 11.",
            lambda predict, image, cam, steps=11: _deletion(predict, image, cam, 11)),
]


def check_deletion_auc(fn) -> bool:
    """``fn(predict, image, cam, steps=11)``: the area under the deletion curve."""
    gen = torch.Generator().manual_seed(0)
    image = 1 + torch.rand(3, 8, 10, generator=gen)
    on_box = np.random.default_rng(1).random((8, 10))
    on_box[1:4, 5:9] += 2  # the box first
    off_box = np.random.default_rng(2).random((8, 10))
    off_box[1:4, 5:9] -= 2  # the box last
    square = 1 + torch.rand(3, 10, 10, generator=gen)
    on_square = np.random.default_rng(3).random((10, 10))
    on_square[1:4, 5:9] += 2
    predict = _box_predictor()
    cases = [
        Case("an 8 x 10 image, a map that ranks the evidence (rows 1-3, columns 5-8) first", (predict, image, on_box),
             None),
        Case("the same image, a map that ranks the evidence last", (predict, image, off_box), None),
        Case("the first map with steps=5", (predict, image, on_box), None, {"steps": 5}),
        Case("a 10 x 10 image, the evidence off the diagonal ranked first, steps=7", (predict, square, on_square),
             None, {"steps": 7}),
    ]
    for case in cases:
        case.expected = reference_deletion_auc(*case.args, **case.kwargs)

    def compare(out, case):
        got = to_scalar(out, "the area under the curve")
        if not abs(got - case.expected) <= 1e-6:  # NaN is wrong too
            raise Wrong(f"it returned {got:.6g}, expected {case.expected:.6g}")

    return verify(fn, "the deletion AUC", cases, compare,
                  "rank the pixels from the largest map value down; at each of the `steps` steps delete (set to 0 on "
                  "every channel) the next share of them, all of them at the last step, and record the prediction; "
                  "the answer is the trapezoid area under those probabilities, with x running from 0 to 1.",
                  "a faithful map's top pixels make the confidence fall fast: a small area.",
                  DELETION_MISTAKES, same=lambda got, model: _same_number(got, model, 1e-6))


def _same_number(got, model, tol: float) -> bool:
    try:
        return model is not None and abs(to_scalar(got, "a number") - float(model)) <= tol
    except Exception:
        return False


# -- exercise 2: the randomisation check ------------------------------------------------------------------

def reference_randomisation_check(explain, model: nn.Module, images: torch.Tensor, seed: int = 0) -> float:
    """The package's answer: the mean Spearman correlation between each image's map from ``model`` and from a
    copy whose classifier layer ``fc`` is re-initialised after ``torch.manual_seed(seed)``."""
    before = np.asarray(explain(model, images))
    after = np.asarray(explain(randomised(model, ["fc"], seed), images))
    return float(np.mean([spearman(a, b) for a, b in zip(before, after)]))


class TinyNet(nn.Module):
    """A small CNN whose classifier layer is ``fc`` (so re-initialising it changes the gradients)."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # fixed weights, the learner's random state untouched
            torch.manual_seed(5)
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                          nn.ReLU())
            self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def input_gradient_maps(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """|d logit_1 / d input| summed over channels: a map that depends on every layer, ``fc`` included."""
    x = images.clone().requires_grad_(True)
    model(x)[:, 1].sum().backward()
    return x.grad.abs().sum(dim=1).numpy()


def class_blind_maps(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """The mean activation of the features: does not depend on ``fc`` at all."""
    with torch.no_grad():
        return model.features(images).mean(dim=1).numpy()


def _randomisation(explain, model, images, seed=0, layers=("fc",), correlation="spearman", pooled=False,
                   average=np.mean) -> float:
    """The randomisation check, or (through the options) one of its typical mistakes."""
    before = np.asarray(explain(model, images))
    if layers == "all":  # one seed, then every layer in turn, as a learner's loop over the modules does
        clone = copy.deepcopy(model)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for module in clone.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    else:
        clone = randomised(model, list(layers), seed)
    after = np.asarray(explain(clone, images))
    corr = spearman if correlation == "spearman" else pearson
    if pooled:
        return float(corr(before, after))
    return float(average([corr(a, b) for a, b in zip(before, after)]))


def _randomisation_mistake(hint: str, **options) -> Mistake:
    return Mistake(hint, lambda explain, model, images, seed=0: _randomisation(explain, model, images, seed,
                                                                                **options))


RANDOMISATION_MISTAKES = [
    Mistake("the maps did not change: explain the randomised copy the second time, not the original model.",
            lambda explain, model, images, seed=0: 1.0),
    _randomisation_mistake("this is Pearson's correlation of the values; the check uses Spearman's correlation of "
                           "their ranks.", correlation="pearson"),
    _randomisation_mistake("you re-initialised every layer; re-initialise only the classifier layer `fc`.",
                           layers="all"),
    _randomisation_mistake("compare the two maps of each image and average those correlations over the images; do "
                           "not pool every image's pixels into one correlation.", pooled=True),
    _randomisation_mistake("average the per-image correlations (their mean), not their median.", average=np.median),
    Mistake("use the `seed` argument: seed the generator with it right before re-initialising.",
            lambda explain, model, images, seed=0: _randomisation(explain, model, images, 0)),
]


@functools.lru_cache(maxsize=1)
def _randomisation_answers() -> tuple[float, ...]:
    """The package's answers for the check's three cases (fixed weights and images), computed once: each call
    of the check gets a fresh model, since a wrong answer may change it."""
    model = TinyNet().eval()
    images = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    return tuple(reference_randomisation_check(explain, model, images, seed)
                 for explain, seed in ((input_gradient_maps, 0), (class_blind_maps, 0), (input_gradient_maps, 7)))


def check_randomisation_check(fn) -> bool:
    """``fn(explain, model, images, seed=0)``: mean Spearman between maps before and after re-initialising ``fc``."""
    model = TinyNet().eval()
    images = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    cases = [
        Case("an explanation that reads the classifier layer", (input_gradient_maps, model, images), None),
        Case("an explanation that ignores the classifier layer", (class_blind_maps, model, images), None),
        Case("the first case with seed=7", (input_gradient_maps, model, images), None, {"seed": 7}),
    ]
    for case, expected in zip(cases, _randomisation_answers()):
        case.expected = expected
    original = {k: v.clone() for k, v in model.state_dict().items()}

    def compare(out, case):
        if any(not torch.equal(v, original[k]) for k, v in model.state_dict().items()):
            raise Wrong("it changed the model it was given", "randomise a copy of the model (a deep copy), never "
                         "the model itself: the caller still needs it.")
        got = to_scalar(out, "the mean Spearman correlation")
        if not abs(got - case.expected) <= 1e-6:  # NaN is wrong too
            hint = None
            with torch.random.fork_rng():
                torch.manual_seed(12345)  # another global state: an unseeded re-initialisation gives another answer
                again = _same_number(fn(*case.args, **case.kwargs), got, 1e-9)
            if not again:
                hint = ("the answer changes from run to run: seed PyTorch's random generator with `seed` right "
                        "before re-initialising the copy's `fc` layer.")
            raise Wrong(f"it returned {got:.6g}, expected {case.expected:.6g}", hint)

    return verify(fn, "the randomisation check", cases, compare,
                  "explain the model; make a copy, seed PyTorch's generator with `seed`, re-initialise only the "
                  "copy's classifier layer `fc` and explain the copy; then average, over the images, the Spearman "
                  "correlation between each image's two maps (flattened).",
                  "a map that explains the model must change when the model's classifier is destroyed: a "
                  "Spearman correlation near 1 fails the sanity check.",
                  RANDOMISATION_MISTAKES, same=lambda got, model: _same_number(got, model, 1e-6))
