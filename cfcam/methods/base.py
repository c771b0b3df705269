"""Explainers: a model and a layer in, one ``(N, H, W)`` heatmap in [0, 1] per call out.

``BaseCAM`` owns the one pipeline (capture -> per-image map -> upsample -> normalise); each method overrides
only :meth:`BaseCAM.explain_one`, the part that turns one image's activations and gradients into a map.
Explainers are context managers that always remove their hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..core.capture import ActivationsAndGradients, Capture
from ..core.compose import gradcam_map, gradcam_weights, to_heatmaps
from ..core.config import CFCAMConfig, make_config
from ..core.layouts import TransformSpec
from ..core.pipeline import CFCAMResult, cluster_filter_cam
from .targets import choose_target


@dataclass(frozen=True)
class Explanation:
    """What one call explained: ``maps`` ``(N, H, W)`` float32 in [0, 1] at the input's resolution, each
    image's result (the ``(h, w)`` map before upsampling, notes, and the method's own details), and the capture
    (activations, gradients, logits and the target class of each image)."""

    maps: np.ndarray
    results: tuple
    capture: Capture

    @property
    def targets(self) -> list[int]:
        """The class each map explains."""
        return [int(t) for t in self.capture.targets]

    @property
    def predictions(self) -> np.ndarray:
        """Softmax probabilities ``(N, classes)``."""
        return torch.softmax(self.capture.logits.float(), dim=1).cpu().numpy()


class BaseCAM:
    """Shared pipeline. Subclasses implement ``explain_one(activations, gradients) -> (cam, result)``.

    model: the classifier (any ``nn.Module`` returning ``(N, classes)`` logits).
    target_layer: a module of ``model`` or its dotted name (``"layer4[-1]"``); default None picks the usual
        layer of the model's family (see :mod:`cfcam.methods.targets`) and says which in ``self.target``.
    reshape_transform: None, ``"auto"`` (the family's transform), a name (``"none"``, ``"vit"``, ``"swin"``) or a
        callable from the layer's output to ``(N, C, h, w)``, applied to activations and gradients alike.
    output: for a model returning a dict, tuple or output object, what to explain: a key (``"out"``), an index
        or a callable (see :mod:`cfcam.core.outputs`). Targets are class indices or pytorch-grad-cam's callables
        (``ClassifierOutputTarget``, ``SemanticSegmentationTarget``...).

    ``explainer(x)`` returns the maps; ``explainer.explain(x)`` returns an :class:`Explanation` with the
    per-image results and predictions too. The pipeline is capture (:meth:`capture_batch`) -> ``explain_one``
    per image -> :func:`~cfcam.core.compose.to_heatmaps`.
    """

    normalize_mode = "minmax"

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None, *,
                 reshape_transform: TransformSpec | str = None, output=None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.target = choose_target(model, target_layer, reshape_transform)
        self._grab = ActivationsAndGradients(model, self.target.layer, self.target.reshape_transform, output)
        self.model = model
        self.layer_name = self._grab.layer_name
        #: the last call's per-image results and capture (kept for compatibility: prefer :meth:`explain`)
        self.results: list = []
        self.capture: Capture | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target.describe()})"

    def __enter__(self):
        self._grab.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._grab.remove()

    def remove(self) -> None:
        self._grab.remove()

    def explain_one(self, activations: torch.Tensor, gradients: torch.Tensor):
        raise NotImplementedError

    def capture_batch(self, inputs: torch.Tensor, targets: int | Sequence[int] | None = None) -> Capture:
        """One forward and one partial backward pass: the layer's activations and the target logits' gradients."""
        return self._grab(inputs, targets)

    def explain_capture(self, capture: Capture, inputs: torch.Tensor, map_images=None) -> Explanation:
        """``explain_one`` on each image of ``capture``, then the maps at ``inputs``' resolution.

        ``map_images(fn, pairs)`` runs ``fn`` on each ``(activations, gradients)`` pair and returns the results in
        order (default: a loop); a runner may share the images out over threads (:mod:`cfcam.methods.runner`).
        """
        pairs = list(zip(capture.activations, capture.gradients))
        if map_images is None:
            explained = [self.explain_one(a, g) for a, g in pairs]
        else:
            explained = map_images(lambda pair: self.explain_one(*pair), pairs)
        maps = to_heatmaps([cam for cam, _ in explained], tuple(inputs.shape[-2:]), self.normalize_mode)
        return self._keep(Explanation(maps, tuple(result for _, result in explained), capture))

    def _keep(self, explanation: Explanation) -> Explanation:
        self.capture, self.results = explanation.capture, list(explanation.results)
        return explanation

    def explain(self, inputs: torch.Tensor, targets: int | Sequence[int] | None = None) -> Explanation:
        """The maps of ``inputs`` for ``targets`` (None: each image's top class), with results and predictions."""
        return self.explain_capture(self.capture_batch(inputs, targets), inputs)

    def __call__(self, inputs: torch.Tensor, targets: int | Sequence[int] | None = None) -> np.ndarray:
        """Heatmaps ``(N, H, W)`` float32 in [0, 1] at the input's resolution (top class if no target)."""
        return self.explain(inputs, targets).maps

    @property
    def predictions(self) -> np.ndarray:
        """Softmax probabilities ``(N, classes)`` of the last call (prefer ``explain(x).predictions``)."""
        if self.capture is None:
            raise RuntimeError("call the explainer on a batch first")
        return torch.softmax(self.capture.logits.float(), dim=1).cpu().numpy()


class CAMResult(Protocol):
    """What every method's per-image result offers: the ``(h, w)`` map before upsampling, notes in words
    about anything unusual (an all-zero map, a fallback), and the fallback used (None when none was)."""

    cam: np.ndarray
    notes: tuple[str, ...]
    fallback: str | None


@dataclass(frozen=True)
class GradCAMResult:
    cam: np.ndarray  # (h, w) after ReLU
    weights: np.ndarray  # (C,) mean gradient per channel
    fallback: None = None

    @property
    def notes(self) -> tuple[str, ...]:
        if (self.cam > 0).any():
            return ()
        return ("the map is zero everywhere: the weighted sum is <= 0 at every position",)


class GradCAM(BaseCAM):
    """Grad-CAM: weights are the spatial mean of each channel's gradient; ``ReLU(sum_k w_k A_k)``."""

    def explain_one(self, activations, gradients):
        cam = gradcam_map(activations, gradients)
        weights = gradcam_weights(gradients)
        return cam, GradCAMResult(cam.float().cpu().numpy(), weights.float().cpu().numpy())


class CFCAM(BaseCAM):
    """CF-CAM with a preset (``"readme"`` default, or ``"reference"``) and any parameter overridden."""

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None,
                 preset: str | CFCAMConfig = "readme", *, reshape_transform: TransformSpec | str = None,
                 output=None, **overrides) -> None:
        self.config = make_config(preset, **overrides)  # validate before touching the model
        super().__init__(model, target_layer, reshape_transform=reshape_transform, output=output)
        self.normalize_mode = self.config.normalize

    def explain_one(self, activations, gradients):
        result: CFCAMResult = cluster_filter_cam(activations, gradients, self.config)
        return result.cam, result
