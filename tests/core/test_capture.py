"""Capture: batch equals single, hooks always removed, no parameter gradients, modes restored, errors."""

import pytest
import torch
from torch import nn

from cfcam import CFCAM, ActivationsAndGradients, GradCAM, resolve_layer


def n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
               for m in model.modules())


def test_batch_equals_single(tiny_resnet):
    torch.manual_seed(1)
    x = torch.randn(3, 3, 96, 96)
    with ActivationsAndGradients(tiny_resnet, "layer3") as grab:
        batch = grab(x, targets=[0, 1, 0])
        for i in range(3):
            one = grab(x[i:i + 1], targets=[int(batch.targets[i])])
            torch.testing.assert_close(one.activations[0], batch.activations[i], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(one.gradients[0], batch.gradients[i], rtol=1e-4, atol=1e-7)


def test_gradient_matches_plain_autograd(tiny_resnet):
    """The captured gradient is d logit[target] / d activations, as a plain full backward pass gives it."""
    torch.manual_seed(2)
    x = torch.randn(1, 3, 64, 64)
    store = {}

    def keep(module, inputs, output):
        output.retain_grad()
        store["a"] = output

    h = tiny_resnet.layer4.register_forward_hook(keep)
    try:
        tiny_resnet(x)[0, 1].backward()
    finally:
        h.remove()
        tiny_resnet.zero_grad(set_to_none=True)
    cap = ActivationsAndGradients(tiny_resnet, "layer4")(x, targets=1)
    torch.testing.assert_close(cap.gradients[0], store["a"].grad[0], rtol=1e-4, atol=1e-8)


def test_top_class_is_default(tiny_resnet):
    x = torch.randn(2, 3, 64, 64)
    cap = ActivationsAndGradients(tiny_resnet, "layer4")(x)
    assert torch.equal(cap.targets, cap.logits.argmax(1))


def test_hooks_removed_after_success_and_exception(tiny_resnet):
    before = n_hooks(tiny_resnet)
    with GradCAM(tiny_resnet, "layer4") as cam:
        assert n_hooks(tiny_resnet) == before + 1
        cam(torch.randn(1, 3, 64, 64))
    assert n_hooks(tiny_resnet) == before
    with pytest.raises(RuntimeError, match="boom"):
        with CFCAM(tiny_resnet, "layer4"):
            raise RuntimeError("boom")
    assert n_hooks(tiny_resnet) == before
    with pytest.raises(ValueError, match="out of range"):
        with CFCAM(tiny_resnet, "layer4") as cam:
            cam(torch.randn(1, 3, 64, 64), targets=7)
    assert n_hooks(tiny_resnet) == before
    # used without `with`: the call registers and removes its own hook
    GradCAM(tiny_resnet, "layer4")(torch.randn(1, 3, 64, 64))
    assert n_hooks(tiny_resnet) == before


def test_no_parameter_gradients_and_modes_restored(tiny_resnet):
    tiny_resnet.train()
    tiny_resnet.layer1.eval()
    try:
        with CFCAM(tiny_resnet, "layer4", preset="reference") as cam:
            cam(torch.randn(2, 3, 64, 64))
        assert all(p.grad is None for p in tiny_resnet.parameters())
        assert tiny_resnet.training and not tiny_resnet.layer1.training and tiny_resnet.layer2.training
        assert torch.is_grad_enabled()
    finally:
        tiny_resnet.eval()


def test_grad_mode_restored_when_called_under_no_grad(tiny_resnet):
    with torch.no_grad():
        cap = ActivationsAndGradients(tiny_resnet, "layer4")(torch.randn(1, 3, 64, 64))
        assert not torch.is_grad_enabled()
    assert cap.gradients.abs().sum() > 0


class InplaceNet(nn.Module):
    """A conv whose output is modified in place right after the hooked layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean(dim=(2, 3)))


def test_inplace_relu_after_layer_is_fine():
    torch.manual_seed(0)
    net = InplaceNet().eval()
    x = torch.randn(2, 3, 8, 8)
    cap = ActivationsAndGradients(net, "conv")(x, targets=[2, 0])
    pre = net.conv(x).detach()
    torch.testing.assert_close(cap.activations, pre)  # activations captured before the in-place ReLU
    expected = (pre > 0).float() * net.head.weight[cap.targets][:, :, None, None] / 64
    torch.testing.assert_close(cap.gradients, expected)


def test_layer_name_errors_list_close_matches(tiny_resnet):
    with pytest.raises(ValueError, match=r"no module 'layer5'.*did you mean 'layer4'"):
        resolve_layer(tiny_resnet, "layer5")
    with pytest.raises(ValueError, match="not part of the model"):
        resolve_layer(tiny_resnet, nn.Conv2d(1, 1, 1))
    assert resolve_layer(tiny_resnet, "layer4[-1]") == ("layer4.1", tiny_resnet.layer4[1])
    assert resolve_layer(tiny_resnet, "layer4.1.conv2")[1] is tiny_resnet.layer4[1].conv2


def test_unused_or_twice_used_layer_and_bad_targets(tiny_resnet):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.unused = nn.Conv2d(3, 3, 1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.conv(self.conv(x)).mean(dim=(2, 3)))

    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match="ran 2 times"):
        ActivationsAndGradients(Twice(), "conv")(x)
    with pytest.raises(ValueError, match="was not used"):
        ActivationsAndGradients(Twice(), "unused")(x)
    with pytest.raises(ValueError, match="one class per image"):
        ActivationsAndGradients(tiny_resnet, "layer4")(torch.randn(2, 3, 32, 32), targets=[0, 1, 0])
    with pytest.raises(ValueError, match=r"inputs must be a \(N, 3, H, W\)"):
        ActivationsAndGradients(tiny_resnet, "layer4")(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"'fc' gives shape \(1, 2\); CAM methods need \(N, C, h, w\)"):
        ActivationsAndGradients(tiny_resnet, "fc")(torch.randn(1, 3, 32, 32))


def test_several_explainers_on_one_layer_do_not_interfere(tiny_resnet):
    x = torch.randn(2, 3, 64, 64)
    alone = GradCAM(tiny_resnet, "layer4")(x)
    with GradCAM(tiny_resnet, "layer4") as g1, CFCAM(tiny_resnet, "layer4") as c1, GradCAM(tiny_resnet, "layer4") as g2:
        torch.testing.assert_close(torch.from_numpy(g1(x)), torch.from_numpy(alone))
        c1(x)
        torch.testing.assert_close(torch.from_numpy(g2(x)), torch.from_numpy(alone))
        tiny_resnet(x)  # a plain call while hooks are registered is untouched and keeps nothing
        assert g1._grab._outputs == [] and c1._grab._outputs == []


def test_capture_while_grad_mode_is_on_and_model_requires_grad(tiny_resnet):
    x = torch.randn(1, 3, 64, 64)
    with torch.enable_grad():
        cap = ActivationsAndGradients(tiny_resnet, "layer3")(x, targets=0)
    ref = ActivationsAndGradients(tiny_resnet, "layer3")(x, targets=0)
    torch.testing.assert_close(cap.gradients, ref.gradients)
    assert all(p.grad is None for p in tiny_resnet.parameters())
