"""cfcam: CF-CAM (Cluster Filter Class Activation Mapping), a tested core for tutorials and a command line.

The core is pure (tensors and a config in, a result out); explainers wrap a model and a layer; the
notebooks and the command line are thin layers over both.
"""

from .capture import ActivationsAndGradients, Capture, resolve_layer
from .compose import normalize, upsample
from .config import PRESETS, CFCAMConfig, make_config
from .core import CFCAMResult, cluster_filter_cam
from .explainers import CFCAM, BaseCAM, GradCAM
from .models import ModelError, load_model
from .viz import IMAGENET_MEAN, IMAGENET_STD, overlay, preprocess, preprocess_batch

__all__ = [
    "ActivationsAndGradients", "BaseCAM", "CFCAM", "CFCAMConfig", "CFCAMResult", "Capture", "GradCAM",
    "IMAGENET_MEAN", "IMAGENET_STD", "ModelError", "PRESETS", "cluster_filter_cam", "load_model", "make_config",
    "normalize", "overlay", "preprocess", "preprocess_batch", "resolve_layer", "upsample",
]
__version__ = "0.1.0"
