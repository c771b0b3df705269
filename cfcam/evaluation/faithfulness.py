"""Faithfulness: does the model's confidence depend on the pixels the map ranks high?

All scores use ``p_c``, the softmax probability of the explained class ``c``, on normalised ``(N, 3, H, W)``
inputs and maps ``(N, H, W)`` in [0, 1] at the input size.

* **Deletion / insertion AUC** (Petsiuk et al. 2018, RISE): pixels in decreasing map order are replaced by a
  *substrate* (deletion; low AUC is good) or revealed on top of it (insertion; high AUC is good), ``p_c`` at
  each step, trapezoid area over the fraction 0..1. Substrates: ``"blur"`` (the image blurred with a
  Gaussian of sigma 10 px, RISE's insertion start, default here) or ``"mean"`` (0 in normalised space: the
  ImageNet mean colour, as the published CF-CAM script does). ``steps=101`` with ``"mean"`` is exactly the
  published script (1 % of the pixels per step, the last step all of them). Written here because
  pytorch-grad-cam has no deletion/insertion curve; it is a sort and a batched forward pass.
* **ROAD** (Rong et al. 2022, "Remove and Debias"): pytorch-grad-cam's ``ROADCombined`` (noisy linear
  imputation instead of a fixed colour, so the removal leaks less shape), averaging "least relevant first"
  minus "most relevant first" confidence changes at the given percentiles; higher is better.
* **Average Drop and Increase in Confidence** (Chattopadhay et al. 2018, Grad-CAM++), through
  pytorch-grad-cam's ``CamMultImageConfidenceChange`` (it multiplies the *normalised* input by the map, so
  dark map regions become the mean colour): drop ``= max(0, Y - O) / Y * 100``, increase ``= [O > Y]``.
* **The published scripts' versions** (see ``/spec``: "The published evaluation protocol"): Average Drop with a
  binary mask ``map > 0.5`` and black elsewhere, *not clipped at 0*; "Average Increase" as the signed change
  ``p_c(inserted) - p_c(baseline)`` with mask ``map > 0.3`` over a baseline tensor filled with the ImageNet
  mean *values* in normalised space.

What they do NOT show: whether a human would find the map right, or the model's reasoning on natural
images. Every perturbation pushes images off the training distribution, so part of a confidence change
measures the model's reaction to blur, black or grey patches, not the pixels' importance; the substrate
changes the ranking of methods. On this demo world the lesion is small and any map that covers it scores
well, so these metrics separate CAMs from a random map but hardly from each other. The maps are undefined
as rankings when all zero: those images get NaN for deletion, insertion and ROAD.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..core.capture import eval_mode
from .localisation import is_zero_map

SUBSTRATES = ("blur", "mean")


def class_probability(model: nn.Module, inputs: torch.Tensor, targets, batch_size: int = 64) -> np.ndarray:
    """``p_c`` per image: softmax probability of ``targets[i]`` for ``inputs[i]`` (no gradients, eval mode)."""
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long).reshape(-1)
    if len(targets) != len(inputs):
        raise ValueError(f"one target per input expected, got {len(targets)} for {len(inputs)}")
    out = []
    with eval_mode(model), torch.inference_mode():  # no_grad's numbers, without autograd's bookkeeping
        for i in range(0, len(inputs), batch_size):
            p = torch.softmax(model(inputs[i:i + batch_size]).float(), dim=1)
            out.append(p.gather(1, targets[i:i + batch_size, None])[:, 0])
    return torch.cat(out).cpu().numpy().astype(np.float64)


def substrate(inputs: torch.Tensor, kind: str = "blur", sigma: float = 10.0) -> torch.Tensor:
    """What deleted pixels become: the blurred image (``blur``) or 0, the mean colour (``mean``)."""
    if kind == "mean":
        return torch.zeros_like(inputs)
    if kind == "blur":
        side = min(inputs.shape[-2:])
        size = min(int(2 * round(3 * sigma) + 1), side if side % 2 else side - 1)  # reflect padding < side
        return gaussian_blur(inputs, kernel_size=[size, size], sigma=[sigma, sigma])
    raise ValueError(f"substrate must be one of {list(SUBSTRATES)}, got {kind!r}")


def step_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels changed after each step: ``k * (pixels // (steps - 1))``, the last step all of them (the
    published script's schedule for ``steps=101``)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    counts = np.arange(steps) * (pixels // (steps - 1))
    counts[-1] = pixels
    return counts


def auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under each curve ``(N, steps)`` over the fraction 0..1 (NaN rows stay NaN)."""
    curves = np.asarray(curves, dtype=np.float64)
    return np.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)


def deletion_insertion_curves(model: nn.Module, inputs: torch.Tensor, maps, targets, steps: int = 21,
                              kind: str = "blur", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(deletion, insertion)`` curves ``(N, steps)`` of ``p_c``; rows of all-zero maps are NaN.

    Pixels are ranked by decreasing map value (stable sort: ties keep raster order).
    """
    maps = np.asarray(maps)
    n, h, w = maps.shape
    counts = step_counts(h * w, steps)
    zero = is_zero_map(maps)
    base = substrate(inputs, kind) if (~zero).any() else inputs
    dele = np.full((n, steps), np.nan)
    ins = np.full((n, steps), np.nan)
    for i in np.flatnonzero(~zero):
        order = torch.from_numpy(np.argsort(-maps[i].reshape(-1), kind="stable").copy())
        revealed = torch.zeros((steps, h * w), dtype=torch.bool)
        for k, c in enumerate(counts):
            revealed[k, order[:c]] = True
        revealed = revealed.reshape(steps, 1, h, w)
        x, s = inputs[i:i + 1], base[i:i + 1]
        deleted = torch.where(revealed, s, x)
        inserted = torch.where(revealed, x, s)
        probs = class_probability(model, torch.cat([deleted, inserted]), [int(targets[i])] * (2 * steps), batch_size)
        dele[i], ins[i] = probs[:steps], probs[steps:]
    return dele, ins


def _normalised_constant(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype).view(1, 3, 1, 1).expand_as(like)


def average_drop_published(model, inputs, maps, targets, p_original=None, batch_size: int = 64) -> np.ndarray:
    """The published script: ``(Y - O) / Y * 100`` with ``O`` on the image kept where ``map > 0.5``, black
    elsewhere; not clipped at 0 (a negative drop is a rise)."""
    mask = torch.from_numpy(np.asarray(maps) > 0.5)[:, None]
    black = (0.0 - _normalised_constant(IMAGENET_MEAN, inputs)) / _normalised_constant(IMAGENET_STD, inputs)
    y = class_probability(model, inputs, targets, batch_size) if p_original is None else np.asarray(p_original)
    o = class_probability(model, torch.where(mask, inputs, black), targets, batch_size)
    return (y - o) / y * 100.0


def average_increase_published(model, inputs, maps, targets, p_baseline=None, batch_size: int = 64) -> np.ndarray:
    """The published script's "Average Increase": ``p_c(baseline*(1-m) + x*m) - p_c(baseline)`` with
    ``m = map > 0.3`` and a baseline tensor *filled with the ImageNet mean values* in normalised space
    (``p_baseline``, the baseline's ``p_c``, can be passed when it is known already)."""
    mask = torch.from_numpy(np.asarray(maps) > 0.3)[:, None].to(inputs.dtype)
    baseline = mean_value_baseline(inputs)
    inserted = baseline * (1 - mask) + inputs * mask
    if p_baseline is None:
        p_baseline = class_probability(model, baseline, targets, batch_size)
    return class_probability(model, inserted, targets, batch_size) - np.asarray(p_baseline)


def mean_value_baseline(inputs: torch.Tensor) -> torch.Tensor:
    """The published script's insertion baseline: the normalised tensor filled with (0.485, 0.456, 0.406)."""
    return _normalised_constant(IMAGENET_MEAN, inputs).contiguous()


def _softmax_targets(targets):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    return [ClassifierOutputSoftmaxTarget(int(t)) for t in targets]


def masked_confidence(model, inputs, maps, targets) -> np.ndarray:
    """``p_c(x * map)`` per image, through pytorch-grad-cam's ``CamMultImageConfidenceChange``."""
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange

    with eval_mode(model):
        return np.asarray(CamMultImageConfidenceChange()(inputs, np.asarray(maps, dtype=np.float32),
                                                         _softmax_targets(targets), model, return_diff=False),
                          dtype=np.float64)


def chattopadhay_drop_increase(model, inputs, maps, targets, p_original=None) -> tuple[np.ndarray, np.ndarray]:
    """Chattopadhay et al.'s Average Drop ``max(0, Y - O) / Y * 100`` and Increase in Confidence ``[O > Y]``
    per image, with the map as a soft mask (one forward pass of the masked images serves both)."""
    y = class_probability(model, inputs, targets) if p_original is None else np.asarray(p_original)
    o = masked_confidence(model, inputs, maps, targets)
    return np.maximum(0.0, y - o) / y * 100.0, (o > y).astype(np.float64)


def road(model, inputs, maps, targets, percentiles=(80,), seed: int = 0) -> np.ndarray:
    """pytorch-grad-cam's ``ROADCombined`` per image (its imputation noise seeded; the same scores, computed
    faster by :mod:`cfcam.evaluation.imputation`); NaN for all-zero maps."""
    from .imputation import road_combined

    maps = np.asarray(maps, dtype=np.float32)
    out = np.full(len(maps), np.nan)
    ok = np.flatnonzero(~is_zero_map(maps))
    if ok.size:
        torch.manual_seed(seed)
        with eval_mode(model), torch.inference_mode():
            scores = road_combined(percentiles, inputs[ok], maps[ok], _softmax_targets(np.asarray(targets)[ok]),
                                   model)
        out[ok] = np.asarray(scores, dtype=np.float64)
    return out
