"""Any target, any output: pytorch-grad-cam's callable targets, output selectors for dict/tuple/object outputs,
segmentation on a torchvision FCN equal to pytorch-grad-cam, and one explainer called from several threads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import (
    BinaryClassifierOutputTarget,
    ClassifierOutputTarget,
    SemanticSegmentationTarget,
)
from torch import nn

import cfcam
from cfcam.integrations.pytorch_grad_cam import CFCAM as PGCFCAM


class Small(nn.Module):
    """A tiny classifier whose output is a tensor, a dict, a tuple or an object, as ``kind`` says."""

    def __init__(self, kind="tensor", classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.kind = kind
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        logits = self.head(torch.relu(self.conv(x)).mean((2, 3)))
        if self.kind == "dict":
            return {"logits": logits, "features": None}
        if self.kind == "tuple":
            return logits, logits.detach() * 0
        if self.kind == "object":
            return SimpleNamespace(logits=logits)
        return logits


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def test_callable_targets_equal_class_indices():
    model = Small()
    by_index = cfcam.GradCAM(model, "conv").explain(X, [1, 2])
    by_callable = cfcam.GradCAM(model, "conv").explain(X, [ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
    np.testing.assert_allclose(by_callable.maps, by_index.maps, atol=1e-6)
    assert by_callable.targets == [1, 2]  # the callables' categories
    one_for_all = cfcam.GradCAM(model, "conv").explain(X, ClassifierOutputTarget(2))
    assert one_for_all.targets == [2, 2]


def test_a_callable_without_category_records_the_top_class():
    model = Small()
    done = cfcam.GradCAM(model, "conv").explain(X, lambda out: out[0] - out[1])
    assert done.targets == done.capture.logits.argmax(1).tolist()
    assert done.capture.score_targets is not None and len(done.capture.score_targets) == 2


def test_binary_classifier_target():
    model = Small(classes=1)
    maps = cfcam.GradCAM(model, "conv")(X, [BinaryClassifierOutputTarget(1), BinaryClassifierOutputTarget(0)])
    assert maps.shape == (2, 16, 16) and np.isfinite(maps).all()


@pytest.mark.parametrize("kind, output", [("dict", "logits"), ("tuple", 0), ("object", "logits"),
                                          ("dict", lambda out: out["logits"])])
def test_output_selectors(kind, output):
    expected = cfcam.GradCAM(Small(), "conv")(X, [0, 1])
    got = cfcam.CFCAM(Small(kind), "conv", output=output, preset="reference")(X, [0, 1])
    assert got.shape == expected.shape
    reference = cfcam.CFCAM(Small(), "conv", preset="reference")(X, [0, 1])
    np.testing.assert_allclose(got, reference, atol=1e-6)


def test_an_unselected_dict_output_shows_the_fix():
    with pytest.raises(ValueError) as err:
        cfcam.GradCAM(Small("dict"), "conv")(X)
    message = str(err.value)
    assert "a dict with keys ['logits', 'features']" in message and "output='logits'" in message
    assert "return self.model(x)['logits']" in message  # the wrapper, for code that takes no selector
    with pytest.raises(ValueError, match="has no such key"):
        cfcam.GradCAM(Small("dict"), "conv", output="out")(X)
    with pytest.raises(ValueError, match="output must be None, a key"):
        cfcam.GradCAM(Small("dict"), "conv", output=1.5)


def test_bad_targets_say_what_is_wrong():
    model = Small()
    with pytest.raises(ValueError, match="mixes callables and class indices"):
        cfcam.GradCAM(model, "conv")(X, [ClassifierOutputTarget(1), 0])
    with pytest.raises(ValueError, match="one callable per image: got 1 for a batch of 2"):
        cfcam.GradCAM(model, "conv")(X, [ClassifierOutputTarget(1)])
    with pytest.raises(ValueError, match="must return one floating-point score per image"):
        cfcam.GradCAM(model, "conv")(X, lambda out: out)
    with pytest.raises(ValueError, match="do not depend on target_layer"):
        cfcam.GradCAM(model, "conv")(X, lambda out: torch.tensor(1.0))


# -- segmentation: torchvision's FCN against pytorch-grad-cam ----------------------------------------------

class OutputOf(nn.Module):
    """pytorch-grad-cam's documented wrapper: the model's ``["out"]`` as one tensor."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


@pytest.fixture(scope="module")
def fcn():
    torch.manual_seed(0)
    model = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=3,
                                                         aux_loss=True).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = model(x)["out"].argmax(1)
    targets = []
    for i, category in enumerate((1, 2)):
        mask = (labels[i] == category).float().numpy()
        mask = mask if mask.any() else np.ones_like(mask)
        targets.append(SemanticSegmentationTarget(category, mask))
    return model, x, targets


def test_class_targets_on_a_segmentation_output_point_to_callables(fcn):
    model, x, _ = fcn
    with pytest.raises(ValueError, match="SemanticSegmentationTarget"):
        cfcam.GradCAM(model, "backbone.layer4", output="out")(x[:1], 1)


def test_segmentation_gradcam_equals_pytorch_grad_cam(fcn):
    model, x, targets = fcn
    done = cfcam.GradCAM(model, "backbone.layer4", output="out").explain(x, targets)
    assert done.targets == [1, 2] and done.capture.logits.shape == (2, 3, 64, 64)
    layer = model.backbone.layer4
    with ReferenceGradCAM(OutputOf(model), [layer], reshape_transform=lambda t: t.clone()) as ref:
        theirs = ref(x, targets=targets)
    for i in range(len(x)):
        assert done.maps[i].max() > 0
        r = np.corrcoef(done.maps[i].ravel(), theirs[i].ravel())[0, 1]
        assert r >= 0.999, f"image {i}: r = {r:.4f}"


def test_segmentation_cfcam_equals_the_integration(fcn):
    model, x, targets = fcn
    ours = cfcam.CFCAM(model, "backbone.layer4", output="out", preset="reference")(x, targets)
    with PGCFCAM(model=OutputOf(model), target_layers=[model.backbone.layer4], preset="reference") as cam:
        theirs = cam(input_tensor=x, targets=targets)
    assert ours.shape == theirs.shape == (2, 64, 64)
    assert np.abs(ours - theirs).max() < 1e-4


# -- threads ----------------------------------------------------------------------------------------------

def test_one_explainer_from_two_threads():
    model = Small()
    explainer = cfcam.GradCAM(model, "conv")
    expected = [explainer(X, [t, t]) for t in (0, 1)]
    got, errors = {}, []

    def work(t):
        try:
            for _ in range(5):
                got.setdefault(t, []).append(explainer(X, [t, t]))
        except Exception as exc:  # recorded: the test fails on it below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for t in (0, 1):
        for maps in got[t]:
            np.testing.assert_array_equal(maps, expected[t])


def test_two_explainers_on_one_model_from_two_threads():
    model = Small()
    a, b = cfcam.GradCAM(model, "conv"), cfcam.CFCAM(model, "conv", preset="reference")
    expected = (a(X, 0), b(X, 1))
    results, errors = [None, None], []

    def work(i, explainer, target):
        try:
            results[i] = [explainer(X, target) for _ in range(5)]
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(0, a, 0)), threading.Thread(target=work, args=(1, b, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i in (0, 1):
        for maps in results[i]:
            np.testing.assert_allclose(maps, expected[i], atol=1e-6)
