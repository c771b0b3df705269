"""The evaluation's shared passes (cfcam.evaluation.captures) give the maps each method's own passes give."""

import numpy as np
import pytest
import torch
from torch import nn

from cfcam.evaluation import sanity as sa
from cfcam.evaluation.captures import SharedCaptures, cut_head
from cfcam.evaluation.engine import EvalData, EvalSettings, Evaluation
from cfcam.methods.registry import create

METHODS = ["gradcam", "cfcam-reference", "eigencam"]  # weights from gradients, clusters, activations only


def test_the_head_computes_the_model_from_the_layer(demo):
    captured = {}
    layer = demo.model.layer4[0]
    handle = layer.register_forward_hook(lambda m, i, o: captured.setdefault("a", o.detach()))
    with torch.no_grad():
        logits = demo.model(demo.inputs[:2])
    handle.remove()
    head = cut_head(demo.model, "layer4.0")
    assert head is not None
    with torch.no_grad():
        assert torch.allclose(head(captured["a"]), logits, atol=1e-5)


class _Skip(nn.Module):
    """The output reads the input around the layer: no head can be cut at ``layer``."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.layer(x) + x)


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x):
        return self.layer(self.layer(x))


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            return self.layer(x)
        return x


@pytest.mark.parametrize("model", [_Skip(), _Twice(), _Untraceable()], ids=["skip", "twice", "untraceable"])
def test_no_head_where_the_model_does_not_allow_one(model):
    assert cut_head(model, "layer") is None


def _maps_both_ways(demo, name, draw):
    data = EvalData(demo.inputs, demo.masks, np.asarray(demo.labels), "demo")
    runs = []
    for share in (True, False):
        ev = Evaluation(demo.model, data, EvalSettings(batch_size=3, threads=1, share_passes=share))
        if draw is None:
            maps, notes, _ = ev._maps(name, demo.model, demo.inputs, demo.labels)
        else:
            maps, notes, _ = ev._maps(name, None, demo.inputs, demo.labels, draw=draw)
        runs.append((ev, maps, notes))
    return runs


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("draw", [None, 2])
def test_shared_passes_give_each_methods_own_maps(demo, name, draw):
    (shared_ev, shared, shared_notes), (_, own, own_notes) = _maps_both_ways(demo, name, draw)
    assert shared_ev._serves[name], f"{name} should use the shared passes"
    np.testing.assert_allclose(shared, own, atol=2e-5)
    assert shared_notes == own_notes


def test_a_classifier_draw_is_not_the_model(demo):
    """The draws really re-initialise the classifier: a map that changes under some draw (Grad-CAM's does)."""
    (_, base, _), _ = _maps_both_ways(demo, "gradcam", None)
    changed = [np.abs(_maps_both_ways(demo, "gradcam", d)[0][1] - base).max() for d in range(2)]
    assert max(changed) > 0.05


def test_methods_with_passes_of_their_own_are_not_served(demo):
    shared = SharedCaptures(demo.model, "layer4.0")
    with create("scorecam", demo.model, "layer4[-1]") as own, create("gradcam", demo.model, "layer4[-1]") as plain:
        assert not shared.serves(own)
        assert shared.serves(plain)
    with create("gradcam", sa.randomised(demo.model, ("fc",), 0), "layer4[-1]") as other_model:
        assert not shared.serves(other_model)


def test_a_cascade_step_is_one_pass_for_every_method(demo):
    data = EvalData(demo.inputs, demo.masks, np.asarray(demo.labels), "demo")
    layers = ("fc", "layer4")
    results = {}
    for share in (True, False):
        ev = Evaluation(demo.model, data, EvalSettings(batch_size=3, threads=1, share_passes=share))
        for name in ("gradcam", "cfcam-reference"):
            results[share, name] = ev._maps(name, sa.randomised(demo.model, layers, 1), demo.inputs, demo.labels,
                                            model_key=("cascade", layers, 1))[0]
        if share:
            assert sum(key[0] == ("cascade", layers, 1) for key in ev._captures._captures) == 2  # two batches
    for name in ("gradcam", "cfcam-reference"):
        np.testing.assert_allclose(results[True, name], results[False, name], atol=2e-5)
