"""The one registry of methods: names, creation, errors, and the README's "add a method" example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import cfcam
from cfcam.cli import build_parser
from cfcam.methods.registry import METHODS, Method, create, get_method, method_names, register
from cfcam.world.architecture import build_demo_model

README = Path(__file__).resolve().parents[1] / "README.md"


def test_core_methods_are_registered():
    assert {"gradcam", "cfcam-readme", "cfcam-reference"} <= set(method_names())
    assert get_method("cfcam-reference").options == {"preset": "reference"}
    assert all(isinstance(m, Method) and m.summary for m in METHODS.values())


def test_command_line_choices_come_from_the_registry():
    parser = build_parser()
    explain = parser._subparsers._group_actions[0].choices["explain"]
    method = next(a for a in explain._actions if a.dest == "method")
    assert set(method.choices) == {"cfcam", *method_names()}


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match=r"unknown method 'gradcam\+'; expected one of gradcam"):
        get_method("gradcam+")
    with pytest.raises(ValueError, match="registered already"):
        register("gradcam", cfcam.GradCAM, "again")
    with pytest.raises(ValueError, match="lower-case word"):
        register("Grad CAM", cfcam.GradCAM, "bad name")


def test_options_can_be_overridden():
    model = build_demo_model().eval()
    explainer = create("cfcam-reference", model, eps_percentile=40)
    assert explainer.config.eps_percentile == 40 and explainer.config.filter == "reference"


def test_readme_example_adds_a_method_with_one_class_and_one_line():
    text = README.read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "register(" in b)
    namespace: dict = {}
    try:
        exec(compile(block, "README.md", "exec"), namespace)
        assert "absgradcam" in method_names()
        model = build_demo_model().eval()
        with create("absgradcam", model) as explainer:
            maps = explainer(torch.randn(2, 3, 64, 64), [0, 1])
        assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
        assert explainer.results[0].fallback is None and isinstance(explainer.results[0].notes, tuple)
    finally:
        METHODS.pop("absgradcam", None)
