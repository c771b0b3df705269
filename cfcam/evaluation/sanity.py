"""Sanity checks (Adebayo et al. 2018, "Sanity checks for saliency maps"): does the map depend on the model
and on the class it explains?

* **Model-parameter randomisation**: re-initialise the classifier layer (``randomisation_spearman``,
  ``randomisation_ssim``, averaged over several draws of the new weights: one draw of a two-class
  classifier moves every image at once) or, cascading, every block from the top down
  (``cascade_spearman@<layer>``) or from the input up (``cascade_bottom_up_spearman@<layer>``, Quantus' MPRT
  ``layer_order="bottom_up"``) and compare each image's map before and after (Spearman rank correlation,
  SSIM). A map that explains the model must change when the model's weights are destroyed: values near 1
  *fail* the check.
* **Class sensitivity**: the Pearson correlation between the maps of two classes on the same image (the
  predicted class and the runner-up). A map that explains a *class* should differ between classes; +1 means
  the map does not depend on the class at all.

What they do NOT show: a method that passes can still be wrong (a random map passes both, trivially); they
only catch maps that ignore the model or the class. Spearman over all pixels weighs large flat regions; SSIM
depends on the window. A constant map (all zero) has no ranks: NaN, reported, not dropped.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def classifier_layer(model: nn.Module) -> str:
    """Name of the model's last ``nn.Linear`` (its classifier layer)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"a {type(model).__name__} has no nn.Linear classifier layer to randomise")
    return names[-1]


CASCADE_ORDERS = ("top_down", "bottom_up")


def cascade_layers(model: nn.Module, order: str = "top_down") -> list[str]:
    """Top-level children that hold parameters, in the cascade's order: from the output back to the input
    (``top_down``, Adebayo et al.'s cascade) or from the input up (``bottom_up``, Quantus' ``layer_order``)."""
    if order not in CASCADE_ORDERS:
        raise ValueError(f"order must be one of {list(CASCADE_ORDERS)}, got {order!r}")
    names = [name for name, m in model.named_children() if any(True for _ in m.parameters())]
    return names[::-1] if order == "top_down" else names


def randomised(model: nn.Module, layers, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every submodule of the named ``layers`` re-initialised
    (``reset_parameters``, BatchNorm statistics included), each layer from ``torch.manual_seed(seed)`` as
    Quantus does: a layer gets the same weights at every step of a cascade and in the classifier-only check
    of the same ``seed``; ``model`` is untouched."""
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"cannot randomise unknown layer(s) {missing}")
    generator_state = torch.get_rng_state()
    try:
        for name in layers:
            torch.manual_seed(seed)
            for sub in modules[name].modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
                if hasattr(sub, "reset_running_stats"):
                    sub.reset_running_stats()
    finally:
        torch.set_rng_state(generator_state)
    return clone.eval()


def runner_up(logits: torch.Tensor, targets=None) -> torch.Tensor:
    """The second most likely class per image (the other class of a two-class model); with ``targets``, the
    most likely class other than each image's target (a given label need not be the top class)."""
    if targets is None:
        return logits.topk(2, dim=1).indices[:, 1]
    others = logits.clone()
    others[torch.arange(len(logits)), torch.as_tensor(targets, dtype=torch.long)] = float("-inf")
    return others.argmax(1)
