"""The one orchestrator: stage declarations next to the config fields, recomputation of only what changed."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cfcam import cluster_filter_cam, make_config
from cfcam.core.config import STAGES, CFCAMConfig, stage_fields
from cfcam.core.filtering import filter_maps
from cfcam.core.pipeline import CFCAMPipeline


def test_every_config_field_declares_its_stage():
    for f in dataclasses.fields(CFCAMConfig):
        assert f.metadata.get("stage") in STAGES, f"CFCAMConfig.{f.name} declares no stage (metadata['stage'])"
    declared = sum(len(stage_fields(s)) for s in STAGES)
    assert declared == len(dataclasses.fields(CFCAMConfig))
    with pytest.raises(ValueError, match="stage must be one of"):
        stage_fields("clustering")


@pytest.fixture
def maps():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 6, 6, generator=g, dtype=torch.float64)
    a = torch.cat([base[i % 4] + 0.01 * torch.rand(1, 6, 6, generator=g, dtype=torch.float64) for i in range(48)])
    grads = torch.randn(48, 6, 6, generator=g, dtype=torch.float64) * 1e-3
    return a, grads


@pytest.mark.parametrize("change, expected", [
    ({}, ()),
    ({"normalize": "max"}, ()),
    ({"weighting": "softmax"}, ("compose",)),
    ({"range_sigma": 0.5}, ("filter", "compose")),
    ({"eps_percentile": 40.0}, ("cluster", "filter", "compose")),
])
def test_only_the_stages_after_a_change_are_recomputed(maps, change, expected):
    pipe = CFCAMPipeline(*maps)
    pipe.run("readme")
    assert pipe.recomputed == ("cluster", "filter", "compose")
    got = pipe.run("readme", **change)
    assert pipe.recomputed == expected
    want = cluster_filter_cam(*maps, "readme", **change)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_allclose(got.cam, want.cam, rtol=1e-6, atol=1e-12)


def test_results_of_earlier_runs_are_not_changed(maps):
    pipe = CFCAMPipeline(*maps)
    first = pipe.run("readme")
    labels, cam = first.labels.copy(), first.cam.copy()
    pipe.run("readme", eps_percentile=60.0, filter="gaussian", weighting="softmax")
    np.testing.assert_array_equal(first.labels, labels)
    np.testing.assert_array_equal(first.cam, cam)


def test_inputs_are_not_modified(maps):
    a, g = maps
    a0, g0 = a.clone(), g.clone()
    CFCAMPipeline(a, g).run("reference")
    assert torch.equal(a, a0) and torch.equal(g, g0)


def test_unknown_filter_kind_raises():
    fake = SimpleNamespace(filter="median", spatial_sigma=1.0, range_sigma=0.2)
    with pytest.raises(ValueError, match="filter must be one of"):
        filter_maps(torch.zeros(2, 3, 3), fake)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        CFCAMPipeline(torch.rand(4, 3, 3), torch.rand(4, 3, 2))


def test_make_config_used_for_presets(maps):
    assert CFCAMPipeline(*maps).run(make_config("reference")).config == make_config("reference")


def test_the_inputs_are_checked_and_converted_on_one_torch_thread(monkeypatch):
    """Torch's own threads wait on each other at every operation and stall when another process has a
    core: everything of the core, the input conversion included, runs on one."""
    from cfcam.core import pipeline

    seen = []
    real = pipeline.as_maps

    def spy(x, name):
        seen.append(torch.get_num_threads())
        return real(x, name)

    monkeypatch.setattr(pipeline, "as_maps", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.default_rng(0)
        pipeline.CFCAMPipeline(rng.random((40, 5, 5)), rng.random((40, 5, 5)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]
