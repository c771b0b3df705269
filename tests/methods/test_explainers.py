"""Both explainers on a small torchvision model, and what the spec says about layer4 of a GAP+FC net."""

import numpy as np
import pytest
import torch

from cfcam import CFCAM, GradCAM, overlay, preprocess


@pytest.mark.parametrize("make", [lambda m: GradCAM(m, "layer4[-1]"),
                                  lambda m: CFCAM(m, "layer4[-1]"),
                                  lambda m: CFCAM(m, "layer3", preset="reference", filter="gaussian")])
def test_explainer_output(tiny_resnet, make):
    x = torch.randn(3, 3, 128, 160)
    with make(tiny_resnet) as cam:
        maps = cam(x)
    assert maps.shape == (3, 128, 160) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert len(cam.results) == 3
    np.testing.assert_allclose(cam.predictions.sum(1), 1, rtol=1e-5)


def test_gradient_is_spatially_constant_at_last_block_and_gradcam_equals_cam(tiny_resnet):
    """At layer4[-1] of a GAP+FC ResNet, G_k = W_fc[c, k] / (h*w): Grad-CAM is the original CAM."""
    x = torch.randn(1, 3, 224, 224)
    with GradCAM(tiny_resnet, "layer4[-1]") as cam:
        cam(x, targets=1)
    g = cam.capture.gradients[0]
    h, w = g.shape[-2:]
    expected = tiny_resnet.fc.weight[1].detach()[:, None, None].expand_as(g) / (h * w)
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-9)
    a = cam.capture.activations[0]
    original_cam = torch.relu(torch.einsum("chw,c->hw", a, tiny_resnet.fc.weight[1].detach()))
    torch.testing.assert_close(torch.as_tensor(cam.results[0].cam) * h * w, original_cam, rtol=1e-4, atol=1e-5)


def test_gradient_varies_in_space_at_layer3(tiny_resnet):
    with GradCAM(tiny_resnet, "layer3") as cam:
        cam(torch.randn(1, 3, 224, 224))
    g = cam.capture.gradients[0]
    assert float((g.amax((1, 2)) - g.amin((1, 2))).max()) > 0


def test_invalid_config_fails_before_touching_the_model(tiny_resnet):
    with pytest.raises(ValueError, match="eps_percentile"):
        CFCAM(tiny_resnet, "layer4", eps_percentile=200)
    assert all(len(m._forward_hooks) == 0 for m in tiny_resnet.modules())


def test_preprocess_and_overlay():
    img = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    x = preprocess(img)
    assert x.shape == (1, 3, 224, 224)
    # a white pixel maps to (1 - mean) / std
    white = preprocess(np.full((10, 10, 3), 255, np.uint8))[0, :, 0, 0]
    torch.testing.assert_close(white, (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    heat = np.zeros((7, 7), np.float32)
    out = overlay(heat, img)
    assert out.shape == img.shape and out.dtype == np.uint8
    # JET at 0 is dark blue (0, 0, 128): 0.4 * blue + 0.6 * image
    expected = np.uint8(np.array([0, 0, 128]) * 0.4 + img * 0.6)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="alpha"):
        overlay(heat, img, alpha=1.5)
