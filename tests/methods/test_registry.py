"""The one registry of methods: names, creation, errors (the "add a method" example runs in test_docs.py)."""

from __future__ import annotations

import pytest

import cfcam
from cfcam.cli import build_parser
from cfcam.methods.registry import METHODS, Method, create, get_method, method_names, register
from cfcam.world.architecture import build_demo_model


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

