"""cfcam: CF-CAM (Cluster Filter Class Activation Mapping), a tested core for tutorials and a command line.

The core is pure (tensors and a config in, a result out); explainers wrap a model and a layer; the
notebooks and the command line are thin layers over both.

The public names are imported on first use (module ``__getattr__``), so that ``import cfcam`` and the
command line's ``--version`` and ``--help`` do not pay for torch and torchvision.
"""

from __future__ import annotations

import importlib

from ._version import __version__  # noqa: F401 - pyproject.toml keeps the number (see _version.py)

# public name -> the module (relative to this package) that defines it
_LAZY = {
    "ActivationsAndGradients": ".core.capture", "Capture": ".core.capture", "resolve_layer": ".core.capture",
    "normalize": ".core.compose", "upsample": ".core.compose",
    "PRESETS": ".core.config", "CFCAMConfig": ".core.config", "make_config": ".core.config",
    "CFCAMResult": ".core.pipeline", "cluster_filter_cam": ".core.pipeline",
    "METHODS": ".methods.registry", "create": ".methods.registry", "method_names": ".methods.registry",
    "CFCAM": ".methods.base", "BaseCAM": ".methods.base", "GradCAM": ".methods.base",
    "Example": ".world.examples", "find_example": ".world.examples", "load_examples": ".world.examples",
    "ModelError": ".world.models", "load_model": ".world.models",
    "IMAGENET_MEAN": ".constants", "IMAGENET_STD": ".constants", "overlay": ".images.viz",
    "preprocess": ".images.viz", "preprocess_batch": ".images.viz",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Import the module that defines the public ``name`` on first use, and keep the name here."""
    if name not in _LAZY:
        raise AttributeError(f"module 'cfcam' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
