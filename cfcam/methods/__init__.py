"""CAM methods: the shared explainer pipeline (:mod:`.base`) and the one registry of methods (:mod:`.registry`)."""

from .base import CFCAM, BaseCAM, GradCAM
from .registry import METHODS, Method, create, get_method, method_names, register

__all__ = ["BaseCAM", "CFCAM", "GradCAM", "METHODS", "Method", "create", "get_method", "method_names", "register"]
