"""Notebook 06's checks (evaluation): the deletion AUC and the randomisation check.

- :func:`check_deletion_auc` ``deletion_auc(predict, image, cam, steps=11) -> float``
- :func:`check_randomisation_check` ``randomisation_check(explain, model, images, seed=0) -> float``

Each compares the learner's function with the package's own metric code (:mod:`cfcam.evaluation`) on small
constructed inputs (:class:`TinyNet` and two explanations of it, one that reads its classifier layer and one
that does not), through :func:`.framework.verify`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...evaluation.faithfulness import auc, step_counts
from ...evaluation.sanity import randomised
from ...evaluation.similarity import spearman
from .framework import Case, Wrong, matches, to_scalar, verify

__all__ = ["TinyNet", "check_deletion_auc", "check_randomisation_check", "class_blind_maps", "input_gradient_maps",
           "reference_deletion_auc", "reference_randomisation_check"]


# -- exercise 1: deletion AUC -----------------------------------------------------------------------------

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


def _box_predictor(box=(slice(2, 6), slice(2, 6))):
    """p(class) = sigmoid of 4 * the mean of channel 0 inside a box: deleting the box lowers it."""
    def predict(image: torch.Tensor) -> float:
        return float(torch.sigmoid(4 * image[0][box].mean()))
    return predict


def check_deletion_auc(fn) -> bool:
    """``fn(predict, image, cam, steps=11)``: the area under the deletion curve."""
    gen = torch.Generator().manual_seed(0)
    image = 1 + torch.rand(3, 8, 8, generator=gen)
    on_box = np.random.default_rng(1).random((8, 8))
    on_box[2:6, 2:6] += 2  # the box first
    off_box = np.random.default_rng(2).random((8, 8))
    off_box[2:6, 2:6] -= 2  # the box last
    predict = _box_predictor()
    cases = [
        Case("a map that ranks the evidence first", (predict, image, on_box), None),
        Case("a map that ranks the evidence last", (predict, image, off_box), None),
        Case("the same map with steps=5", (predict, image, on_box), None, {"steps": 5}),
    ]
    for case in cases:
        case.expected = reference_deletion_auc(*case.args, **case.kwargs)
    ascending = reference_deletion_auc(predict, image, -on_box)

    def compare(out, case):
        got = to_scalar(out, "the area under the curve")
        if abs(got - case.expected) <= 1e-6:
            return
        hint = None
        if case.args[2] is on_box and matches(np.array(got), ascending):
            hint = "delete the pixels with the *largest* map values first (sort in decreasing order)."
        elif case.kwargs.get("steps"):
            hint = "use `steps` points: step k deletes k * (H*W // (steps - 1)) pixels, the last step all of them."
        raise Wrong(f"it returned {got:.6g}, expected {case.expected:.6g}", hint)

    return verify(fn, "the deletion AUC", cases, compare,
                   "sort the pixels by decreasing map value; for k = 0 .. steps-1 set the first k * (H*W // "
                   "(steps - 1)) of them (all of them at the last step) to 0 on every channel, record "
                   "predict(image); then take the trapezoid area with x from 0 to 1 (np.trapezoid(probs, dx=1 / "
                   "(steps - 1))).",
                   "a faithful map's top pixels make the confidence fall fast: a small area.")


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


def check_randomisation_check(fn) -> bool:
    """``fn(explain, model, images, seed=0)``: mean Spearman between maps before and after re-initialising ``fc``."""
    model = TinyNet().eval()
    images = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    cases = [
        Case("an explanation that reads the classifier layer", (input_gradient_maps, model, images), None),
        Case("an explanation that ignores the classifier layer", (class_blind_maps, model, images), None),
        Case("the first case with seed=7", (input_gradient_maps, model, images), None, {"seed": 7}),
    ]
    for case in cases:
        case.expected = reference_randomisation_check(*case.args, **case.kwargs)
    original = {k: v.clone() for k, v in model.state_dict().items()}

    def compare(out, case):
        if any(not torch.equal(v, original[k]) for k, v in model.state_dict().items()):
            raise Wrong("it changed the model it was given", "randomise a copy: copy.deepcopy(model), then "
                         "re-initialise the copy's fc layer.")
        got = to_scalar(out, "the mean Spearman correlation")
        if abs(got - case.expected) > 1e-6:
            hint = None
            if abs(got - 1.0) < 1e-9 and case.expected < 0.999:
                hint = "the maps did not change: did you explain the randomised copy the second time?"
            raise Wrong(f"it returned {got:.6g}, expected {case.expected:.6g}", hint)

    return verify(fn, "the randomisation check", cases, compare,
                   "maps = explain(model, images); copy = copy.deepcopy(model); torch.manual_seed(seed); "
                   "copy.fc.reset_parameters(); maps2 = explain(copy, images); then the mean over images of "
                   "scipy.stats.spearmanr(maps[i].ravel(), maps2[i].ravel()).statistic.",
                   "a map that explains the model must change when the model's classifier is destroyed: a "
                   "Spearman correlation near 1 fails the sanity check.")
