"""What to differentiate: the model's output (selected from a dict, tuple or output object) and each image's score.

Two conventions for targets, both accepted:

* class indices (cfcam's): None (each image's top class), an int for every image, or one int per image; the
  score is the logit ``output[i, class]`` of a ``(N, classes)`` output;
* callables (pytorch-grad-cam's): one callable for every image, or one per image, each taking one image's
  output (``output[i]``) and returning a scalar, e.g. ``ClassifierOutputTarget(3)``,
  ``BinaryClassifierOutputTarget(1)``, ``SemanticSegmentationTarget(category, mask)``.

A model that returns a dict (torchvision's segmentation models: ``{"out": ..., "aux": ...}``), a tuple or an
output object (``.logits``) needs an ``output`` selector: a key, an index, an attribute name or a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import numpy as np
import torch

OutputSpec = Union[None, str, int, Callable[[Any], Any]]

_WRAPPER = ("class Selected(torch.nn.Module):\n"
            "    def __init__(self, model): super().__init__(); self.model = model\n"
            "    def forward(self, x): return self.model(x){pick}")


def check_output_spec(spec: OutputSpec) -> OutputSpec:
    """``spec`` if it is None, a key (str), an index (int) or a callable; ``ValueError`` naming ``output``."""
    whole_number = isinstance(spec, int) and not isinstance(spec, bool)
    if spec is None or callable(spec) or isinstance(spec, str) or whole_number:
        return spec
    raise ValueError(f"output must be None, a key (str), an index (int) or a callable that takes the model's "
                     f"output and returns the (N, ...) tensor to explain, got {type(spec).__name__}")


def select_output(output: Any, spec: OutputSpec) -> torch.Tensor:
    """The tensor to explain in the model's ``output``, per ``spec``; ``ValueError`` with the fix otherwise."""
    if spec is None:
        picked = output
    elif callable(spec):
        try:
            picked = spec(output)
        except Exception as exc:
            raise ValueError(f"output: the selector failed on the model's output ({_describe(output)}): "
                             f"{type(exc).__name__}: {exc}") from exc
    elif isinstance(spec, str):
        if isinstance(output, dict) and spec in output:
            picked = output[spec]
        elif not isinstance(output, dict) and hasattr(output, spec):
            picked = getattr(output, spec)
        else:
            raise ValueError(f"output={spec!r}: the model's output ({_describe(output)}) has no such key or attribute")
    else:
        if not isinstance(output, (tuple, list)) or not -len(output) <= spec < len(output):
            raise ValueError(f"output={spec!r}: the model's output ({_describe(output)}) has no such index")
        picked = output[spec]
    if isinstance(picked, torch.Tensor):
        return picked
    if spec is None:
        raise ValueError(f"the model returns {_describe(output)}, not one tensor: choose what to explain with "
                         f"output= ({_suggest(output)}), or wrap the model:\n"
                         + _WRAPPER.format(pick=_pick(output)))
    raise ValueError(f"output={spec!r} selects {_describe(picked)} from the model's output, not a tensor")


def as_scores(targets, output: torch.Tensor, as_classes: Callable) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
    """``(sum of the scores, target per image, the callables or None)`` for ``targets`` on ``output``.

    Class targets go through ``as_classes(targets, logits)`` and need ``(N, classes)`` logits. Callables are
    called on each image's output; the target recorded for an image is the callable's ``category`` when it has
    an int one (pytorch-grad-cam's targets do), else the top class of a ``(N, classes)`` output, else -1.
    """
    n = output.shape[0]
    callables = _callables(targets, n)
    if callables is None:
        if output.dim() != 2:
            raise ValueError(
                f"class targets need (N, classes) logits, but the model's output has shape {tuple(output.shape)}; "
                "pass a callable target that turns one image's output into a score, e.g. pytorch-grad-cam's "
                "SemanticSegmentationTarget(category, mask) for a segmentation model")
        t = as_classes(targets, output.detach())
        return output.gather(1, t[:, None]).sum(), t, None
    scores = []
    for i, (target, one) in enumerate(zip(callables, output)):
        try:
            score = target(one)
        except Exception as exc:
            raise ValueError(f"target {i} ({_name(target)}) failed on image {i}'s output of shape "
                             f"{tuple(one.shape)}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(score, torch.Tensor) or score.numel() != 1 or not score.is_floating_point():
            got = f"shape {tuple(score.shape)}" if isinstance(score, torch.Tensor) else type(score).__name__
            raise ValueError(f"target {i} ({_name(target)}) must return one floating-point score per image, got {got}")
        scores.append(score.reshape(()))
    return torch.stack(scores).sum(), _recorded(callables, output), tuple(callables)


def _callables(targets, n: int) -> list | None:
    """The per-image callables of ``targets``, or None when they are class indices."""
    if callable(targets) and not isinstance(targets, (torch.Tensor, np.ndarray)):
        return [targets] * n
    if isinstance(targets, (list, tuple)) and targets and any(callable(t) for t in targets):
        if not all(callable(t) for t in targets):
            raise ValueError("targets mixes callables and class indices: give one kind, e.g. "
                             "[ClassifierOutputTarget(c) for c in classes]")
        if len(targets) != n:
            raise ValueError(f"targets must give one callable per image: got {len(targets)} for a batch of {n}")
        return list(targets)
    return None


def _recorded(callables: list, output: torch.Tensor) -> torch.Tensor:
    """What ``Capture.targets`` says for callable targets (see :func:`as_scores`)."""
    top = output.detach().argmax(1) if output.dim() == 2 else None
    recorded = []
    for i, target in enumerate(callables):
        category = getattr(target, "category", None)
        if isinstance(category, (int, np.integer)) and not isinstance(category, bool):
            recorded.append(int(category))
        else:
            recorded.append(int(top[i]) if top is not None else -1)
    return torch.tensor(recorded, dtype=torch.long, device=output.device)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:6]}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}: " + ", ".join(_short(v) for v in value[:4])
    return f"a {type(value).__name__}"


def _short(value) -> str:
    return f"tensor{tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def _suggest(output) -> str:
    if isinstance(output, dict):
        return f"a key such as output={next(iter(output))!r}"
    if isinstance(output, (tuple, list)):
        return "an index such as output=0"
    if hasattr(output, "logits"):
        return "an attribute such as output='logits'"
    return "a key, an index, an attribute name, or a callable such as output=lambda out: out.logits"


def _pick(output) -> str:
    if isinstance(output, dict):
        return f"[{next(iter(output))!r}]"
    if isinstance(output, (tuple, list)):
        return "[0]"
    return ".logits"


def _name(target) -> str:
    return type(target).__name__ if not hasattr(target, "__name__") else target.__name__

