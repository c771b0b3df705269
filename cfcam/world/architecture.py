"""The demo model's architecture: a two-class torchvision ResNet-10 whose ``layer4`` lines up with CAM upsampling.

It lives next to model loading (not in the training code) so that loading the demo model never imports the
trainer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from .synthetic import CLASSES

#: Pixels by which the demo model shifts its input up and left (see ``AlignedResNet``).
ALIGN_SHIFT = 16


class AlignedResNet(ResNet):
    """torchvision's ResNet whose ``layer4`` cells line up with bilinear upsampling.

    In a torchvision ResNet the receptive field of cell ``i`` of the 7x7
    ``layer4`` map is centred on input pixel ``32 * i``, but upsampling a CAM
    bilinearly (``align_corners=False``, like ``cv2.resize``) draws cell ``i``
    at pixel ``32 * i + 15.5``: every CAM lands half a cell (~16 px) down and
    right of what the model looked at.  Shifting the input up and left by
    ``align_shift`` pixels (replicating the last rows/columns) moves the cell
    centres to ``32 * i + 16``, so CAMs point where the evidence is.  It has
    no parameters; weights, ``state_dict`` keys and ``layer4[-1]`` are those
    of the plain ResNet.  The 16 dropped top/left pixels are background here.
    """

    def __init__(self, *args, align_shift: int = ALIGN_SHIFT, **kwargs):
        super().__init__(*args, **kwargs)
        self.align_shift = _check_shift(align_shift)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        s = self.align_shift
        if s:
            x = F.pad(x[..., s:, s:], (0, s, 0, s), mode="replicate")
        return super()._forward_impl(x)


def build_demo_model(align_shift: int = ALIGN_SHIFT) -> nn.Module:
    """Return the untrained demo architecture: a two-class ResNet-10.

    ``align_shift``: input shift in pixels that aligns ``layer4`` with
    bilinear CAM upsampling (default 16; 0 gives the plain torchvision
    ``ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2)``).
    """
    return AlignedResNet(BasicBlock, [1, 1, 1, 1], num_classes=len(CLASSES), align_shift=align_shift)


def _check_shift(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"align_shift must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"align_shift must be >= 0, got {value}")
    return int(value)
