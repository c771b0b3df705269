"""The evaluation's shared passes: one capture serves every method, and a re-drawn classifier runs alone.

Every gradient method of a run explains the same images, for the same classes, with the same model: their
captures (the layer's activations and the target scores' gradients) are equal, so the first method's pass
serves the others. Re-initialising only the classifier leaves everything up to the explained layer as it was:
the activations stay, and only the model's *head* (what runs after the layer, cut out with ``torch.fx``) runs
again for each draw: the classifier check's 20 draws cost a small head pass instead of a whole model pass per
draw, image and method (46 % of the default evaluation's time before). A cascade step's re-initialised model is
one pass for all the methods too.

This is a speed door, nothing more: :class:`SharedCaptures` gives the captures a method's own pass would, and
``tests/evaluation/test_captures.py`` checks the maps equal. Methods with passes of their own (Score-CAM,
Ablation-CAM, the pytorch-grad-cam wrappers), an output selector or a layout transform take their own pass.
"""

from __future__ import annotations

import hashlib

import torch
from torch import fx, nn

from ..core.capture import Capture, as_targets
from ..core.outputs import as_scores
from ..methods.base import BaseCAM


class _LayerTracer(fx.Tracer):
    """Traces through every module except torch's own and the explained layer, which stays one call."""

    def __init__(self, layer_name: str) -> None:
        super().__init__()
        self.layer_name = layer_name

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return qualified_name == self.layer_name or super().is_leaf_module(module, qualified_name)


def cut_head(model: nn.Module, layer_name: str) -> fx.GraphModule | None:
    """The part of ``model`` after the module ``layer_name``, as a module from that layer's output to the
    model's output; None when the model cannot be traced, calls the layer more than once, or the part after it
    reads anything computed before it (a skip connection around the layer)."""
    try:
        graph = _LayerTracer(layer_name).trace(model)
    except Exception:  # any model fx cannot trace takes the plain path
        return None
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == layer_name]
    if len(calls) != 1:
        return None
    nodes = list(graph.nodes)
    start = nodes.index(calls[0])
    before = set(nodes[:start])
    head = fx.Graph()
    env = {calls[0]: head.placeholder("activations")}
    for node in nodes[start + 1:]:
        if node.op == "placeholder":
            return None
        if any(arg in before and arg.op != "get_attr" for arg in node.all_input_nodes):
            return None
        for arg in node.all_input_nodes:
            if arg not in env:  # a parameter or buffer read after the layer
                env[arg] = head.node_copy(arg, lambda a: env[a])
        env[node] = head.node_copy(node, lambda a: env[a])
    try:
        return fx.GraphModule(model, head)
    except Exception:
        return None


def _digest(inputs: torch.Tensor) -> str:
    return hashlib.sha1(inputs.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class SharedCaptures:
    """Captures shared by the methods of one run: ``get(explainer, model_key, inputs, targets)`` returns the
    capture of ``explainer``'s own pass: the evaluated model's once per images and classes (kept for the run),
    a re-drawn classifier's from that and the draw's head (not kept: the head's pass costs little).

    ``model_key`` names the model state: ``"model"`` (the evaluated model) or ``("classifier", draw)`` with
    ``heads(draw)`` giving that draw's head. Returns None when the explainer must take its own pass.
    """

    def __init__(self, model: nn.Module, layer_name: str) -> None:
        self.model = model
        self.layer_name = layer_name
        self._head = cut_head(model, layer_name)
        self._heads: dict = {}
        self._captures: dict = {}

    @property
    def can_redraw_classifier(self) -> bool:
        """Whether a re-drawn classifier's captures come from the head alone."""
        return self._head is not None

    def serves(self, explainer: BaseCAM, model: nn.Module | None = None) -> bool:
        """Whether ``explainer``'s maps come only from the standard capture of ``model`` (default: the evaluated
        model) at the shared layer."""
        grab = explainer._grab
        return (type(explainer).explain_capture is BaseCAM.explain_capture
                and type(explainer).capture_batch is BaseCAM.capture_batch
                and explainer.model is (self.model if model is None else model)
                and explainer.layer_name == self.layer_name
                and getattr(grab, "output", None) is None and getattr(grab, "reshape_transform", None) is None
                and getattr(grab, "_tokens", None) is None)

    def head_of(self, model_key, redrawn) -> None:
        """Keep the head of ``redrawn()`` (the evaluated model with its classifier re-initialised, built only
        when ``model_key`` has no head yet)."""
        if model_key not in self._heads:
            head = cut_head(redrawn(), self.layer_name)
            if head is None:
                raise ValueError("the re-drawn model's head could not be cut out")
            self._heads[model_key] = head.eval()

    def get(self, explainer: BaseCAM, model_key, inputs: torch.Tensor, targets) -> Capture | None:
        """``explainer``'s capture of ``inputs`` for ``targets`` in model state ``model_key``: ``"model"``, a
        re-drawn classifier ``("classifier", draw)`` (after :meth:`head_of`), or any other key naming the state
        of ``explainer.model`` (e.g. a cascade step: the caller keeps one key for one state)."""
        if model_key == "model" or (isinstance(model_key, tuple) and model_key[:1] == ("classifier",)):
            if not self.serves(explainer) or (model_key != "model" and model_key not in self._heads):
                return None
            base = self._base(explainer, "model", inputs, targets)
            return base if model_key == "model" else self._redrawn(base, model_key)
        if not self.serves(explainer, explainer.model):
            return None
        return self._base(explainer, model_key, inputs, targets)

    def _base(self, explainer: BaseCAM, model_key, inputs: torch.Tensor, targets) -> Capture:
        key = (model_key, _digest(inputs), tuple(int(t) for t in targets))
        if key not in self._captures:
            self._captures[key] = explainer.capture_batch(inputs, list(targets))
        return self._captures[key]

    def _redrawn(self, base: Capture, model_key) -> Capture:
        """The capture of the re-drawn model: the same activations, the head's output and gradients."""
        head = self._heads[model_key]
        with torch.enable_grad():
            leaf = base.activations.clone().requires_grad_(True)
            output = head(leaf)
            selected, t, _ = as_scores([int(x) for x in base.targets], output, as_targets)
            grads = torch.autograd.grad(selected, leaf)[0]
        return Capture(base.activations, grads.detach(), output.detach(), t, base.layer_name)

