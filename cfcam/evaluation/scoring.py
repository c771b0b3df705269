"""The model the confidence metrics score with: a channels-last copy of a CNN, the same probabilities sooner.

Most of an evaluation's model passes only score images (deletion and insertion curves, ROAD, Average Drop and
the published scripts' versions): no hook, no gradient. On the CPU a convolution is faster on channels-last
memory (the demo ResNet's pass of 16 images: 1.26x at one thread), and the probabilities differ from the
model's own by float32 rounding (about 1e-7). So those passes run on a channels-last copy of the model, made
once per run and checked against the model on the run's first images; the maps, the classes explained and
every pass with hooks use the model itself. ``EvalSettings.channels_last=False`` scores on the model itself.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..core.capture import eval_mode

#: the largest difference of a class probability from the model's own that the copy may show on the probe
TOLERANCE = 1e-5


def scoring_model(model: nn.Module, probe: torch.Tensor, tolerance: float = TOLERANCE) -> nn.Module:
    """A channels-last copy of ``model`` (in eval mode) when it has 2-D convolutions and scores ``probe`` as the
    model does (softmax within ``tolerance``); otherwise ``model`` itself."""
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    try:
        fast = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
        with eval_mode(model), torch.inference_mode():
            mine = torch.softmax(model(probe).float(), dim=1)
            theirs = torch.softmax(fast(probe).float(), dim=1)
    except Exception:  # noqa: BLE001 - a model that cannot be copied or converted is scored as it is
        return model
    if mine.shape != theirs.shape or not bool(((mine - theirs).abs() <= tolerance).all()):
        return model
    return fast
