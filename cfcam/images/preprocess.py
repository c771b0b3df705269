"""The one preprocessing: uint8 images to the normalised float input the models see.

:func:`to_input` scales uint8 images to [0, 1] and normalises them with the ImageNet mean and std, exactly like
torchvision's ``ToTensor()`` + ``Normalize``; a grayscale image is repeated to three channels. Everything that
feeds a model goes through it: :func:`preprocess` (a user's image, resized to 224 x 224 first), the demo world's
training and the evaluation sets.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..constants import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE

__all__ = ["to_input", "to_rgb_array", "preprocess", "preprocess_batch"]


def to_input(images_uint8, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``(N, 3, H, W)`` float32 model input from uint8 images: scaled to [0, 1], normalised with ``mean``/``std``.

    ``images_uint8``: a uint8 numpy array or tensor, grayscale ``(H, W)`` or ``(N, H, W)`` (each image repeated
    to 3 channels, as the demo models were trained) or RGB ``(N, H, W, 3)``. No resizing: see :func:`preprocess`.
    """
    if isinstance(images_uint8, np.ndarray):
        array = np.ascontiguousarray(images_uint8)
        images = torch.from_numpy(array if array.flags.writeable else array.copy())  # torch wants writable memory
    elif isinstance(images_uint8, torch.Tensor):
        images = images_uint8
    else:
        raise TypeError(f"images_uint8 must be a numpy array or a torch tensor, got {type(images_uint8).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"images_uint8 must have dtype uint8, got {images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        channels_first = images[:, None].expand(-1, 3, -1, -1)
    elif images.ndim == 4 and images.shape[-1] == 3:
        channels_first = images.permute(0, 3, 1, 2)
    else:
        raise ValueError(f"images_uint8 must have shape (H, W) or (N, H, W) (grayscale) or (N, H, W, 3) (RGB), "
                         f"got {tuple(images.shape)}")
    x = channels_first.to(torch.float32).div(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean_t) / std_t).contiguous()


def to_rgb_array(image) -> np.ndarray:
    """A PIL image or an ``(H, W)``/``(H, W, 3)`` uint8 array as an ``(H, W, 3)`` uint8 RGB array."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    return arr


def preprocess(image, size: int = INPUT_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """``(1, 3, size, size)`` float tensor: bilinear resize (antialiased, as torchvision's ``Resize`` on a
    PIL image), then :func:`to_input` (scale to [0, 1], normalise with ``mean``/``std``)."""
    rgb = to_rgb_array(image)
    if rgb.shape[:2] != (size, size):  # PIL's resize to the same size is an exact copy: skipped
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return to_input(rgb[None], mean, std)


def preprocess_batch(images, size: int = INPUT_SIZE) -> torch.Tensor:
    """Several images, each preprocessed, stacked into ``(N, 3, size, size)``."""
    return torch.cat([preprocess(im, size) for im in images])
