"""cfcam: CF-CAM (Cluster Filter Class Activation Mapping), a tested core for tutorials and a command line.

The core is pure (tensors and a config in, a result out); explainers wrap a model and a layer; the
notebooks and the command line are thin layers over both.
"""

from .core.capture import ActivationsAndGradients, Capture, resolve_layer
from .core.compose import normalize, upsample
from .core.config import PRESETS, CFCAMConfig, make_config
from .core.pipeline import CFCAMResult, cluster_filter_cam
from .methods import METHODS, create, method_names
from .methods.base import CFCAM, BaseCAM, GradCAM
from .world.examples import Example, find_example, load_examples
from .world.models import ModelError, load_model
from .images.viz import IMAGENET_MEAN, IMAGENET_STD, overlay, preprocess, preprocess_batch

__all__ = [
    "ActivationsAndGradients", "BaseCAM", "CFCAM", "CFCAMConfig", "CFCAMResult", "Capture", "Example", "GradCAM",
    "IMAGENET_MEAN", "IMAGENET_STD", "METHODS", "ModelError", "PRESETS", "cluster_filter_cam", "create", "find_example", "load_examples", "load_model", "make_config", "method_names",
    "normalize", "overlay", "preprocess", "preprocess_batch", "resolve_layer", "upsample",
]
__version__ = "0.1.0"
