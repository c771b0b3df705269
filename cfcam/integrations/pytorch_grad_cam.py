"""CF-CAM as a pytorch-grad-cam method: add it to existing pytorch-grad-cam code with one import.

>>> from cfcam.integrations.pytorch_grad_cam import CFCAM
>>> from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
>>> with CFCAM(model=model, target_layers=[model.layer4[-1]], preset="reference") as cam:
...     maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(1)])

The class takes pytorch-grad-cam's usual arguments (``model``, ``target_layers``, ``reshape_transform``) plus
``preset`` and any CF-CAM parameter as a keyword (see :class:`cfcam.CFCAMConfig`). pytorch-grad-cam captures
the activations and the gradients of the target logits (its ``ClassifierOutputTarget`` is the logit, as in
cfcam); cfcam's pure core (:func:`cfcam.cluster_filter_cam`) turns each image's ``(A, G)`` into the map, and
cfcam's own upsampling and normalisation follow, so the maps equal ``cfcam.CFCAM``'s (the ``reference``
preset divides by the max, where pytorch-grad-cam's min-max scaling would shift a map whose minimum is > 0).
With several target layers the per-layer maps are averaged, as pytorch-grad-cam does. The per-image
:class:`cfcam.CFCAMResult` objects of the last call (clusters, weights, notes, fallback) are in ``results``.
Any pytorch-grad-cam target works (``SemanticSegmentationTarget`` on a segmentation model wrapped to return
one tensor, as pytorch-grad-cam requires). ``eigen_smooth=True`` is refused: CF-CAM's map is its own weighted
sum of filtered channels, and replacing it by the first principal component of the activations would no
longer be CF-CAM (use pytorch-grad-cam's ``EigenCAM`` for that); ``aug_smooth`` works as in pytorch-grad-cam.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.base_cam import BaseCAM

from ..core.compose import to_heatmaps
from ..core.config import CFCAMConfig, make_config
from ..core.pipeline import cluster_filter_cam


class CFCAM(BaseCAM):
    """CF-CAM with pytorch-grad-cam's interface (``preset="readme"`` default, or ``"reference"``, plus overrides)."""

    def __init__(self, model, target_layers, reshape_transform=None, preset: str | CFCAMConfig = "readme",
                 **overrides) -> None:
        self.config = make_config(preset, **overrides)  # validate before hooking the model
        super().__init__(model, target_layers, reshape_transform=reshape_transform)
        self.results: list = []

    def forward(self, input_tensor, targets=None, eigen_smooth: bool = False):
        """pytorch-grad-cam's pass; ``eigen_smooth=True`` is refused before the model runs (see the module)."""
        if eigen_smooth:
            raise ValueError("eigen_smooth=True is not supported by CF-CAM: it would replace CF-CAM's weighted sum "
                             "of filtered channels by the first principal component of the activations, which is "
                             "no longer CF-CAM; call without eigen_smooth (pytorch-grad-cam's EigenCAM computes "
                             "that component)")
        return super().forward(input_tensor, targets, eigen_smooth)

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth=False):
        """``(N, h, w)`` maps (after ReLU, before upsampling) from CF-CAM's core, one image at a time."""
        results = [cluster_filter_cam(a, g, self.config) for a, g in zip(activations, grads)]
        self.results = results
        return np.stack([r.cam for r in results])

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
        size = tuple(input_tensor.shape[-2:])
        per_layer = []
        for i, layer in enumerate(self.target_layers):
            a = self.activations_and_grads.activations[i].cpu().data.numpy()
            g = self.activations_and_grads.gradients[i].cpu().data.numpy()
            cams = torch.from_numpy(self.get_cam_image(input_tensor, layer, targets, a, g, eigen_smooth))
            per_layer.append(to_heatmaps(cams, size, self.config.normalize)[:, None])
        return per_layer

    def aggregate_multi_layers(self, cam_per_target_layer):
        return np.concatenate(cam_per_target_layer, axis=1).mean(axis=1).astype(np.float32)

    def __del__(self):  # a constructor that refused its arguments registered no hooks to release
        if hasattr(self, "activations_and_grads"):
            super().__del__()
