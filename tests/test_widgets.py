"""Every explorer driven from pytest: each control to its minimum and maximum (and every option), no
exception, finite results, the image redrawn; the staged pipeline equals the one-shot core."""

import numpy as np
import pytest
import torch
import ipywidgets as W
from torchvision.models.resnet import BasicBlock, ResNet

from cfcam import cluster_filter_cam, make_config
from cfcam.world.synthetic import make_dataset
from cfcam.core.pipeline import CFCAMPipeline
from cfcam.teaching.widgets import Session, clustering_explorer, dashboard, filtering_explorer, hooks_explorer


@pytest.fixture(scope="module")
def session():
    torch.manual_seed(0)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2).eval()
    images, _, masks = make_dataset(2, seed=3)
    return Session(model=model, images=list(images), masks=[m if m.any() else None for m in masks],
                   class_names=["normal", "lesion"])


def finite_state(state):
    arrays = []
    if isinstance(state, dict):
        for v in state.values():
            arrays.append(getattr(v, "cam", v))
    else:
        arrays.append(state.cam)
    for a in arrays:
        if isinstance(a, np.ndarray):
            assert np.isfinite(a).all()


def settings_for(control):
    if isinstance(control, (W.FloatSlider, W.IntSlider)):
        return [control.min, control.max, control.value]
    if isinstance(control, W.Dropdown):
        return [v for _, v in control.options] if isinstance(control.options[0], tuple) else list(control.options)
    raise AssertionError(f"unexpected control {control!r}")


@pytest.mark.parametrize("build", [hooks_explorer, clustering_explorer, filtering_explorer, dashboard])
def test_every_control_at_every_extreme(session, build):
    explorer = build(session)
    assert explorer.image.value[:4] == b"\x89PNG"
    for name, control in explorer.controls.items():
        for value in settings_for(control):
            before = explorer.image.value
            control.value = value
            assert "color:#b00" not in explorer.status.value, (name, value, explorer.status.value)
            finite_state(explorer.state)
            assert explorer.last_seconds >= 0
            assert explorer.image.value[:4] == b"\x89PNG"
        del before


def test_slider_redraws_the_image(session):
    explorer = dashboard(session)
    before = explorer.image.value
    explorer.controls["eps_percentile"].value = 60.0
    assert explorer.image.value != before
    assert all(getattr(c, "continuous_update", False) is False for c in explorer.controls.values()
               if isinstance(c, (W.FloatSlider, W.IntSlider)))


def test_preset_sets_every_parameter(session):
    explorer = dashboard(session)
    explorer.controls["preset"].value = "reference"
    ref = make_config("reference")
    v = explorer.values()
    assert (v["important_fraction"], v["filter"], v["weighting"], v["spatial_sigma"]) == \
        (ref.important_fraction, ref.filter, ref.weighting, ref.spatial_sigma)
    assert explorer.state["cf"].n_important > 0


def test_capture_is_cached(session, monkeypatch):
    session.capture(0, "layer3", None)
    calls = []
    import cfcam.teaching.widgets as wmod

    original = wmod.ActivationsAndGradients.__call__
    monkeypatch.setattr(wmod.ActivationsAndGradients, "__call__",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    cap = session.capture(0, "layer3", None)
    session.capture(0, "layer3", int(cap.targets[0]))
    assert calls == []


@pytest.mark.parametrize("changes", [{}, {"eps_percentile": 50}, {"important_fraction": 0.25},
                                     {"filter": "reference", "weighting": "softmax"}, {"min_samples_fraction": 0.3}])
def test_staged_equals_one_shot(session, changes):
    cap = session.capture(1, "layer3", None)
    a, g = cap.activations[0], cap.gradients[0]
    staged = CFCAMPipeline(a, g)
    staged.run(make_config("readme"))  # warm the caches with other settings first
    config = make_config("readme", **changes)
    got, want = staged.run(config), cluster_filter_cam(a, g, config)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_allclose(got.cam, want.cam, rtol=1e-6, atol=1e-9)


def test_widgets_leave_the_notebook_plotting_backend_alone():
    """Importing and drawing an explorer must not switch matplotlib's backend (a notebook's inline one)."""
    import subprocess
    import sys

    code = ("import matplotlib; import cfcam.teaching.widgets as w; import torch\n"
            "from torchvision.models.resnet import ResNet, BasicBlock\n"
            "from cfcam.world.synthetic import make_dataset\n"
            "ims, _, _ = make_dataset(1, seed=0)\n"
            "w.hooks_explorer(w.Session(model=ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2), images=list(ims)))\n"
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "MPLBACKEND": "svg"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "svg"


def test_session_leaves_the_model_as_given():
    torch.manual_seed(1)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, _, _ = make_dataset(1, seed=5)
    s = Session(model=model, images=list(images))
    s.capture(0, "layer4[-1]", None)
    assert s.class_names == ["class 0", "class 1", "class 2"]
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm stats untouched
