"""Layer output layouts: turn what a layer gives into ``(N, C, h, w)`` maps, or refuse with the fix.

CAM methods need channel maps. CNN layers give them channels-first; torchvision's Swin blocks give
channels-last ``(N, h, w, C)``; ViT blocks give tokens ``(N, prefix + h*w, C)``, whose grid and prefix tokens
(class, distillation, registers) the ``vit`` transform takes from the model (:mod:`cfcam.core.tokens`). A
``reshape_transform`` (the convention of pytorch-grad-cam) is a callable from the layer's output to
``(N, C, h, w)``, applied to the activations and the gradients alike. When no transform is given,
:func:`check_layout` establishes the layout from the input's aspect ratio (a CNN's spatial dimensions follow
it; the channel count does not); a declared transform's result is checked against the input the same way;
whatever cannot be established is refused: a wrong layout gives a finite, normalised, meaningless map, which
is the worst failure an explanation tool can have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions, so that the command line can list the transform names quickly
ReshapeTransform = Callable[[Any], Any]


def vit_tokens_to_maps(tokens: torch.Tensor, grid: tuple[int, int] | None = None,
                       prefix_tokens: int | None = None) -> torch.Tensor:
    """ViT tokens ``(N, prefix + h*w, C)`` -> ``(N, C, h, w)``, dropping the ``prefix_tokens`` (class,
    distillation, register tokens) that come first.

    ``grid`` ``(h, w)`` and ``prefix_tokens`` are required and must add up to the token count: they are never
    guessed from a square root (a 12x27 grid has 324 = 18^2 tokens). Inside an explainer both come from the
    model (see :mod:`cfcam.core.tokens`); for other tools, bind them with :func:`vit_transform`.
    """
    import torch

    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"the 'vit' transform expects tokens of shape (N, tokens, C), got {shape}")
    if grid is None or prefix_tokens is None:
        raise ValueError("the 'vit' transform needs the patch grid (h, w) and the number of prefix tokens: an "
                         "explainer takes them from the model; elsewhere use vit_transform(grid=(h, w), "
                         "prefix_tokens=1)")
    n, t, c = tokens.shape
    h, w = int(grid[0]), int(grid[1])
    if h < 1 or w < 1 or prefix_tokens < 0 or t != prefix_tokens + h * w:
        raise ValueError(f"the 'vit' transform got {t} tokens, but a {h}x{w} patch grid and {prefix_tokens} "
                         f"prefix token(s) make {prefix_tokens + h * w}: the tokens do not add up, so they cannot be "
                         "read as this grid")
    return tokens[:, prefix_tokens:, :].reshape(n, h, w, c).permute(0, 3, 1, 2)


vit_tokens_to_maps.needs_token_layout = True  # the capture passes grid and prefix_tokens from the model


def vit_transform(grid: tuple[int, int], prefix_tokens: int) -> ReshapeTransform:
    """A one-argument ``reshape_transform`` (pytorch-grad-cam's convention) for a known grid and prefix count."""
    grid, prefix = (int(grid[0]), int(grid[1])), int(prefix_tokens)

    def reshape(tokens):
        return vit_tokens_to_maps(tokens, grid, prefix)

    return reshape


def channels_last_to_first(maps: torch.Tensor) -> torch.Tensor:
    """Channels-last ``(N, h, w, C)`` (torchvision's Swin V1 and V2 blocks) -> ``(N, C, h, w)``."""
    import torch

    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"the 'swin' transform expects (N, h, w, C) maps, got {shape}")
    return maps.permute(0, 3, 1, 2)


#: The ready transforms by name; ``none`` means the layer already gives ``(N, C, h, w)``.
TRANSFORMS: dict[str, ReshapeTransform | None] = {
    "none": None,
    "vit": vit_tokens_to_maps,
    "swin": channels_last_to_first,
}

TransformSpec = Union[str, ReshapeTransform, None]


def get_transform(spec: TransformSpec) -> ReshapeTransform | None:
    """A transform from its name (``none``, ``vit``, ``swin``), a callable, or None."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, str) and spec in TRANSFORMS:
        return TRANSFORMS[spec]
    raise ValueError(f"reshape_transform must be a callable, None, or one of {sorted(TRANSFORMS)}, got {spec!r}")


def transform_name(transform: ReshapeTransform | None) -> str:
    """The registered name of ``transform``, or ``custom``."""
    for name, fn in TRANSFORMS.items():
        if fn is transform:
            return name
    return "custom"


def _follows(h: int, w: int, height: int, width: int) -> bool:
    """Do ``(h, w)`` follow the input's aspect ratio to within about one cell of downsampling?"""
    return abs(h * width - w * height) <= height + width


def check_layout(output: torch.Tensor, layer: str, input_hw: tuple[int, int], declared: bool, *,
                 transform: str | None = None, raw_shape: tuple | None = None) -> torch.Tensor:
    """``output`` if it is established to be ``(N, C, h, w)`` with ``h * w > 1``; else ``ValueError`` with the fix.

    ``declared``: the layer's type (a convolution) fixes the layout, so only the rank and the map size are
    checked; otherwise the layout must follow from the input's shape. ``transform`` (its name, for messages): a
    declared reshape transform made ``output`` (from ``raw_shape``); its result is checked against the input
    like any other: ``(h, w)`` must follow the input's shape and fit inside it, or the transform does not fit
    this layer (``swin`` on a ResNet's ``(N, 512, 7, 7)`` gives ``(N, 7, 512, 7)``, a "map" 512 cells high).
    """
    import torch

    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        hint = ""
        if isinstance(output, torch.Tensor) and output.dim() == 3 and not declared:
            hint = (" This looks like transformer tokens (N, tokens, C): pass reshape_transform='vit' "
                    "(command line: --reshape vit), or a callable that returns (N, C, h, w).")
        how = "after its reshape_transform " if declared else ""
        raise ValueError(f"target layer {layer!r} gives {how}shape {shape}; CAM methods need (N, C, h, w) "
                         f"channel maps.{hint}")
    _, c, h, w = output.shape
    if transform is not None:
        height, width = input_hw
        if not _follows(h, w, height, width) or h > height or w > width:
            raise ValueError(
                f"reshape_transform {transform!r} turns the output of {layer!r} (shape {raw_shape}) into {shape}, "
                f"whose {h}x{w} map cannot be this layer's map of the {height}x{width} input (it does not follow "
                "the input's shape): the transform does not fit this layer. Pass the transform that reads this "
                "layer's output as (N, C, h, w), or none for a convolutional layer (command line: --reshape auto).")
    elif not declared:
        height, width = input_hw
        first, last = _follows(h, w, height, width), _follows(c, h, height, width)
        if last and not first:
            raise ValueError(
                f"target layer {layer!r} gives shape {shape}, which looks channels-last (N, h, w, C): its "
                f"dimensions 1 and 2 follow the input's {height}x{width} shape, not dimensions 2 and 3. Pass "
                "reshape_transform='swin' (command line: --reshape swin) or a callable that returns (N, C, h, w).")
        if not first:
            raise ValueError(
                f"target layer {layer!r} gives shape {shape}, whose layout cannot be established: neither "
                f"(h, w) nor dimensions 1 and 2 follow the input's {height}x{width} shape. Pass a "
                "reshape_transform that returns (N, C, h, w).")
        if last and h * w > 1:
            raise ValueError(
                f"target layer {layer!r} gives shape {shape}: channels-first and channels-last both fit the "
                f"input's {height}x{width} shape, so its layout cannot be established. Pass "
                "reshape_transform=lambda t: t if it is (N, C, h, w), or 'swin' if it is (N, h, w, C).")
    if h * w <= 1:
        raise ValueError(f"target layer {layer!r} gives a {h}x{w} map (shape {shape}): a CAM needs spatial "
                         "resolution; choose an earlier layer, such as the last convolutional block")
    return output
