"""Which layer to explain, and with which reshape transform, when the caller does not say.

One table for torchvision's and timm's classifier families (and the demo model), matched on the model's class
so that a fine-tuned model or a subclass is recognised too; timm's classes (which share names with
torchvision's: ``VisionTransformer``, ``SwinTransformer``, ``ConvNeXt``...) match only timm's entries. Each
entry names the layer CAM methods usually explain (the last convolutional block; for ViTs the last block's
first LayerNorm, whose patch tokens still receive gradients) and the transform that turns its output into
``(N, C, h, w)``. Any other timm model gets the last stage its ``feature_info`` names (see :func:`timm_family`).
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
    library: str = "torchvision"  # "timm": matched on timm's classes only; "torchvision": on any other class


#: timm's families (checked first: they share class names with torchvision's).
TIMM_FAMILIES: tuple[Family, ...] = (
    Family("timm ViT / DeiT / ViT with registers", ("VisionTransformer", "VisionTransformerDistilled"),
           "blocks[-1].norm1", "vit", "timm"),
    Family("timm Swin", ("SwinTransformer", "SwinTransformerV2"), "layers[-1]", "swin", "timm"),
    Family("timm ConvNeXt", ("ConvNeXt",), "stages[-1]", library="timm"),
    Family("timm EfficientNet", ("EfficientNet",), "bn2", library="timm"),
    Family("timm ResNet", ("ResNet",), "layer4[-1]", library="timm"),
)

#: torchvision's classifier families, most specific first.
FAMILIES: tuple[Family, ...] = TIMM_FAMILIES + (
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


def _is_timm(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "timm"


def family_of(model: nn.Module) -> Family | None:
    """The first family whose class appears in ``model``'s class hierarchy (timm's classes match timm's
    entries only), else a timm model's :func:`timm_family`, else None."""
    mro = type(model).__mro__
    timm_names = {cls.__name__ for cls in mro if _is_timm(cls)}
    other_names = {cls.__name__ for cls in mro if not _is_timm(cls)}
    for family in FAMILIES:
        if set(family.classes) & (timm_names if family.library == "timm" else other_names):
            return family
    return timm_family(model) if timm_names else None


def timm_family(model: nn.Module) -> Family | None:
    """A timm model outside the table: the last stage its ``feature_info`` names, read as tokens when the model
    has a patch embedding and prefix tokens (the last block's ``norm1`` then, as for ViT), channels-last when
    its ``output_fmt`` says NHWC, else channels-first (checked against the input at every capture)."""
    info = getattr(model, "feature_info", None)
    last = info[-1] if isinstance(info, (list, tuple)) and info else None
    module = last.get("module") if isinstance(last, dict) else None
    if not isinstance(module, str) or not module:
        return None
    name = f"timm {type(model).__name__} (its feature_info)"
    blocks = getattr(model, "blocks", None)
    if hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens") and isinstance(blocks, nn.Sequential) \
            and len(blocks) and isinstance(getattr(blocks[-1], "norm1", None), nn.Module):
        return Family(name, (type(model).__name__,), "blocks[-1].norm1", "vit", "timm")
    reshape = "swin" if getattr(model, "output_fmt", "NCHW") == "NHWC" else "none"
    return Family(name, (type(model).__name__,), module, reshape, "timm")


def suggest_layer(model: nn.Module) -> str | None:
    """A layer worth trying when no family fits: the last stage timm's ``feature_info`` names, else the last
    ``Conv2d``, else the last block of a ``blocks``/``layers`` list; None if there is none of these."""
    family = timm_family(model)
    if family is not None:
        return family.layer
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[-1]
    for attr in ("blocks", "layers"):
        blocks = getattr(model, attr, None)
        if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks):
            return f"{attr}[-1]"
    return None


def default_target(model: nn.Module) -> Target:
    """The usual layer and transform for ``model``'s family; ``ValueError`` naming the model, the family that
    matched (if one did) and a layer to try otherwise."""
    family = family_of(model)
    suggestion = suggest_layer(model)
    try_this = f"e.g. target_layer={suggestion!r} (command line: --layer {suggestion}); " if suggestion else ""
    if family is None:
        raise ValueError(f"no default layer for a {type(model).__name__}: pass target_layer (command line: --layer), "
                         f"{try_this or 'for example the last convolutional block; '}list them with "
                         "[n for n, _ in model.named_modules()]")
    try:
        resolve_layer(model, family.layer)
    except ValueError:
        raise ValueError(f"the {type(model).__name__} matched the {family.name} family, but has no module "
                         f"{family.layer!r}, the family's usual layer: pass target_layer, {try_this}list them with "
                         "[n for n, _ in model.named_modules()]") from None
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
