"""Any model, one pipeline: default layers and transforms per family, agreement with pytorch-grad-cam, and
refusals instead of maps from a misread layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import cfcam
from cfcam.core.layouts import channels_last_to_first, check_layout, vit_tokens_to_maps, vit_transform
from cfcam.methods.registry import METHODS, create
from cfcam.methods.targets import FAMILIES, choose_target, family_of
from cfcam.world.architecture import build_demo_model

pytest.importorskip  # noqa: B018  (pytorch-grad-cam is a dependency: imported below, never skipped)
from pytorch_grad_cam import GradCAM as ReferenceGradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

#: (torchvision name, input side): one or more of every family cfcam names, at small inputs to keep CI quick
#: (the maps are still 3x3 or larger; ViT-B/16 is built for 64 px, a 4x4 grid of patches).
ARCHITECTURES = [
    ("resnet18", 96), ("resnet50", 96), ("resnext50_32x4d", 96), ("wide_resnet50_2", 96), ("vgg16", 96),
    ("densenet121", 96), ("mobilenet_v2", 96), ("mobilenet_v3_small", 96), ("efficientnet_b0", 96),
    ("convnext_tiny", 96), ("regnet_y_400mf", 96), ("inception_v3", 160), ("googlenet", 96),
    ("alexnet", 127), ("squeezenet1_1", 96), ("shufflenet_v2_x0_5", 96), ("mnasnet0_5", 96),
    ("maxvit_t", 224), ("vit_b_16", 64), ("swin_t", 96), ("swin_v2_t", 96), ("demo", 96),
]
TARGETS = [1, 0]


def build(name: str, size: int = 224) -> nn.Module:
    """A seeded random-weight model; zero-initialised linear layers (ViT's head) get small random weights, so
    that gradients are not all zero."""
    torch.manual_seed(0)
    if name == "demo":
        model = build_demo_model()
    else:
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
        if name.startswith("vit_"):
            kwargs["image_size"] = size
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.Linear) and not module.weight.any():
            nn.init.normal_(module.weight, std=0.02)
    return model.eval()


@pytest.fixture(scope="module", params=ARCHITECTURES, ids=[a for a, _ in ARCHITECTURES])
def arch(request):
    name, size = request.param
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    return name, build(name, size), x


@pytest.mark.slow
def test_gradcam_agrees_with_pytorch_grad_cam(arch):
    name, model, x = arch
    with torch.no_grad():
        targets = [int(t) for t in model(x).argmax(1)]  # explicit targets for both tools: the top classes
    with cfcam.GradCAM(model) as ours:
        maps = ours(x, targets)
    target = ours.target
    assert target.automatic and target.family is not None, name
    layer = cfcam.resolve_layer(model, target.layer)[1]
    # pytorch-grad-cam keeps the layer's output itself (on the CPU, .cpu().detach() shares its storage), so an
    # in-place op after the layer (DenseNet's F.relu(features, inplace=True)) changes what it keeps; cfcam
    # keeps a copy. Give the reference a copy too, through its own reshape_transform hook.
    base = ours._grab.reshape_transform or (lambda t: t)  # 'vit' bound to the model's grid and class token
    with ReferenceGradCAM(model, [layer], reshape_transform=lambda t: base(t).clone()) as ref:
        theirs = ref(x, targets=[ClassifierOutputTarget(t) for t in targets])
    informative = 0
    for i in range(len(x)):
        if maps[i].max() == 0:  # ReLU of a sum that is negative everywhere: both must say so
            assert theirs[i].max() < 1e-6, f"{name} image {i}: cfcam's map is all zero, pytorch-grad-cam's is not"
            continue
        informative += 1
        r = np.corrcoef(maps[i].ravel(), theirs[i].ravel())[0, 1]
        assert r >= 0.999, f"{name} image {i}: r = {r:.4f} against pytorch-grad-cam"
    assert informative, f"{name}: every map is all zero, so the comparison shows nothing"


def _per_channel(method: str) -> bool:
    """Score-CAM and Ablation-CAM run one forward pass per channel: minutes per architecture on a CPU."""
    from cfcam.methods.baselines import LibraryCAM

    return issubclass(METHODS[method].cls, LibraryCAM)


FAST_METHODS = [m for m in METHODS if not _per_channel(m)]
PER_CHANNEL_METHODS = [m for m in METHODS if _per_channel(m)]
#: one architecture per layout kind: channels-first (CNN), channels-last (Swin), tokens (ViT)
EACH_LAYOUT = ["demo", "swin_t", "vit_b_16"]


def _check_runs(method, model, x):
    with create(method, model) as explainer:
        maps = explainer(x, TARGETS[:len(x)])
    assert maps.shape == (len(x), *x.shape[-2:]) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    for result in explainer.results:
        assert isinstance(result.notes, tuple) and result.cam.ndim == 2
        assert result.fallback in (None, "gradcam", "zero")


@pytest.mark.slow
@pytest.mark.parametrize("method", FAST_METHODS)
def test_every_registered_method_runs_on_every_supported_architecture(arch, method):
    name, model, x = arch
    _check_runs(method, model, x)


@pytest.mark.slow
@pytest.mark.parametrize("method", PER_CHANNEL_METHODS)
@pytest.mark.parametrize("name", EACH_LAYOUT)
def test_per_channel_methods_run_on_every_layout(name, method):
    """The per-channel methods on one architecture of each layout (every one would take CI most of an hour).
    pytorch-grad-cam's Ablation-CAM ablates channels-first layers only: on the others cfcam says so."""
    size = dict(ARCHITECTURES)[name]
    model = build(name, size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    if method == "ablationcam" and name != "demo":
        with pytest.raises(ValueError, match="pytorch-grad-cam's AblationCAM failed on layer"):
            _check_runs(method, model, x)
        return
    _check_runs(method, model, x)


def test_the_method_split_leaves_none_out():
    assert set(FAST_METHODS) | set(PER_CHANNEL_METHODS) == set(METHODS)
    assert {"scorecam", "ablationcam"} <= set(PER_CHANNEL_METHODS) and "gradcam" in FAST_METHODS


@pytest.mark.slow
def test_every_family_resolves_on_its_model():
    seen = set()
    for name, size in ARCHITECTURES:
        model = build(name, size)
        family = family_of(model)
        assert family is not None, name
        seen.add(family.name)
        cfcam.resolve_layer(model, family.layer)
    # timm's families are tested on timm's models (tests/methods/test_timm.py)
    assert seen == {f.name for f in FAMILIES if f.library == "torchvision"}, "a family in the table is not tested"


def test_the_explainer_says_what_it_picked():
    model = build("swin_t")
    explainer = cfcam.CFCAM(model, preset="reference")
    assert "features[-1]" in repr(explainer) and "reshape swin" in repr(explainer) and "Swin" in repr(explainer)
    given = cfcam.GradCAM(build("resnet18"), "layer3")
    assert "layer3" in repr(given) and "as given" in repr(given)


def test_channels_last_output_without_transform_is_refused():
    model = build("swin_t")
    with pytest.raises(ValueError) as err:
        cfcam.GradCAM(model, "features[-1]")(torch.randn(1, 3, 96, 96))
    message = str(err.value)
    assert "'features.7'" in message and "(1, 3, 3, 768)" in message and "channels-last" in message
    assert "reshape_transform='swin'" in message and "--reshape swin" in message


def test_token_output_without_transform_is_refused():
    model = build("vit_b_16", 64)
    with pytest.raises(ValueError) as err:
        cfcam.CFCAM(model, "encoder.layers[-1].ln_1")(torch.randn(1, 3, 64, 64))
    message = str(err.value)
    assert "(1, 17, 768)" in message and "reshape_transform='vit'" in message and "encoder_layer_11" in message


def test_one_by_one_map_is_refused():
    with pytest.raises(ValueError, match=r"gives a 1x1 map .*choose an earlier layer"):
        cfcam.GradCAM(build("resnet18"), "avgpool")(torch.randn(1, 3, 64, 64))


def test_a_wrong_transform_is_refused_not_guessed():
    with pytest.raises(ValueError, match="the 'vit' transform expects tokens"):
        cfcam.GradCAM(build("resnet18"), "layer4", reshape_transform="vit")(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="reshape_transform must be a callable, None, or one of"):
        cfcam.GradCAM(build("resnet18"), "layer4", reshape_transform="tokens")


def test_custom_callable_transform_matches_the_named_one():
    model = build("swin_t")
    x = torch.randn(1, 3, 96, 96)
    named = cfcam.GradCAM(model, "features[-1]", reshape_transform="swin")(x, 2)
    custom = cfcam.GradCAM(model, "features[-1]", reshape_transform=lambda t: t.permute(0, 3, 1, 2))(x, 2)
    np.testing.assert_array_equal(named, custom)


def test_ambiguous_layout_is_refused_unless_declared():
    ambiguous = torch.zeros(1, 7, 7, 7)
    with pytest.raises(ValueError, match="both fit"):
        check_layout(ambiguous, "block", (224, 224), declared=False)
    assert check_layout(ambiguous, "block", (224, 224), declared=True) is ambiguous
    with pytest.raises(ValueError, match="cannot be established"):
        check_layout(torch.zeros(1, 64, 3, 50), "odd", (224, 224), declared=False)


def test_non_square_inputs_decide_the_layout():
    assert check_layout(torch.zeros(2, 512, 7, 10), "l", (224, 320), declared=False).shape == (2, 512, 7, 10)
    with pytest.raises(ValueError, match="channels-last"):
        check_layout(torch.zeros(2, 7, 10, 512), "l", (224, 320), declared=False)


def test_vit_transform():
    tokens = torch.arange(2 * 197 * 3, dtype=torch.float32).reshape(2, 197, 3)
    maps = vit_tokens_to_maps(tokens, (14, 14), 1)
    assert maps.shape == (2, 3, 14, 14)
    assert torch.equal(maps[:, :, 0, 1], tokens[:, 2, :])  # class token dropped, row-major grid
    assert vit_tokens_to_maps(torch.zeros(1, 196, 5), (14, 14), 0).shape == (1, 5, 14, 14)  # no class token
    wide = vit_transform((12, 27), 1)(torch.zeros(1, 325, 5))  # 324 = 18^2 patch tokens, read as 12x27
    assert wide.shape == (1, 5, 12, 27)
    with pytest.raises(ValueError, match="do not add up"):  # 225 = 15^2 tokens: 196 patches + 29 prefix tokens
        vit_tokens_to_maps(torch.zeros(1, 225, 5), (14, 14), 1)
    with pytest.raises(ValueError, match="needs the patch grid"):  # never guessed from a square root
        vit_tokens_to_maps(torch.zeros(1, 197, 5))
    assert channels_last_to_first(torch.zeros(1, 7, 5, 3)).shape == (1, 3, 7, 5)


def test_vit_grid_comes_from_the_model_not_the_token_count():
    """torchvision's ViT at 64 px: a 4x4 grid from conv_proj and its class token, whatever the count's roots."""
    model = build("vit_b_16", 64)
    with cfcam.GradCAM(model) as explainer:
        capture = explainer.capture_batch(torch.randn(1, 3, 64, 64), 0)
    assert capture.activations.shape == (1, 768, 4, 4)
    layout = explainer._grab._layout
    assert layout.grid == (4, 4) and layout.prefix == 1 and "conv_proj" in layout.grid_source


def test_a_declared_transform_is_checked_against_the_input():
    """swin on ResNet-18's layer4 gives (N, 7, 512, 7): a 512x7 "map" of a 224x224 input is refused."""
    model = build("resnet18")
    with pytest.raises(ValueError) as err:
        cfcam.GradCAM(model, "layer4[-1]", reshape_transform="swin")(torch.randn(1, 3, 224, 224))
    message = str(err.value)
    assert "reshape_transform 'swin'" in message and "(1, 512, 7, 7)" in message and "does not fit" in message
    with pytest.raises(ValueError, match="does not fit this layer"):  # a user's callable is checked too
        cfcam.GradCAM(model, "layer4[-1]", reshape_transform=lambda t: t.transpose(1, 3))(torch.randn(1, 3, 96, 160))


def test_auto_transform_for_a_given_layer():
    model = build("swin_t")
    assert choose_target(model, "features[-2]", "auto").reshape_transform == "swin"
    assert choose_target(build("resnet18"), "layer3", "auto").reshape_transform is None


def test_unknown_family_needs_a_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no default layer for a Sequential: pass target_layer"):
        cfcam.GradCAM(model)
    assert cfcam.GradCAM(model, "0")(torch.randn(1, 3, 16, 16)).shape == (1, 16, 16)


def test_command_line_refuses_a_declared_transform_that_does_not_fit(tmp_path, capsys):
    """``--reshape swin`` on a ResNet exits 2 with the reason, instead of writing maps."""
    from pathlib import Path

    from cfcam import cli

    torch.manual_seed(0)
    weights = tmp_path / "resnet18_2class.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=2).state_dict(), weights)
    image = Path(__file__).resolve().parents[2] / "testimgs" / "lesion_01.png"
    out = tmp_path / "out"
    code = cli.main(["explain", str(image), "-o", str(out), "--model", str(weights), "--arch", "resnet18",
                     "--reshape", "swin"])
    err = capsys.readouterr().err
    assert code == 2 and "argument --reshape: reshape_transform 'swin'" in err and "does not fit" in err
    assert not out.exists() or not list(out.glob("*.png"))
