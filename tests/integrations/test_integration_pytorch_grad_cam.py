"""cfcam.integrations.pytorch_grad_cam.CFCAM gives cfcam.CFCAM's maps through pytorch-grad-cam's interface."""

import numpy as np
import pytest
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import cfcam
from cfcam.integrations.pytorch_grad_cam import CFCAM as PGCFCAM


@pytest.mark.parametrize("preset", ["readme", "reference"])
def test_same_map_as_cfcam(demo, preset):
    model, x = demo.model, demo.inputs[:2]
    with cfcam.CFCAM(model, "layer4[-1]", preset=preset) as ours:
        expected = ours(x, targets=[1, 0])
    with PGCFCAM(model=model, target_layers=[model.layer4[-1]], preset=preset) as cam:
        got = cam(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(0)])
        assert len(cam.results) == 2 and hasattr(cam.results[0], "labels")
    assert got.shape == expected.shape == (2, 224, 224)
    assert np.abs(got - expected).max() < 1e-5


def test_overrides_and_bad_values(demo):
    model, x = demo.model, demo.inputs[:2]
    with PGCFCAM(model=model, target_layers=[model.layer4[-1]], preset="reference", weighting="gap") as cam:
        assert cam.config.weighting == "gap"
        cam(input_tensor=x[:1], targets=None)
    with pytest.raises(ValueError, match="weighting"):
        PGCFCAM(model=model, target_layers=[model.layer4[-1]], weighting="nope")


def test_eigen_smooth_is_refused_not_ignored(demo):
    model, x = demo.model, demo.inputs[:2]
    with PGCFCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        with pytest.raises(ValueError, match="eigen_smooth=True is not supported by CF-CAM"):
            cam(input_tensor=x[:1], targets=[ClassifierOutputTarget(1)], eigen_smooth=True)
        plain = cam(input_tensor=x[:1], targets=[ClassifierOutputTarget(1)])
    assert plain.shape == (1, 224, 224) and np.isfinite(plain).all()
