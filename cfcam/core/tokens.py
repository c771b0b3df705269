"""What a transformer says about its tokens: the patch grid of this input and the prefix tokens before it.

A ViT block's output is ``(N, prefix + h*w, C)``: class, distillation and register tokens first, then the patch
tokens row by row. Reading it as maps needs ``(h, w)`` and ``prefix``, and neither can be guessed from the token
count: a 12x27 grid has 324 = 18^2 tokens, and 196 patches + 1 class + 28 register tokens make 225 = 15^2. The
grid is read from the patch embedding's own output during the forward pass (right for dynamic image sizes and
padding), else computed from the input size and the model's patch size; the prefix is the count the model
declares (timm's ``num_prefix_tokens``) or the prefix tokens it holds (``cls_token``, ``class_token``,
``dist_token``, ``reg_token``, ``register_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Attributes holding prefix tokens: a parameter of shape (1, k, C) counts k tokens (k = 1 for a class token).
_PREFIX_ATTRS = ("cls_token", "class_token", "dist_token", "reg_token", "register_tokens")


@dataclass(frozen=True)
class TokenLayout:
    """How to read tokens ``(N, T, C)`` as maps: ``T == prefix + grid[0] * grid[1]``; where each number came from."""

    grid: tuple[int, int]
    prefix: int
    grid_source: str
    prefix_source: str

    def explain(self) -> str:
        h, w = self.grid
        return (f"{h}x{w} = {h * w} patch tokens ({self.grid_source}) + {self.prefix} prefix token(s) "
                f"({self.prefix_source}) = {h * w + self.prefix}")


def patch_embedding(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """``(name, conv)``: the convolution whose ``(h, w)`` output is the patch grid (timm's ``patch_embed.proj``,
    torchvision's ``conv_proj``, else the last ``Conv2d`` inside a ``patch_embed``), or None."""
    for name in ("patch_embed.proj", "conv_proj", "embeddings.patch_embeddings.projection"):
        module = _get(model, name)
        if isinstance(module, nn.Conv2d):
            return name, module
    embed = getattr(model, "patch_embed", None)
    if isinstance(embed, nn.Module):
        convs = [(f"patch_embed.{n}", m) for n, m in embed.named_modules() if isinstance(m, nn.Conv2d)]
        if convs:
            return convs[-1]
    return None


def patch_size(model: nn.Module) -> tuple[int, int] | None:
    """The model's declared patch size ``(ph, pw)`` (timm's ``patch_embed.patch_size``, torchvision's
    ``patch_size``), or None."""
    for owner in (getattr(model, "patch_embed", None), model):
        size = getattr(owner, "patch_size", None) if owner is not None else None
        if isinstance(size, int) and size > 0:
            return size, size
        if isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
            return int(size[0]), int(size[1])
    return None


def prefix_tokens(model: nn.Module) -> tuple[int, str] | None:
    """``(count, where it came from)``: the tokens before the patch tokens, as the model declares them; None
    when the model declares nothing (no ``num_prefix_tokens`` and none of the usual token parameters)."""
    declared = getattr(model, "num_prefix_tokens", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 0:
        return declared, f"{type(model).__name__}.num_prefix_tokens"
    found, count = [], 0
    for attr in _PREFIX_ATTRS:
        value = getattr(model, attr, None)
        if isinstance(value, torch.Tensor) and value.dim() == 3:
            found.append(f"{attr} {value.shape[1]}")
            count += int(value.shape[1])
    if not found:
        return None
    return count, "the model's " + ", ".join(found)


class GridProbe:
    """Records the patch grid of each forward pass from the patch embedding's output (a forward hook, active
    only while :meth:`layout` may be asked for), with the input size and patch size as the fallback."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.embedding = patch_embedding(model)
        self.grid: tuple[int, int] | None = None
        self._handle = None

    def attach(self) -> None:
        if self.embedding is not None and self._handle is None:
            self._handle = self.embedding[1].register_forward_hook(self._hook)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module, inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            self.grid = (int(output.shape[-2]), int(output.shape[-1]))

    def layout(self, layer: str, input_hw: tuple[int, int]) -> TokenLayout:
        """The token layout of the last pass; ``ValueError`` naming what the model does not say."""
        grid, source = self.grid, f"the output of {self.embedding[0]}" if self.embedding else ""
        if grid is None:
            size = patch_size(self.model)
            if size is None:
                raise ValueError(
                    f"the 'vit' transform on {layer!r} needs the patch grid, and the model has neither a patch "
                    "embedding (patch_embed.proj, conv_proj) nor a patch_size; pass a callable reshape_transform "
                    "that returns (N, C, h, w), e.g. cfcam.core.layouts.vit_transform(grid=(h, w), prefix_tokens=1)")
            grid = (input_hw[0] // size[0], input_hw[1] // size[1])
            source = f"the {input_hw[0]}x{input_hw[1]} input / patch size {size[0]}x{size[1]}"
        prefix = prefix_tokens(self.model)
        if prefix is None:
            return TokenLayout(grid, 0, source, "the model declares none")
        return TokenLayout(grid, prefix[0], source, prefix[1])


def _get(model: nn.Module, dotted: str):
    module = model
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module
