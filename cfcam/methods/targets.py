"""Which layer to explain, and with which reshape transform, when the caller does not say.

One table for torchvision's classifier families (and the demo model), matched on the model's class so that
a fine-tuned model or a subclass is recognised too. Each entry names the layer CAM methods usually explain
(the last convolutional block; for transformers the last block's first LayerNorm, whose patch tokens still
receive gradients) and the transform that turns its output into ``(N, C, h, w)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..core.capture import resolve_layer
from ..core.layouts import TransformSpec, get_transform, transform_name


@dataclass(frozen=True)
class Family:
    name: str
    classes: tuple[str, ...]  # torchvision class names (matched along the model's class hierarchy)
    layer: str
    reshape: str = "none"


#: torchvision's classifier families, most specific first.
FAMILIES: tuple[Family, ...] = (
    Family("demo (aligned ResNet-10)", ("AlignedResNet",), "layer4[-1]"),
    Family("ResNet / ResNeXt / Wide-ResNet", ("ResNet",), "layer4[-1]"),
    Family("VGG", ("VGG",), "features[-1]"),
    Family("DenseNet", ("DenseNet",), "features[-1]"),
    Family("MobileNet V2", ("MobileNetV2",), "features[-1]"),
    Family("MobileNet V3", ("MobileNetV3",), "features[-1]"),
    Family("EfficientNet", ("EfficientNet",), "features[-1]"),
    Family("ConvNeXt", ("ConvNeXt",), "features[-1]"),
    Family("RegNet", ("RegNet",), "trunk_output[-1]"),
    Family("Inception v3", ("Inception3",), "Mixed_7c"),
    Family("GoogLeNet", ("GoogLeNet",), "inception5b"),
    Family("AlexNet", ("AlexNet",), "features[-1]"),
    Family("SqueezeNet", ("SqueezeNet",), "features[-1]"),
    Family("ShuffleNet V2", ("ShuffleNetV2",), "conv5"),
    Family("MNASNet", ("MNASNet",), "layers[-1]"),
    Family("MaxViT", ("MaxVit",), "blocks[-1]"),
    Family("ViT", ("VisionTransformer",), "encoder.layers[-1].ln_1", "vit"),
    Family("Swin V1 / V2", ("SwinTransformer",), "features[-1]", "swin"),
)


@dataclass(frozen=True)
class Target:
    """The layer and transform an explainer uses, and how they were chosen (for messages and summaries)."""

    layer: str
    reshape_transform: TransformSpec  # as ActivationsAndGradients takes it: None, a name or a callable
    family: str | None
    automatic: bool

    def describe(self) -> str:
        how = f"picked for the {self.family} family" if self.automatic else "as given"
        spec = self.reshape_transform
        return f"layer {self.layer}, reshape {spec if isinstance(spec, str) else transform_name(spec)} ({how})"


def family_of(model: nn.Module) -> Family | None:
    """The first family whose class appears in ``model``'s class hierarchy, or None."""
    names = {cls.__name__ for cls in type(model).__mro__}
    return next((f for f in FAMILIES if names & set(f.classes)), None)


def default_target(model: nn.Module) -> Target:
    """The usual layer and transform for ``model``'s family; ``ValueError`` naming the model otherwise."""
    family = family_of(model)
    if family is None:
        raise ValueError(f"no default layer for a {type(model).__name__}: pass target_layer (command line: --layer), "
                         "for example the last convolutional block; list them with "
                         "[n for n, _ in model.named_modules()]")
    resolve_layer(model, family.layer)  # a model of the family that lacks the layer fails here, by name
    return Target(family.layer, None if family.reshape == "none" else family.reshape, family.name, True)


def choose_target(model: nn.Module, target_layer=None, reshape_transform: TransformSpec | str = None) -> Target:
    """The target for explicit choices, the family's defaults for missing ones.

    ``target_layer=None`` picks the family's layer and, unless ``reshape_transform`` is given, its transform.
    ``reshape_transform="auto"`` picks the family's transform for a given layer (none if the family is unknown).
    """
    if target_layer is None:
        chosen = default_target(model)
        if reshape_transform in (None, "auto"):
            return chosen
        get_transform(reshape_transform)  # validate early
        return Target(chosen.layer, reshape_transform, chosen.family, True)
    if reshape_transform == "auto":
        family = family_of(model)
        reshape_transform = family.reshape if family and family.reshape != "none" else None
    get_transform(reshape_transform)
    name = resolve_layer(model, target_layer)[0]
    return Target(name, reshape_transform, None, False)
