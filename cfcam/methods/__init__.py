"""CAM methods: the shared explainer pipeline (:mod:`.base`) and the one registry of methods (:mod:`.registry`).

The registry is light (no torch); the explainer classes are imported on first use.
"""

from .registry import METHODS, Method, create, get_method, method_names, register

__all__ = ["BaseCAM", "CFCAM", "GradCAM", "METHODS", "Method", "create", "get_method", "method_names", "register"]


def __getattr__(name: str):
    """``BaseCAM``, ``CFCAM`` and ``GradCAM`` from :mod:`.base`, imported when first asked for."""
    if name in ("BaseCAM", "CFCAM", "GradCAM"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module 'cfcam.methods' has no attribute {name!r}")
