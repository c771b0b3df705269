"""One validated configuration object for every step of CF-CAM, with the two named presets.

``reference`` reproduces the authors' published code; ``readme`` follows the workflow written in their
README. Every field is a parameter a notebook slider can move; ``CFCAMConfig.validate`` says what was expected
when a value is out of range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FILTERS = ("reference", "bilateral", "gaussian", "none")
WEIGHTINGS = ("softmax", "gap")
NORMALIZATIONS = ("max", "minmax", "none")
FALLBACKS = ("gradcam", "zero")

#: The pipeline's stages in order: a field's stage (its ``metadata["stage"]``) and every later stage must be
#: recomputed when the field changes. ``output`` is applied after upsampling, outside the core.
STAGES = ("cluster", "filter", "compose", "output")


@dataclass(frozen=True)
class CFCAMConfig:
    """All CF-CAM parameters in one place.

    important_fraction: float, default 0.0 (``readme``) / 0.25 (``reference``)
        Fraction of channels with the largest L2 norm kept as *important*: never clustered, never filtered,
        weighted by their own mean gradient. 0 turns the split off. Implemented as the published code does:
        ``norm >= percentile(norms, 100 * (1 - important_fraction))`` (so ties can keep a little more).
    eps_percentile: float in [0, 100], default 25.0
        DBSCAN ``eps`` is this percentile of the pairwise Euclidean distances between the clustered channels'
        flattened maps (diagonal left out, each pair counted twice, linear interpolation).
    eps_min: float > 0, default 1e-5
        Lower bound on ``eps`` (all-equal channels would otherwise give ``eps = 0``).
    min_samples_fraction: float in [0, 1], default 0.05
        DBSCAN ``min_samples = max(min_samples_floor, int(min_samples_fraction * n_clustered))``.
    min_samples_floor: int >= 1, default 2
        Smallest ``min_samples`` (the published code uses 2).
    filter: {"reference", "bilateral", "gaussian", "none"}, default "bilateral" / "reference"
        How each cluster's mean gradient map is filtered. ``reference`` is the published kernel (one
        Gaussian-times-range kernel, convolved with zero padding); ``bilateral`` a real edge-preserving
        bilateral filter; ``gaussian`` a plain Gaussian blur; ``none`` leaves the map as it is.
    spatial_sigma: float > 0, default 1.0 / 5.0
        Spatial sigma in feature-map pixels (``reference``, ``bilateral``, ``gaussian``).
    range_sigma: float > 0, default 0.2 / 0.1
        Range sigma. For ``bilateral`` it is relative to the map's own value range (max - min), so it means
        the same at any gradient scale; for ``reference`` it is absolute, as published (0.1).
    weighting: {"softmax", "gap"}, default "gap" / "softmax"
        ``gap``: the weights are used as they are (global average pooling of the gradients);
        ``softmax``: the published code's softmax over the kept channels' weights.
    normalize: {"max", "minmax", "none"}, default "minmax" / "max"
        How the upsampled map is scaled to [0, 1]: divide by its max, subtract min and divide by the range,
        or leave as is. A map that is all zero stays all zero.
    fallback: {"gradcam", "zero"}, default "gradcam"
        What to do when no channel survives (no important channel and no cluster): ``gradcam`` uses Grad-CAM
        weights (mean gradient) over all channels; ``zero`` returns an all-zero map. The result names it.
    """

    important_fraction: float = field(default=0.0, metadata={"stage": "cluster"})
    eps_percentile: float = field(default=25.0, metadata={"stage": "cluster"})
    eps_min: float = field(default=1e-5, metadata={"stage": "cluster"})
    min_samples_fraction: float = field(default=0.05, metadata={"stage": "cluster"})
    min_samples_floor: int = field(default=2, metadata={"stage": "cluster"})
    filter: str = field(default="bilateral", metadata={"stage": "filter"})
    spatial_sigma: float = field(default=1.0, metadata={"stage": "filter"})
    range_sigma: float = field(default=0.2, metadata={"stage": "filter"})
    weighting: str = field(default="gap", metadata={"stage": "compose"})
    normalize: str = field(default="minmax", metadata={"stage": "output"})
    fallback: str = field(default="gradcam", metadata={"stage": "compose"})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter and what was expected."""
        _check_number("important_fraction", self.important_fraction, 0.0, 1.0)
        _check_number("eps_percentile", self.eps_percentile, 0.0, 100.0)
        _check_number("eps_min", self.eps_min, 0.0, None, lo_open=True)
        _check_number("min_samples_fraction", self.min_samples_fraction, 0.0, 1.0)
        if isinstance(self.min_samples_floor, bool) or not isinstance(self.min_samples_floor, int) \
                or self.min_samples_floor < 1:
            raise ValueError(f"min_samples_floor must be an integer >= 1, got {self.min_samples_floor!r}")
        _check_choice("filter", self.filter, FILTERS)
        _check_number("spatial_sigma", self.spatial_sigma, 0.0, None, lo_open=True)
        _check_number("range_sigma", self.range_sigma, 0.0, None, lo_open=True)
        _check_choice("weighting", self.weighting, WEIGHTINGS)
        _check_choice("normalize", self.normalize, NORMALIZATIONS)
        _check_choice("fallback", self.fallback, FALLBACKS)

    def replace(self, **changes: Any) -> CFCAMConfig:
        """A copy with some fields changed (validated); unknown names are an error."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def stage_fields(stage: str) -> tuple[str, ...]:
    """The names of the config fields that ``stage`` depends on directly (declared next to each field)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
    return tuple(f.name for f in dataclasses.fields(CFCAMConfig) if f.metadata.get("stage") == stage)


def _check_names(changes: dict) -> None:
    known = {f.name for f in dataclasses.fields(CFCAMConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown CF-CAM parameter(s) {unknown}; expected some of {sorted(known)}")


def _check_number(name, value, lo, hi, lo_open=False, hi_open=False) -> None:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok_type:
        value = float(value)
    if not ok_type or value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (lo is not None and (value < lo or (lo_open and value == lo))) or \
            (hi is not None and (value > hi or (hi_open and value == hi))):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}{right}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")


def _check_choice(name, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


PRESETS: dict[str, CFCAMConfig] = {
    "readme": CFCAMConfig(),
    "reference": CFCAMConfig(
        important_fraction=0.25,
        filter="reference",
        spatial_sigma=5.0,
        range_sigma=0.1,
        weighting="softmax",
        normalize="max",
    ),
}


def make_config(preset: str | CFCAMConfig = "readme", **overrides: Any) -> CFCAMConfig:
    """The preset named ``preset`` (or a given config) with ``overrides`` applied and validated."""
    if isinstance(preset, CFCAMConfig):
        base = preset
    else:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        base = PRESETS[preset]
    return base.replace(**overrides) if overrides else base
