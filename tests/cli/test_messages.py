"""Library errors name the parameter and what was expected (issue 11, item 9)."""

import numpy as np
import pytest
import torch
from torch import nn

from cfcam import ActivationsAndGradients, cluster_filter_cam
from cfcam.core.capture import as_targets


def test_inference_mode_is_named(tiny_resnet):
    with torch.inference_mode():
        x = torch.randn(1, 3, 64, 64)
        with pytest.raises(RuntimeError, match=r"inference_mode\(\).*outside"):
            ActivationsAndGradients(tiny_resnet, "layer4")(x)
    cap = ActivationsAndGradients(tiny_resnet, "layer4")(x)  # a tensor made in inference mode is fine outside it
    assert cap.gradients.shape == cap.activations.shape


@pytest.mark.parametrize("targets,words", [
    (1.9, ["int class indices", "1.9", "not rounded"]),
    ([0.0, 1.0], ["int class indices", "float"]),
    (np.array([1.5]), ["int class indices"]),
    ("lesion", ["string 'lesion'", "classes.index"]),
    ([True], ["int class indices"]),
    ({"a": 1}, ["targets must be class indices"]),
])
def test_targets_that_are_not_class_indices_are_refused(targets, words):
    with pytest.raises(ValueError) as info:
        as_targets(targets, torch.zeros(1, 3))
    for w in words:
        assert w in str(info.value), str(info.value)


def test_integer_targets_of_every_kind_are_accepted():
    logits = torch.zeros(2, 3)
    for targets in (2, np.int64(2), [2, 2], np.array([2, 2]), torch.tensor([2, 2]),
                    torch.tensor([2, 2], dtype=torch.uint8)):
        assert as_targets(targets, logits).tolist() == [2, 2]


def test_empty_batch_is_named(tiny_resnet):
    with pytest.raises(ValueError, match="empty batch"):
        ActivationsAndGradients(tiny_resnet, "layer4")(torch.zeros(0, 3, 64, 64))


class Shrinking(nn.Module):
    """A network whose pooling needs at least 32 px, like most ImageNet models."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(32))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_inputs_too_small_for_the_model_are_named():
    grab = ActivationsAndGradients(Shrinking(), "features.0")
    with pytest.raises(ValueError, match=r"inputs of 16x16 pixels are too small.*at least 32x32"):
        grab(torch.randn(1, 3, 16, 16))
    assert grab(torch.randn(1, 3, 32, 32)).activations.shape == (1, 4, 32, 32)


def test_tiny_inputs_still_work_for_a_model_that_takes_them(tiny_resnet):
    cap = ActivationsAndGradients(tiny_resnet, "layer2")(torch.randn(1, 3, 16, 16))  # layer2 is 2x2 here
    assert cap.activations.shape[0] == 1  # no blanket refusal under 32 px


def test_huge_activations_are_refused_not_turned_into_nan():
    rng = np.random.default_rng(0)
    a, g = rng.random((32, 7, 7)), rng.standard_normal((32, 7, 7))
    reference = cluster_filter_cam(a, g, "reference")
    with pytest.raises(ValueError, match=r"activations holds values up to 2e\+19.*overflow.*divide activations"):
        cluster_filter_cam(a * 1e19 + 1e19, g, "reference")
    scaled = cluster_filter_cam(a * 1e17, g, "reference")  # large but safe: the same clusters
    assert np.isfinite(scaled.eps) and (scaled.labels == reference.labels).all()
