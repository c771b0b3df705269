"""The explorers' controls: sliders and dropdowns that update on release, the image and class choosers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as W

if TYPE_CHECKING:
    from .session import Session

LAYERS = ("layer1", "layer2", "layer3", "layer4[-1]")

__all__ = ["LAYERS", "class_control", "dropdown", "image_control", "slider", "target_class"]


def slider(value, lo, hi, step, description, integer=False):
    """A float (or ``integer``) slider that reports a value when released (``continuous_update=False``)."""
    cls = W.IntSlider if integer else W.FloatSlider
    return cls(value=value, min=lo, max=hi, step=step, description=description, continuous_update=False,
               style={"description_width": "initial"})


def dropdown(options, value, description):
    """A dropdown with its description shown in full."""
    return W.Dropdown(options=options, value=value, description=description,
                      style={"description_width": "initial"})


def image_control(session: Session) -> W.Dropdown:
    """The images by name, starting on the first one with a known lesion (the most telling to begin with)."""
    first = next((i for i, m in enumerate(session.masks) if m is not None), 0)
    return dropdown([(n, i) for i, n in enumerate(session.names)], first, "image")


def class_control(session: Session, with_top=True) -> W.Dropdown:
    """The classes by name, led by "top class" (the value -1, see :func:`target_class`)."""
    # -1 stands for "the top class" (a Dropdown shows a None value as an empty selection)
    options = ([("top class", -1)] if with_top else []) + [(n, i) for i, n in enumerate(session.class_names)]
    return dropdown(options, options[0][1], "class")


def target_class(value):
    """A class control's value as a capture target: ``None`` (the top class) for -1 or None, else the index."""
    return None if value is None or value < 0 else int(value)
