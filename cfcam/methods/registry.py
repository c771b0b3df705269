"""The one registry of CAM methods: a name -> an explainer class and its default options.

The command line's ``--method`` choices, the metrics, the widgets and ``cfcam evaluate`` all read this
mapping, so a new method is one class (a :class:`~cfcam.methods.base.BaseCAM` subclass that overrides
``explain_one``) and one ``register(...)`` line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from . import baselines as bl
from .base import BaseCAM, CFCAM, GradCAM


@dataclass(frozen=True)
class Method:
    """A registered method: its name, explainer class, default constructor options and a one-line summary."""

    name: str
    cls: type
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def create(self, model: nn.Module, target_layer=None, **overrides) -> BaseCAM:
        """The explainer for ``model`` at ``target_layer``, with the default options updated by ``overrides``."""
        return self.cls(model, target_layer, **{**self.options, **overrides})


METHODS: dict[str, Method] = {}


def register(name: str, cls: type, summary: str, **options) -> Method:
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


register("gradcam", GradCAM, "Grad-CAM (Selvaraju et al. 2017): each channel weighted by its mean gradient")
register("cfcam-readme", CFCAM, "CF-CAM as the authors' README describes it (preset readme)", preset="readme")
register("cfcam-reference", CFCAM, "CF-CAM as the authors' published code computes it (preset reference)",
         preset="reference")

# pytorch-grad-cam baselines (cfcam.methods.baselines) and two reference maps
register("gradcam++", bl.GradCAMPlusPlus, "Grad-CAM++ (Chattopadhay et al. 2018), pytorch-grad-cam's weighting")
register("xgradcam", bl.XGradCAM, "XGrad-CAM (Fu et al. 2020), pytorch-grad-cam's weighting")
register("hirescam", bl.HiResCAM, "HiResCAM (Draelos & Carin 2020): gradient times activation, summed over channels")
register("layercam", bl.LayerCAM, "LayerCAM (Jiang et al. 2021): positive gradient times activation")
register("eigencam", bl.EigenCAM, "EigenCAM (Muhammad & Yeasin 2020): first principal component of the activations")
register("scorecam", bl.ScoreCAM, "Score-CAM (Wang et al. 2020): one forward pass per channel (slow)")
register("ablationcam", bl.AblationCAM, "Ablation-CAM (Desai & Ramaswamy 2020): one forward pass per channel (slow)")
register("random", bl.RandomMap, "reference: seeded uniform noise (what chance scores)", seed=0)
register("centre", bl.CentreMap, "reference: a centred Gaussian, the same for every image", sigma=0.25)
