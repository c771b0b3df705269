"""timm models, no layer given: each family's layer and transform, maps equal to pytorch-grad-cam's on that
layer, the ViT grid and prefix tokens taken from the model (never from a square root), and the command line on
a timm weights file. timm is part of the test extra (``pip install cfcam[test]``). Tiny random-weight models."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from timm.models.convnext import ConvNeXt
from timm.models.deit import VisionTransformerDistilled
from timm.models.resnet import BasicBlock, ResNet
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

import cfcam
from cfcam import cli
from cfcam.core.layouts import vit_transform
from cfcam.methods.targets import TIMM_FAMILIES, family_of

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "testimgs" / "lesion_01.png"
VIT = dict(patch_size=16, embed_dim=32, depth=2, num_heads=2, num_classes=3)


def vit(**kwargs) -> nn.Module:
    return VisionTransformer(**{**VIT, **kwargs})


def efficientnet() -> nn.Module:
    return timm.create_model("test_efficientnet", pretrained=False, num_classes=3)


#: name -> (builder, input (H, W), the grid and prefix the reference reads the tokens with, or None)
MODELS = {
    "vit": (lambda: vit(img_size=64), (64, 64), ((4, 4), 1)),
    "vit_dynamic_192x432": (lambda: vit(img_size=64, dynamic_img_size=True), (192, 432), ((12, 27), 1)),
    "vit_28_registers": (lambda: vit(img_size=224, depth=1, reg_tokens=28), (224, 224), ((14, 14), 29)),
    "deit_distilled": (lambda: VisionTransformerDistilled(img_size=64, **VIT), (64, 64), ((4, 4), 2)),
    "swin": (lambda: SwinTransformer(img_size=64, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1),
                                     num_heads=(1, 2), num_classes=3), (64, 64), None),
    "convnext": (lambda: ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), num_classes=3), (64, 64), None),
    "efficientnet": (efficientnet, (64, 64), None),
    "resnet": (lambda: ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3, zero_init_last=False), (64, 64), None),
    "byobnet (feature_info)": (lambda: timm.create_model("test_byobnet", pretrained=False, num_classes=3),
                               (64, 64), None),
}


def build(name: str) -> nn.Module:
    """A seeded tiny timm model; zero-initialised linear layers (heads) get small random weights."""
    torch.manual_seed(0)
    model = MODELS[name][0]()
    for module in model.modules():
        if isinstance(module, nn.Linear) and not module.weight.any():
            nn.init.normal_(module.weight, std=0.02)
    return model.eval()


def reference_maps(model, layer, reshape, x, targets):
    """pytorch-grad-cam's Grad-CAM on ``layer`` (given a copy of the output, as tests/test_architectures does)."""
    with ReferenceGradCAM(model, [layer], reshape_transform=lambda t: reshape(t).clone()) as ref:
        return ref(x, targets=[ClassifierOutputTarget(t) for t in targets])


@pytest.mark.parametrize("name", list(MODELS))
def test_timm_model_explained_with_no_layer_equals_pytorch_grad_cam(name):
    _, size, tokens = MODELS[name]
    model = build(name)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        targets = [int(t) for t in model(x).argmax(1)]
    with cfcam.GradCAM(model) as ours:
        maps = ours(x, targets)
    assert ours.target.automatic and ours.target.family.startswith("timm"), ours.target
    layer = cfcam.resolve_layer(model, ours.target.layer)[1]
    if tokens is not None:  # the grid and prefix the model really has, written out here (not taken from cfcam)
        reshape = vit_transform(*tokens)
    else:
        reshape = ours._grab.reshape_transform or (lambda t: t)
    theirs = reference_maps(model, layer, reshape, x, targets)
    informative = 0
    for i in range(len(x)):
        if maps[i].max() == 0:
            assert theirs[i].max() < 1e-6
            continue
        informative += 1
        r = np.corrcoef(maps[i].ravel(), theirs[i].ravel())[0, 1]
        assert r >= 0.999, f"{name} image {i}: r = {r:.4f} against pytorch-grad-cam"
    assert informative
    with cfcam.CFCAM(model) as cf:  # CF-CAM runs on the same choice
        assert np.isfinite(cf(x[:1], targets[:1])).all()


def test_every_timm_family_is_tested():
    seen = {family_of(build(name)).name for name in MODELS}
    assert {f.name for f in TIMM_FAMILIES} <= seen


def test_timm_classes_do_not_match_torchvision_families():
    """timm's VisionTransformer and SwinTransformer share torchvision's class names, not its layer names."""
    assert family_of(build("vit")).layer == "blocks[-1].norm1"
    assert family_of(build("swin")).layer == "layers[-1]" and family_of(build("swin")).reshape == "swin"


def test_the_square_root_cases_are_read_from_the_model():
    """324 = 18^2 patch tokens of a 12x27 grid, and 196 + 29 = 225 = 15^2 tokens: the model says what they are."""
    model = build("vit_dynamic_192x432")
    with cfcam.GradCAM(model) as explainer:
        cap = explainer.capture_batch(torch.randn(1, 3, 192, 432), 0)
    assert cap.activations.shape[-2:] == (12, 27)
    model = build("vit_28_registers")
    with cfcam.GradCAM(model) as explainer:
        cap = explainer.capture_batch(torch.randn(1, 3, 224, 224), 0)
    assert cap.activations.shape[-2:] == (14, 14) and explainer._grab._layout.prefix == 29


class UndeclaredTokens(nn.Module):
    """A ViT-like model that prepends a token it does not declare: its tokens do not add up, so no map."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, 8, 16, 16)
        self.extra = nn.Parameter(torch.zeros(1, 1, 8))
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = self.norm(torch.cat([self.extra.expand(len(x), -1, -1), t], 1))
        return self.head(t.mean(1))


def test_tokens_that_do_not_add_up_are_refused():
    with pytest.raises(ValueError) as err:
        cfcam.GradCAM(UndeclaredTokens(), "norm", reshape_transform="vit")(torch.randn(1, 3, 64, 64))
    message = str(err.value)
    assert "17 tokens" in message and "4x4 patch grid and 0 prefix" in message and "do not add up" in message


def test_a_family_without_its_layer_says_which_family_and_what_to_try():
    model = build("vit")
    del model.blocks[-1].norm1
    with pytest.raises(ValueError) as err:
        cfcam.GradCAM(model)
    message = str(err.value)
    assert "timm ViT" in message and "'blocks[-1].norm1'" in message and "target_layer=" in message


# -- the command line ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def timm_weights(tmp_path_factory):
    """A tiny random-weight three-class timm ViT saved as a state dict (timm's ``test_vit``, 160 px)."""
    torch.manual_seed(0)
    model = timm.create_model("test_vit", pretrained=False, num_classes=3)
    path = tmp_path_factory.mktemp("timm") / "test_vit_3class.pt"
    torch.save(model.state_dict(), path)
    return path


def test_command_line_on_a_timm_weights_file(timm_weights, tmp_path, capsys):
    code = cli.main(["explain", str(IMAGE), "-o", str(tmp_path), "--model", "timm:test_vit", "--weights",
                     str(timm_weights), "--method", "gradcam"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "layer blocks[-1].norm1 (blocks.5.norm1) (reshape vit)" in out.out
    rows = list(csv.DictReader(open(tmp_path / "summary.csv", newline="")))
    assert len(rows) == 1 and rows[0]["target"] in {"class 0", "class 1", "class 2"}


def test_command_line_num_classes_mismatch_prints_lines(timm_weights, tmp_path, capsys):
    code = cli.main(["explain", str(IMAGE), "-o", str(tmp_path), "--model", "timm:test_vit", "--weights",
                     str(timm_weights), "--num-classes", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert "\\n" not in err and "\n  2 size mismatch(es): head.weight (3, 64) in the file vs (5, 64)" in err


@pytest.mark.slow
def test_pretrained_timm_offline_gives_the_clear_message(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = ("from cfcam.world.models import load_model, ModelError\n"
            "try:\n    load_model('timm:test_vit')\nexcept ModelError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert "pretrained weights for timm:test_vit could not be downloaded (offline?)" in proc.stdout, proc.stderr
    assert str(tmp_path / "hf") in proc.stdout and "--weights" in proc.stdout


def test_unknown_timm_name_suggests_close_ones():
    from cfcam.world.models import ModelError, load_model

    with pytest.raises(ModelError, match=r"timm has no model 'test_vitt' \(did you mean timm:test_vit"):
        load_model("timm:test_vitt")
