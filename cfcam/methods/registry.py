"""The one registry of CAM methods: a name -> an explainer class and its default options.

The command line's ``--method`` choices, the metrics, the widgets and ``cfcam evaluate`` all read this
mapping, so a new method is one class (a :class:`~cfcam.methods.base.BaseCAM` subclass that overrides
``explain_one``) and one ``register(...)`` line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry itself stays light: the classes are imported when a method is used
    from torch import nn

    from .base import BaseCAM


@dataclass(frozen=True)
class Method:
    """A registered method: its name, explainer class (or ``"module:Class"``, imported on first use), default
    constructor options and a one-line summary."""

    name: str
    target: type | str
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type:
        """The explainer class."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, model: nn.Module, target_layer=None, **overrides) -> BaseCAM:
        """The explainer for ``model`` at ``target_layer``, with the default options updated by ``overrides``."""
        return self.cls(model, target_layer, **{**self.options, **overrides})


METHODS: dict[str, Method] = {}


def register(name: str, cls: type | str, summary: str, **options) -> Method:
    """Add a method under ``name`` (lower case, no spaces); a name can be registered only once."""
    if not isinstance(name, str) or not name or name != name.strip().lower() or " " in name:
        raise ValueError(f"a method name must be a non-empty lower-case word, got {name!r}")
    if name in METHODS:
        raise ValueError(f"method {name!r} is registered already")
    METHODS[name] = Method(name, cls, summary, dict(options))
    return METHODS[name]


def get_method(name: str) -> Method:
    """The registered method ``name``; ``ValueError`` listing the registered names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


def create(name: str, model: nn.Module, target_layer=None, **overrides) -> BaseCAM:
    """Shortcut for ``get_method(name).create(model, target_layer, **overrides)``."""
    return get_method(name).create(model, target_layer, **overrides)


def method_names() -> list[str]:
    return list(METHODS)


register("gradcam", "cfcam.methods.base:GradCAM",
         "Grad-CAM (Selvaraju et al. 2017): each channel weighted by its mean gradient")
register("cfcam-readme", "cfcam.methods.base:CFCAM",
         "CF-CAM as the authors' README describes it (preset readme)", preset="readme")
register("cfcam-reference", "cfcam.methods.base:CFCAM",
         "CF-CAM as the authors' published code computes it (preset reference)", preset="reference")

# pytorch-grad-cam baselines (cfcam.methods.baselines) and two reference maps
_BL = "cfcam.methods.baselines:"
register("gradcam++", _BL + "GradCAMPlusPlus", "Grad-CAM++ (Chattopadhay et al. 2018), pytorch-grad-cam's weighting")
register("xgradcam", _BL + "XGradCAM", "XGrad-CAM (Fu et al. 2020), pytorch-grad-cam's weighting")
register("hirescam", _BL + "HiResCAM",
         "HiResCAM (Draelos & Carin 2020): gradient times activation, summed over channels")
register("layercam", _BL + "LayerCAM", "LayerCAM (Jiang et al. 2021): positive gradient times activation")
register("eigencam", _BL + "EigenCAM",
         "EigenCAM (Muhammad & Yeasin 2020): first principal component of the activations")
register("scorecam", _BL + "ScoreCAM", "Score-CAM (Wang et al. 2020): one forward pass per channel (slow)")
register("ablationcam", _BL + "AblationCAM",
         "Ablation-CAM (Desai & Ramaswamy 2020): one forward pass per channel (slow)")
register("random", _BL + "RandomMap", "reference: seeded uniform noise (what chance scores)", seed=0)
register("centre", _BL + "CentreMap", "reference: a centred Gaussian, the same for every image", sigma=0.25)
