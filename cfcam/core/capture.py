"""Capture a layer's activations and the gradients of chosen target logits with respect to them.

One forward hook, no module backward hooks (they break on in-place ReLUs and are deprecated): the hook swaps
the layer's output for a fresh leaf tensor, and ``torch.autograd.grad`` differentiates the target logits with
respect to that leaf only. The forward pass up to the layer runs without building a graph, so the backward
pass covers only the layers after it, and no parameter's ``.grad`` is touched. Hooks are removed when the
context manager exits, also after an exception; the model's train/eval modes are restored after each call.

Targets are class indices or pytorch-grad-cam's callables, and a model returning a dict, tuple or output object
is read through an ``output`` selector (see :mod:`cfcam.core.outputs`). A capture holds a lock on its model for
the whole pass, so one explainer (or several on one model) can be called from several threads: the passes take
turns, and a hook only records the pass of the thread that started it.
"""

from __future__ import annotations

import difflib
import re
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .layouts import TransformSpec, check_layout, get_transform, transform_name
from .outputs import OutputSpec, as_scores, check_output_spec, select_output
from .tokens import GridProbe


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """``(name, module)`` for a module of ``model`` or a dotted name such as ``"layer4.2"``/``"layer4[-1]"``.

    An unknown name gives a ``ValueError`` that lists the closest existing names.
    """
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ValueError("target_layer is a module that is not part of the model")
    if not isinstance(layer, str) or not layer.strip():
        raise ValueError(f"target_layer must be a module of the model or a dotted name like 'layer4.1', got {layer!r}")
    parts = [p for p in re.split(r"\.|\[|\]", layer.strip()) if p != ""]
    module: nn.Module = model
    resolved: list[str] = []
    for part in parts:
        children = dict(module.named_children())
        if part in children:
            module = children[part]
        elif re.fullmatch(r"-?\d+", part) and len(children) and -len(children) <= int(part) < len(children):
            key = list(children)[int(part)]
            module = children[key]
            part = key
        else:
            names = [n for n, _ in model.named_modules() if n]
            close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"target_layer {layer!r}: the model has no module {'.'.join(resolved + [part])!r}"
                             f"{hint} (list them with [n for n, _ in model.named_modules()])")
        resolved.append(part)
    return ".".join(resolved), module


#: Modules whose 4-D output is always ``(N, C, h, w)``.
_CHANNELS_FIRST = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                   nn.AdaptiveMaxPool2d, nn.GroupNorm, nn.InstanceNorm2d)


@contextmanager
def eval_mode(model: nn.Module):
    """Run the block with ``model`` in eval mode, then give every submodule back its own train/eval mode."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for module, mode in modes:
            module.training = mode


_MODEL_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The lock a capture holds on ``model`` for its whole pass (eval mode, hooks and grad mode are per pass)."""
    with _LOCKS_LOCK:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock


@dataclass
class Capture:
    """What one forward/backward pass captured for a batch."""

    activations: torch.Tensor  # (N, C, h, w), detached
    gradients: torch.Tensor  # (N, C, h, w), d score / d activations
    logits: torch.Tensor  # the (selected) model output, detached: (N, classes) for a classifier
    targets: torch.Tensor  # (N,) long: the class each gradient is taken for (a callable's category, else the top
    #                        class of (N, classes) logits, else -1)
    layer_name: str
    score_targets: tuple | None = None  # the callables the scores came from, when targets were callables


def as_targets(targets, logits: torch.Tensor) -> torch.Tensor:
    """Target classes per image: None -> top class; an int -> the same for all; a sequence -> one each.

    Only whole numbers are classes: a float (1.9 would silently become class 1), a bool or a string (a class
    *name*: look its index up first) is refused with a ``ValueError`` naming ``targets``.
    """
    n, classes = logits.shape
    if targets is None:
        return logits.argmax(dim=1)
    if isinstance(targets, (int, np.integer)) and not isinstance(targets, (bool, np.bool_)):
        targets = [int(targets)] * n
    t = _class_indices(targets).to(logits.device).reshape(-1)
    if t.numel() != n:
        raise ValueError(f"targets must give one class per image: got {t.numel()} for a batch of {n}")
    bad = t[(t < 0) | (t >= classes)]
    if bad.numel():
        raise ValueError(f"target class {int(bad[0])} is out of range for a model with {classes} outputs "
                         f"(expected 0..{classes - 1})")
    return t


def _class_indices(targets) -> torch.Tensor:
    """``targets`` (a sequence, array or tensor of whole numbers) as a long tensor; ``ValueError`` otherwise."""
    expected = "expected None, an int class index, or a sequence/array/tensor of int class indices"
    if isinstance(targets, (str, bytes)):
        raise ValueError(f"targets must be class indices, got the string {targets!r} ({expected}; for a class "
                         "name, pass its index, e.g. classes.index(name))")
    try:
        t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"targets must be class indices, got {type(targets).__name__} ({expected})") from exc
    if not _is_integer_dtype(t.dtype):
        shown = t.reshape(-1)[:3].tolist() if t.numel() else []
        raise ValueError(f"targets must be int class indices, got {t.dtype} values {shown} ({expected}; a "
                         "float is not rounded: 1.9 is not class 1)")
    return t.long()


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    """True for torch's signed and unsigned integer dtypes."""
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


class ActivationsAndGradients:
    """Context manager capturing ``target_layer``'s output and the gradient of the target logits.

    >>> with ActivationsAndGradients(model, "layer4") as grab:
    ...     cap = grab(batch, targets=None)   # top class of each image

    ``reshape_transform`` (None, a name from :data:`cfcam.core.layouts.TRANSFORMS`, or a callable) turns the
    layer's output into ``(N, C, h, w)``; it is applied to the activations and the gradients alike, and its
    result is checked against the input. Without one, an output whose channels-first layout cannot be
    established is refused (see :func:`cfcam.core.layouts.check_layout`). ``vit`` reads the patch grid and the
    prefix tokens from the model (see :mod:`cfcam.core.tokens`). ``output`` selects the tensor to explain from a
    model that returns a dict, tuple or output object: a key, an index or a callable.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module | str,
                 reshape_transform: TransformSpec = None, output: OutputSpec = None) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.output = check_output_spec(output)
        self.layer_name, self.layer = resolve_layer(model, target_layer)
        transform = get_transform(reshape_transform)
        self._transform_name = None if transform is None else (
            reshape_transform if isinstance(reshape_transform, str) else transform_name(transform))
        self._tokens = None
        if getattr(transform, "needs_token_layout", False):  # 'vit': grid and prefix come from the model
            self._tokens = GridProbe(model)
            self._layout = None
            transform = self._bound_tokens(transform)
        self.reshape_transform = transform
        # a layer that can only output (N, C, h, w) declares the layout; a transform's result is checked
        self._declared = isinstance(self.layer, _CHANNELS_FIRST) and transform is None
        self._handle = None
        self._active = False
        self._owner: int | None = None
        self._lock = threading.RLock()
        self._outputs: list[torch.Tensor] = []

    def _bound_tokens(self, transform):
        """A one-argument transform reading tokens with the token layout of the last pass."""
        def reshape(tokens):
            layout = self._layout  # None before a pass, or when the layer gives no tokens: the transform says so
            return transform(tokens, *((layout.grid, layout.prefix) if layout is not None else (None, None)))

        return reshape

    # -- hook management -------------------------------------------------------------------------------
    def __enter__(self) -> ActivationsAndGradients:
        if self._handle is None:
            self._handle = self.layer.register_forward_hook(self._hook)
        if self._tokens is not None:
            self._tokens.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove the hook (safe to call more than once)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._tokens is not None:
            self._tokens.detach()

    def _hook(self, module, inputs, output):
        if not self._active or threading.get_ident() != self._owner:  # another use of the model: leave it alone
            return None
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            what = f"a {output.dtype} tensor" if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"target layer {self.layer_name!r} must output one floating-point tensor, got {what}")
        if output.requires_grad:  # a graph is already being built (grad mode on, or another hook's leaf)
            captured = output
        else:
            captured = output.detach().requires_grad_(True)
            torch.set_grad_enabled(True)  # the layers after this one build the graph; restored by __call__
        self._outputs.append(captured)
        return captured.clone()  # later in-place ops (e.g. ReLU(inplace=True)) must not touch what we keep

    def _to_maps(self, output: torch.Tensor) -> torch.Tensor:
        if self.reshape_transform is None:
            return output
        try:
            maps = self.reshape_transform(output)
        except Exception as exc:  # a user's callable: say where it failed
            layout = f" (the model's tokens: {self._layout.explain()})" if self._tokens is not None and \
                self._layout is not None else ""
            raise ValueError(f"reshape_transform {self._transform_name!r} failed on the output of "
                             f"{self.layer_name!r} with shape {tuple(output.shape)}: {exc}{layout}") from exc
        return maps.contiguous() if isinstance(maps, torch.Tensor) else maps

    # -- the capture -----------------------------------------------------------------------------------
    def __call__(self, inputs: torch.Tensor, targets=None) -> Capture:
        """Capture one batch; ``targets``: None, a class index, one per image, or callables (see
        :mod:`cfcam.core.outputs`). Thread-safe: the pass holds the model's lock."""
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"inputs must be a (N, 3, H, W) tensor batch, got {shape}")
        if inputs.shape[0] == 0:
            raise ValueError(f"inputs is an empty batch (shape {tuple(inputs.shape)}): give at least one image")
        if torch.is_inference_mode_enabled():
            raise RuntimeError("ActivationsAndGradients needs gradients, which torch.inference_mode() turns off: "
                               "call it outside that block (torch.no_grad() around it is fine)")
        if inputs.is_inference():  # made under inference_mode: a normal copy can take part in autograd
            inputs = inputs.clone()
        with model_lock(self.model), self._lock:
            if self._handle is None:
                with self:
                    return self._capture(inputs, targets)
            return self._capture(inputs, targets)

    def _capture(self, inputs: torch.Tensor, targets) -> Capture:
        param = next(self.model.parameters(), None)
        if param is not None:
            inputs = inputs.to(device=param.device, dtype=param.dtype)
        grad_mode = torch.is_grad_enabled()
        self._outputs = []
        if self._tokens is not None:
            self._tokens.grid, self._layout = None, None
        self._owner, self._active = threading.get_ident(), True
        try:
            with eval_mode(self.model), torch.no_grad():
                raw = self._forward(inputs)
            if not self._outputs:
                raise ValueError(f"target_layer {self.layer_name!r} was not used in the forward pass")
            if len(self._outputs) > 1:
                raise ValueError(f"target_layer {self.layer_name!r} ran {len(self._outputs)} times in one forward "
                                 "pass; choose a layer that runs once")
            leaf = self._outputs[0]
            with torch.enable_grad():
                output = select_output(raw, self.output)
                if output.dim() < 1 or output.shape[0] != inputs.shape[0]:
                    raise ValueError(f"the model's output has shape {tuple(output.shape)}, not one row per image "
                                     f"of the batch of {inputs.shape[0]}")
                selected, t, callables = as_scores(targets, output, as_targets)
            grads = torch.autograd.grad(selected, leaf, allow_unused=True)[0] if selected.requires_grad else None
            if grads is None:
                raise ValueError(f"the target scores do not depend on target_layer {self.layer_name!r}: choose a "
                                 "layer the model's output is computed from")
            hw = tuple(inputs.shape[-2:])
            if self._tokens is not None and leaf.dim() == 3:
                self._layout = self._tokens.layout(self.layer_name, hw)
            acts, grads = self._to_maps(leaf.detach()), self._to_maps(grads.detach())
            check_layout(acts, self.layer_name, hw, self._declared, transform=self._transform_name,
                         raw_shape=tuple(leaf.shape))
            return Capture(acts, grads, output.detach(), t, self.layer_name, callables)
        finally:
            self._active, self._owner = False, None
            self._outputs = []
            torch.set_grad_enabled(grad_mode)

    def _forward(self, inputs: torch.Tensor):
        """The model on ``inputs``; a failure on images under 32 px is explained as such (ResNets and most
        ImageNet models shrink their input 32 times, so smaller images vanish inside the network)."""
        h, w = inputs.shape[-2:]
        try:
            return self.model(inputs)
        except (RuntimeError, ValueError) as exc:
            if min(h, w) >= 32:
                raise
            raise ValueError(f"inputs of {h}x{w} pixels are too small for this model (it failed with: "
                             f"{str(exc).splitlines()[0]}); expected images of at least 32x32 pixels, e.g. "
                             "resized with cfcam.preprocess") from exc
