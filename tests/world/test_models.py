"""Loading the demo model, torchvision ImageNet models and users' state-dict files, and the errors on misfits."""

import json
import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from cfcam.core.capture import resolve_layer
from cfcam.world import models
from cfcam.world.models import ModelError, check_device, load_model, read_state_dict

DEMO_FILE = models.DATA_DIR / models.DEMO_WEIGHTS


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-default running statistics, so a load that skipped buffers would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def logits(model, seed=0, size=32):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


# -- the demo model ---------------------------------------------------------------------------------------

def test_bundled_demo_model():
    """With the committed weights: 2 classes, a default layer that resolves. Without them: a clear error."""
    if DEMO_FILE.is_file():
        model, info = load_model()
        assert info["name"] == "demo" and info["classes"] == ["normal", "lesion"]
        name, module = resolve_layer(model, info["default_layer"])
        assert module is model.layer4[-1]
        assert not model.training and logits(model, size=224).shape == (2, 2)
        assert all(p.dtype == torch.float32 for p in model.parameters())
    else:
        with pytest.raises(ModelError, match="train-demo"):
            load_model("demo")


def test_demo_loading_path_with_a_stand_in(tmp_path, monkeypatch):
    """The demo code path on a random ResNet-10 saved as the helper saves it (float16 state dict + card)."""
    from cfcam.world.train import build_demo_model

    torch.manual_seed(3)
    original = randomise_bn(build_demo_model())
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in original.state_dict().items()},
               tmp_path / models.DEMO_WEIGHTS)
    (tmp_path / models.DEMO_CARD).write_text(json.dumps({
        "classes": ["normal", "lesion"], "target_layer": "layer4[-1]", "input_size": [3, 224, 224],
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}))
    monkeypatch.setattr(models, "DATA_DIR", tmp_path)
    model, info = load_model("demo")
    assert info["classes"] == ["normal", "lesion"] and info["default_layer"] == "layer4[-1]"
    assert info["input_size"] == 224 and info["mean"] == (0.5, 0.5, 0.5) and info["std"] == (0.25,) * 3
    with torch.no_grad():  # what was saved is the float16 rounding of the original
        for t in list(original.parameters()) + list(original.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    torch.testing.assert_close(logits(model), logits(original))
    with pytest.raises(ModelError, match="fixed architecture"):
        load_model("demo", num_classes=3)


# -- users' weights files ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_like_resnet50(tmp_path_factory):
    """The seed's case: ResNet50 with ``fc`` replaced by ``nn.Linear(2048, 2)``, saved as a state dict."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    model.fc = nn.Linear(2048, 2)
    randomise_bn(model)
    path = tmp_path_factory.mktemp("weights") / "seed_resnet50.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_seed_like_resnet50_loads_with_the_same_logits(seed_like_resnet50):
    original, path = seed_like_resnet50
    model, info = load_model(path, arch="resnet50", num_classes=2)
    assert info["classes"] == ["class 0", "class 1"] and info["default_layer"] == "layer4[-1]"
    assert info["arch"] == "resnet50" and not model.training
    torch.testing.assert_close(logits(model), logits(original))


def test_num_classes_is_read_from_the_file_and_names_can_be_given(tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "r18.pth")
    model, info = load_model(str(tmp_path / "r18.pth"), arch="resnet18", class_names=["normal", "pneumonia"])
    assert model.fc.out_features == 2 and info["classes"] == ["normal", "pneumonia"]
    with pytest.raises(ModelError, match="3 name"):
        load_model(tmp_path / "r18.pth", arch="resnet18", class_names=["a", "b", "c"])


def test_checkpoint_dict_with_dataparallel_prefix(tmp_path):
    torch.manual_seed(1)
    original = randomise_bn(torchvision.models.resnet18(num_classes=3))
    state = {f"module.{k}": v for k, v in original.state_dict().items()}
    torch.save({"epoch": 7, "model_state_dict": state, "optimizer": {}}, tmp_path / "ckpt.pt")
    model, info = load_model(tmp_path / "ckpt.pt", arch="resnet18")
    assert len(info["classes"]) == 3
    torch.testing.assert_close(logits(model), logits(original))


def test_wrong_architecture_lists_missing_and_unexpected_keys(tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "r18.pt", arch="resnet50", num_classes=2)
    msg = str(info.value)
    assert "missing key" in msg and "layer1.0.conv3.weight" in msg  # a ResNet50 key the file lacks
    assert "size mismatch" in msg and "--arch" in msg
    torch.save({**torchvision.models.resnet18(num_classes=2).state_dict(), "extra.weight": torch.zeros(1)},
               tmp_path / "extra.pt")
    with pytest.raises(ModelError, match=r"unexpected key.*extra\.weight"):
        load_model(tmp_path / "extra.pt", arch="resnet18")


def test_wrong_num_classes_names_the_size_mismatch(seed_like_resnet50):
    _, path = seed_like_resnet50
    with pytest.raises(ModelError) as info:
        load_model(path, arch="resnet50", num_classes=3)
    msg = str(info.value)
    assert "fc.weight (2, 2048) in the file vs (3, 2048) in the model" in msg
    assert "--num-classes" in msg and "num_classes=2" in msg


class _Payload:
    """Unpickling this would create a folder: proof that arbitrary code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.zeros(2, 2), "payload": _Payload(marker)}, path)
    with pytest.raises(ModelError, match="refused.*weights_only=True.*state_dict"):
        load_model(path, arch="resnet18")
    assert not marker.exists()
    torch.save(torchvision.models.resnet18(num_classes=2), tmp_path / "whole_model.pt")  # a pickled nn.Module
    with pytest.raises(ModelError, match="refused.*GLOBAL"):
        read_state_dict(tmp_path / "whole_model.pt")


def test_files_that_are_not_state_dicts(tmp_path):
    (tmp_path / "notes.pt").write_text("not torch")
    with pytest.raises(ModelError, match="not a readable PyTorch weights file"):
        load_model(tmp_path / "notes.pt", arch="resnet18")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="does not hold a state dict"):
        load_model(tmp_path / "list.pt", arch="resnet18")


def test_names_and_paths_that_do_not_exist(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(ModelError, match=r"unknown architecture 'resnet5O'.*resnet50"):
        load_model(tmp_path / "w.pt", arch="resnet5O")
    with pytest.raises(ModelError, match=r"needs its architecture.*--arch"):
        load_model(tmp_path / "w.pt")
    with pytest.raises(ModelError, match=r"unknown model 'resnet5'.*resnet50"):
        load_model("resnet5")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pth", arch="resnet18")


# -- torchvision ImageNet models --------------------------------------------------------------------------

@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and a download that fails as it does offline (and records that it was tried)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    tried = []

    def no_network(url, dst, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tried


def test_imagenet_name_offline_gives_the_clear_message(offline_hub):
    with pytest.raises(ModelError) as info:
        load_model("resnet18")
    msg = str(info.value)
    assert msg.startswith("ImageNet weights for resnet18 could not be downloaded (offline?): ")
    assert "Temporary failure in name resolution" in msg
    assert "--weights" in msg and "demo model" in msg
    assert offline_hub and offline_hub[0].endswith(".pth")


def test_imagenet_weights_from_the_cache(offline_hub):
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(2)
    original = randomise_bn(torchvision.models.resnet18())
    torch.save(original.state_dict(), cache / Path(weights.url).name)
    model, info = load_model("resnet18")
    assert offline_hub == []  # nothing was downloaded
    assert info["classes"] == list(weights.meta["categories"]) and len(info["classes"]) == 1000
    assert info["default_layer"] == "layer4[-1]" and info["input_size"] == 224
    torch.testing.assert_close(logits(model), logits(original))
    with pytest.raises(ModelError, match="1000 classes"):
        load_model("resnet18", num_classes=2)


# -- devices and default layers ---------------------------------------------------------------------------

def test_device_checks(monkeypatch):
    assert check_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        check_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        check_device("quantum")


def test_default_layers_resolve():
    for arch, expected in (("mobilenet_v3_small", "features[-1]"), ("squeezenet1_0", "features[-1]"),
                           ("resnet18", "layer4[-1]")):
        model = torchvision.models.get_model(arch, weights=None)
        layer = models.default_layer(model, arch)
        assert layer == expected
        resolve_layer(model, layer)
    assert models.default_layer(nn.Sequential(nn.Linear(2, 2)), "vit_b_16") is None


def test_missing_demo_weights_name_the_command_that_writes_them_into_the_package(tmp_path, monkeypatch):
    from cfcam.world import models

    monkeypatch.setattr(models, "DATA_DIR", tmp_path)  # train-demo writes elsewhere unless asked
    with pytest.raises(ModelError, match="cfcam train-demo --into-package`"):
        load_model("demo")
    with pytest.raises(ModelError, match="cfcam train-demo --into-package --shortcut"):
        load_model("demo-shortcut")
