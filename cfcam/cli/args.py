"""Options shared by the subcommands: argparse value types (each names what it expected) and the model options
of ``cfcam explain`` and ``cfcam evaluate --data`` with their checks."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def alpha_value(text: str) -> float:
    """argparse type: a number in [0, 1] (the heatmap's weight in the overlay)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def class_names(text: str) -> list[str]:
    """argparse type: comma-separated class names, none empty."""
    names = [s.strip() for s in text.split(",")]
    if not names or any(not s for s in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-empty names like 'normal,lesion', got {text!r}")
    return names


def int_range(low: int, high: int):
    """argparse type factory: an integer in ``[low, high]`` (the message names the bounds)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}")
        return value

    return parse


# -- the model options `cfcam explain` and `cfcam evaluate --data` share ---------------------------------

def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--arch``, ``--num-classes`` and ``--class-names``: a user's weights file and its classes."""
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="a state-dict file for the --model/--arch architecture (same as --model FILE --arch "
                             "NAME), e.g. --model timm:NAME --weights FILE (read with torch.load(weights_only=True))")
    parser.add_argument("--arch", default=None,
                        help="architecture of a weights file: a torchvision name, timm:NAME (needs cfcam[timm]) "
                             "or 'demo'")
    parser.add_argument("--num-classes", type=positive_int, default=None, metavar="N",
                        help="outputs of a weights file's classifier (default: read from the file)")
    parser.add_argument("--class-names", type=class_names, default=None, metavar="A,B,...",
                        help="class names, one per output (default: the model's own, or 'class 0', 'class 1', ...)")


def load_model_option(args: argparse.Namespace, parser: argparse.ArgumentParser, device="cpu") -> tuple:
    """``(model, info)`` for ``--model``/``--weights``/``--arch``/``--num-classes``/``--class-names``; a usage
    error (exit 2) naming the option otherwise. Imports torch: call it from a run, never at start-up."""
    from ..world.models import ModelError, check_class_names, classification_models, load_model
    from .escape import printable

    source, arch, option = model_source(args, parser, classification_models())
    try:
        model, info = load_model(source, arch=arch, num_classes=args.num_classes, device=device)
    except ModelError as exc:
        parser.error(f"argument {option}: " + "\n".join(printable(line) for line in str(exc).splitlines()))
    if args.class_names is not None:
        try:
            info["classes"] = check_class_names(args.class_names, len(info["classes"]))
        except ModelError as exc:
            parser.error(f"argument --class-names: {exc}")
    return model, info


def model_source(args, parser, names: list[str]) -> tuple[str, str | None, str]:
    """``(name_or_path, arch, option to blame)`` from ``--model``, ``--weights`` and ``--arch``."""
    model = args.model or "demo"
    if args.weights is None:
        return model, args.arch, "--model"
    from ..world.models import DEMO_MODELS

    if args.model is not None and args.model not in DEMO_MODELS and args.model not in names \
            and not args.model.startswith("timm:"):
        parser.error("argument --weights: give the weights file either as --model FILE or as --weights FILE, not both")
    if args.arch is not None and args.model is not None and args.arch != args.model:
        parser.error(f"argument --arch: {args.arch!r} contradicts --model {args.model!r}")
    return args.weights, args.arch or model, "--weights"


def add_reshape_option(parser) -> None:
    """``--reshape`` (explain and evaluate): how to read the layer's output as ``(N, C, h, w)`` maps."""
    from ..core.layouts import TRANSFORMS

    parser.add_argument("--reshape", choices=["auto", *TRANSFORMS], default="auto",
                        help="how to read the layer's output as (N, C, h, w) maps: auto (default: the model family's "
                             "way, e.g. vit for ViT, swin for Swin), none (already channels-first), vit (tokens: the "
                             "grid and prefix tokens come from the model), swin (channels-last); a declared one is "
                             "checked against the input, and refused when its maps cannot be this layer's")


def resolve_layer_option(args, parser, model, info: dict, device="cpu") -> tuple[str, str | None]:
    """``(layer name, reshape)`` from ``--layer``/``--reshape`` and the model's defaults, after one capture
    proves the layer gives ``(N, C, h, w)`` maps; a usage error (exit 2) saying why not. ``info`` gets
    ``layer`` and ``reshape_used``."""
    layer = args.layer or info["default_layer"]
    if layer is None:
        parser.error(f"argument --layer: the model {info['name']} has no default layer to explain; pass --layer")
    reshape = info.get("reshape", "none") if args.reshape == "auto" else args.reshape
    if args.reshape == "auto" and reshape == "none":
        reshape = None  # nothing declared: the layout must be established from the output's shape
    try:
        layer_name = check_layer(model, layer, reshape, info["input_size"], device)
    except ValueError as exc:
        parser.error(f"argument {'--reshape' if args.reshape != 'auto' else '--layer'}: {exc}")
    info["layer"], info["layer_as_given"], info["reshape_used"] = layer_name, layer, reshape or "none"
    return layer_name, reshape


def check_layer(model, layer: str, reshape, size: int, device="cpu") -> str:
    """The resolved name of ``layer``, after one capture on a blank image proves it gives (N, C, h, w) maps;
    ``ValueError`` saying why not."""
    import torch

    from ..core.capture import ActivationsAndGradients

    with ActivationsAndGradients(model, layer, reshape) as grab:
        grab(torch.zeros(1, 3, size, size, device=device))
        return grab.layer_name
