"""Baseline CAM methods from pytorch-grad-cam, and two reference maps, inside cfcam's one pipeline.

Two ways of reusing pytorch-grad-cam, chosen per method:

* **Channel weightings** (Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, EigenCAM) need only the activations
  ``A`` and gradients ``G`` of one layer. They are :class:`~cfcam.methods.base.BaseCAM` subclasses whose
  ``explain_one(A, G)`` calls the library's own ``get_cam_image`` (its weighting code, not a rewrite) on what
  cfcam's capture already holds. So every method sees the *same* ``A`` and ``G`` (one forward and one
  partial backward pass for a whole comparison, and noise injected into ``G`` reaches every method the same
  way: the fair robustness protocol depends on this), and the maps equal the library's own (tested).
* **Forward-pass methods** (Score-CAM, Ablation-CAM) run hundreds of extra forward passes of masked inputs or
  ablated channels; their weights are not a function of ``A`` and ``G``. They wrap the whole pytorch-grad-cam
  object (:class:`LibraryCAM`), still behind cfcam's interface (targets, results, context manager).

Reference maps: ``random`` (seeded noise at the layer's resolution: what chance scores) and ``centre`` (a
centred Gaussian: what a "the lesion is usually in the middle" prior scores). Neither looks at the model's
evidence; a metric that cannot tell them from a CAM cannot tell CAMs apart.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.capture import Capture, eval_mode
from ..core.compose import to_heatmaps
from .base import BaseCAM, Explanation

ZERO_NOTE = "the map is zero everywhere: the weighted sum is <= 0 at every position"


@dataclass(frozen=True)
class BaselineResult:
    """One image's result (the :class:`~cfcam.methods.base.CAMResult` protocol): the ``(h, w)`` map after
    ReLU, no fallback, and a note when the map is zero everywhere."""

    cam: np.ndarray
    fallback: None = None

    @property
    def notes(self) -> tuple[str, ...]:
        return () if (np.asarray(self.cam) > 0).any() else (ZERO_NOTE,)


def init_base(explainer: BaseCAM, model: nn.Module, target_layer, reshape_transform) -> None:
    """``BaseCAM.__init__`` with ``reshape_transform`` passed on only when one is given, so that these classes
    work with a ``BaseCAM`` that takes the keyword and say clearly when it does not."""
    if reshape_transform is None:
        BaseCAM.__init__(explainer, model, target_layer)
    else:
        BaseCAM.__init__(explainer, model, target_layer, reshape_transform=reshape_transform)


@functools.cache
def _weights_only_class(library_class: type) -> type:
    return type(f"{library_class.__name__}WeightsOnly", (library_class,),
                {"__init__": lambda self: None, "__del__": lambda self: None})


def _weighting_only(library_class: type):
    """An instance of a pytorch-grad-cam class that registers no hooks: only its weighting code is used."""
    return _weights_only_class(library_class)()


class LibraryWeightingCAM(BaseCAM):
    """A pytorch-grad-cam method that is a function of ``A`` and ``G``: its ``get_cam_image`` on cfcam's capture.

    Subclasses set ``library_name``. ``explain_one`` returns ``ReLU(get_cam_image(A, G))``, exactly what the
    library computes before its own upsampling and min-max scaling (cfcam's pipeline does those, the same way).
    """

    library_name: str  # the pytorch-grad-cam class, imported on first use (importing it costs about a second)

    def __init__(self, model: nn.Module, target_layer=None, reshape_transform=None) -> None:
        init_base(self, model, target_layer, reshape_transform)
        self._library = _weighting_only(_library(self.library_name))

    def explain_one(self, activations, gradients):
        a = activations.detach().float().cpu().numpy()[None]
        g = gradients.detach().float().cpu().numpy()[None]
        cam = np.maximum(self._library.get_cam_image(None, None, None, a, g, False)[0], 0).astype(np.float32)
        return torch.from_numpy(cam), BaselineResult(cam)


def _library(name: str) -> type:
    import pytorch_grad_cam

    return getattr(pytorch_grad_cam, name)


class GradCAMPlusPlus(LibraryWeightingCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018): positive gradients weighted by second/third-order terms."""

    library_name = "GradCAMPlusPlus"


class XGradCAM(LibraryWeightingCAM):
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the normalised activations."""

    library_name = "XGradCAM"


class HiResCAM(LibraryWeightingCAM):
    """HiResCAM (Draelos & Carin 2020): the element-wise product ``G * A`` summed over channels."""

    library_name = "HiResCAM"


class LayerCAM(LibraryWeightingCAM):
    """LayerCAM (Jiang et al. 2021): ``ReLU(G) * A`` summed over channels."""

    library_name = "LayerCAM"


class EigenCAM(LibraryWeightingCAM):
    """EigenCAM (Muhammad & Yeasin 2020): the first principal component of ``A``; ignores ``G`` and the class."""

    library_name = "EigenCAM"


class LibraryCAM(BaseCAM):
    """A whole pytorch-grad-cam object (for methods that need their own forward passes), behind cfcam's interface.

    cfcam's capture still runs first (one forward and backward pass) so that targets are chosen the same way
    as for every other method and ``predictions`` work; then the library object, built for this call and
    released after it, computes the maps (already at the input size and min-max scaled). ``results[i].cam``
    is therefore at the input resolution. The library's own progress bars are silenced.
    """

    library_name: str  # the pytorch-grad-cam class, imported on first use
    library_options: dict = {}  # constructor keywords
    library_attributes: dict = {}  # set on the library object after construction

    def __init__(self, model: nn.Module, target_layer=None, reshape_transform=None, **options) -> None:
        init_base(self, model, target_layer, reshape_transform)
        self.library_class = _library(self.library_name)
        self.options = {**self.library_options, **options}
        self.reshape_transform = getattr(self._grab, "reshape_transform", None) or reshape_transform

    def explain_one(self, activations, gradients):  # pragma: no cover - never called, see explain_capture
        raise TypeError(f"{type(self).__name__} needs the input images, not only A and G: call the explainer")

    def explain_capture(self, capture: Capture, inputs: torch.Tensor, map_images=None) -> Explanation:
        """The library's maps for the classes cfcam's capture chose (``map_images`` is not used: the library
        runs its own passes)."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        layer = self._grab.layer
        with eval_mode(self.model), contextlib.redirect_stderr(io.StringIO()):
            with self.library_class(self.model, [layer], reshape_transform=self.reshape_transform,
                                    **self.options) as lib:
                for name, value in self.library_attributes.items():
                    setattr(lib, name, value)
                maps = None
                maps = lib(inputs.to(capture.activations.device),
                           targets=list(capture.score_targets or [ClassifierOutputTarget(int(t))
                                                                  for t in capture.targets]))
        if maps is None:  # pytorch-grad-cam's __exit__ swallows an IndexError and returns nothing
            raise ValueError(f"pytorch-grad-cam's {self.library_name} failed on layer {self.layer_name!r} with "
                             f"activations of shape {tuple(capture.activations.shape)} (it assumes a channels-first "
                             "CNN layer; its ablation of transformer layers needs a layer type of its own)")
        maps = to_heatmaps(np.asarray(maps, dtype=np.float32), tuple(inputs.shape[-2:]), "minmax")
        return self._keep(Explanation(maps, tuple(BaselineResult(m) for m in maps), capture))


class ScoreCAM(LibraryCAM):
    """Score-CAM (Wang et al. 2020): each channel's upsampled map masks the input; the class score of each
    masked input (softmax over channels) is the weight. One forward pass per channel and image."""

    library_name = "ScoreCAM"
    library_attributes = {"batch_size": 64}  # the library reads it from the instance, not its constructor


class AblationCAM(LibraryCAM):
    """Ablation-CAM (Desai & Ramaswamy 2020): the weight of a channel is the relative drop of the class score
    when that channel is zeroed. One forward pass per channel and image."""

    library_name = "AblationCAM"
    library_options = {"batch_size": 64}


class RandomMap(BaseCAM):
    """Reference: uniform noise at the layer's resolution, from a generator seeded once (``seed``).

    The same seed and the same sequence of calls give the same maps, so a fresh explainer on another model, or
    for another class, draws the same maps again: it scores what chance scores on localisation and
    faithfulness, and it fails the randomisation and class-sensitivity checks by design (it ignores the model
    and the class), which is a useful calibration of those checks.
    """

    def __init__(self, model: nn.Module, target_layer=None, reshape_transform=None, seed: int = 0) -> None:
        init_base(self, model, target_layer, reshape_transform)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def explain_one(self, activations, gradients):
        cam = self._rng.random(tuple(activations.shape[-2:])).astype(np.float32)
        return torch.from_numpy(cam), BaselineResult(cam)


class CentreMap(BaseCAM):
    """Reference: a centred Gaussian (standard deviation ``sigma`` times the map's side), the same for every
    image and class: what a "look in the middle" prior scores."""

    def __init__(self, model: nn.Module, target_layer=None, reshape_transform=None, sigma: float = 0.25) -> None:
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma must be a number > 0, got {sigma!r}")
        init_base(self, model, target_layer, reshape_transform)
        self.sigma = float(sigma)

    def explain_one(self, activations, gradients):
        h, w = activations.shape[-2:]
        y = (np.arange(h) - (h - 1) / 2) / (self.sigma * h)
        x = (np.arange(w) - (w - 1) / 2) / (self.sigma * w)
        cam = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)
        return torch.from_numpy(cam), BaselineResult(cam)
