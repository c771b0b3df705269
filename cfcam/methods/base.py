"""Explainers: a model and a layer in, one ``(N, H, W)`` heatmap in [0, 1] per call out.

``BaseCAM`` owns the one pipeline (capture -> per-image map -> upsample -> normalise); each method overrides
only :meth:`BaseCAM.explain_one`, the part that turns one image's activations and gradients into a map.
Explainers are context managers that always remove their hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
from torch import nn

from ..core.capture import ActivationsAndGradients, Capture
from ..core.clustering import worth_threads_per_image
from ..core.compose import gradcam_weights, normalize, upsample, weighted_relu_sum
from ..core.config import CFCAMConfig, make_config
from ..core.layouts import TransformSpec
from ..core.pipeline import CFCAMResult, cluster_filter_cam
from ..core.threads import available_cpus, cpus_free, map_blocks, serial_core, spare_cpus
from .targets import choose_target


class BaseCAM:
    """Shared pipeline. Subclasses implement ``explain_one(activations, gradients) -> (cam, result)``.

    model: the classifier (any ``nn.Module`` returning ``(N, classes)`` logits).
    target_layer: a module of ``model`` or its dotted name (``"layer4[-1]"``); default None picks the usual
        layer of the model's family (see :mod:`cfcam.methods.targets`) and says which in ``self.target``.
    reshape_transform: None, ``"auto"`` (the family's transform), a name (``"none"``, ``"vit"``, ``"swin"``) or a
        callable from the layer's output to ``(N, C, h, w)``, applied to activations and gradients alike.
    """

    normalize_mode = "minmax"

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None, *,
                 reshape_transform: TransformSpec | str = None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.target = choose_target(model, target_layer, reshape_transform)
        self._grab = ActivationsAndGradients(model, self.target.layer, self.target.reshape_transform)
        self.model = model
        self.layer_name = self._grab.layer_name
        self.results: list = []
        self.capture: Capture | None = None
        #: called with no arguments once the model's pass of a call is done, before the per-image maps (the
        #: command line starts its file work there, where it no longer competes with the model's threads)
        self.on_captured = None

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

    def __call__(self, inputs: torch.Tensor, targets: int | Sequence[int] | None = None) -> np.ndarray:
        """Heatmaps ``(N, H, W)`` float32 in [0, 1] at the input's resolution (top class if no target).

        The per-image results stay in ``self.results`` and the raw capture in ``self.capture``.
        """
        cap = self._grab(inputs, targets)
        if self.on_captured is not None:
            self.on_captured()
        cams, results = [], []
        for cam, result in self._explain_all(cap):
            cams.append(torch.as_tensor(cam, dtype=torch.float32).cpu())
            results.append(result)
        self.capture, self.results = cap, results
        maps = normalize(upsample(torch.stack(cams), tuple(inputs.shape[-2:])), self.normalize_mode)
        return maps.numpy().astype(np.float32)

    def _explain_all(self, cap: Capture) -> list:
        """``explain_one`` for every image of the capture, in order; in parallel when :meth:`_in_threads`.

        The calling thread and the core's pool threads take the images in turn (:func:`map_blocks`), torch on
        one thread each and each image's core in its own thread, so they never wait on each other (see
        :mod:`cfcam.core.threads`). Only when the model's pass just kept a second CPU busy for this process
        (:func:`cpus_free`): with a core taken by another process, a thread holding the GIL can lose its CPU
        and stall the others. Otherwise the plain loop, where a large product may still use the CPUs the pass
        had (:func:`spare_cpus`)."""
        pairs = list(zip(cap.activations, cap.gradients))
        cpus = min(available_cpus(), cpus_free(cap.cpus_used))
        if len(pairs) <= 1 or cpus <= 1 or not self._in_threads(cap):
            with spare_cpus(cpus):
                return [self.explain_one(a, g) for a, g in pairs]

        def one(pair):
            with serial_core():
                return self.explain_one(*pair)

        return map_blocks(one, pairs)

    def _in_threads(self, cap: Capture) -> bool:
        """Whether to share this capture's images out between this thread and the core's threads, one image a
        thread: only when ``explain_one`` is costly and mostly numpy/torch work that releases the GIL (none
        here; CF-CAM's core on large maps)."""
        return False

    @property
    def predictions(self) -> np.ndarray:
        """Softmax probabilities ``(N, classes)`` of the last call."""
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
        weights = gradcam_weights(gradients)
        cam = weighted_relu_sum(activations, weights)
        return cam, GradCAMResult(cam.float().cpu().numpy(), weights.float().cpu().numpy())


class CFCAM(BaseCAM):
    """CF-CAM with a preset (``"readme"`` default, or ``"reference"``) and any parameter overridden."""

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None,
                 preset: str | CFCAMConfig = "readme", *, reshape_transform: TransformSpec | str = None,
                 **overrides) -> None:
        self.config = make_config(preset, **overrides)  # validate before touching the model
        super().__init__(model, target_layer, reshape_transform=reshape_transform)
        self.normalize_mode = self.config.normalize

    def explain_one(self, activations, gradients):
        result: CFCAMResult = cluster_filter_cam(activations, gradients, self.config)
        return result.cam, result

    def _in_threads(self, cap: Capture) -> bool:
        _, channels, h, w = cap.activations.shape
        return worth_threads_per_image(channels, h * w)

