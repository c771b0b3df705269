"""An uploaded file as a picture for the classroom explorer: an RGB array no larger than a panel, or an
``UploadError`` whose message names the file and says what to do, never a traceback."""

from __future__ import annotations

import html
import io
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ...cli.reasons import plain_reason
from ...images.files import ImageError
from ...images.reading import load_image
from .drawing import PANEL_PX

__all__ = ["ACCEPT", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "MIN_SIDE", "Upload", "UploadError", "read_upload"]

# Under the 10 MiB that Jupyter's and Voila's websocket carries by default (tornado's limit): a larger file would
# close the page's connection instead of reaching the kernel (`make explorer` raises that limit, so it is told).
MAX_UPLOAD_BYTES = 8 * 2**20
MAX_UPLOAD_PIXELS = 25_000_000  # 5000 x 5000: decoded in about 100 MB, then shrunk to a panel
MIN_SIDE = 16  # smaller than this, the model's 224 x 224 input is a few stretched pixels
ACCEPT = "image/*,.tif,.tiff"  # browsers do not count TIFF as image/* everywhere
# The colour modes that hold a picture (load_image turns each into RGB); others (LAB, HSV, ...) are refused
# rather than shown in false colours.
PICTURE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                 "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_NOTES = {"I": "32-bit grayscale, scaled from its own range to 0-255", "F": "floating-point grayscale, scaled from "
          "its own range to 0-255", "LA": "transparency dropped", "La": "transparency dropped",
          "PA": "transparency dropped", "RGBA": "transparency dropped", "RGBa": "transparency dropped",
          "CMYK": "CMYK converted to RGB"}
_SAVE_AS = "save it as an 8-bit RGB or grayscale PNG or JPEG"


class UploadError(ValueError):
    """An upload that cannot be shown; ``str(err)`` is one sentence naming the file (plain text)."""


@dataclass
class Upload:
    """A usable upload: its file ``name``, the picture ``rgb`` (``(h, w, 3)`` uint8, at most ``PANEL_PX`` a side)
    and ``notes`` on what was done to it (conversions, resizing)."""

    name: str
    rgb: np.ndarray
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One HTML line for the explorer's message area."""
        h, w = self.rgb.shape[:2]
        notes = "; ".join(self.notes)
        return (f"<b>{html.escape(self.name)}</b> added to the images ({w}x{h} px)"
                + (f": {html.escape(notes)}" if notes else "") + ".")


def read_upload(name: str, content: bytes) -> Upload:
    """The uploaded file ``name`` with bytes ``content`` as an :class:`Upload`, or :class:`UploadError`.

    Refused: an empty file, more than ``MAX_UPLOAD_BYTES``, anything :func:`cfcam.images.reading.load_image`
    refuses (not an image, corrupt, more than ``MAX_UPLOAD_PIXELS``), a colour mode that holds no picture
    (``PICTURE_MODES``), a side under ``MIN_SIDE`` pixels. Larger pictures are shrunk to fit a panel (the
    model sees 224 x 224 anyway), so a move stays as fast as on the test images.
    """
    name = Path(str(name or "upload")).name or "upload"
    size = len(content)
    if size == 0:
        raise UploadError(f"{name}: the file is empty (0 bytes).")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name}: too large ({size / 2**20:.1f} MB; at most {MAX_UPLOAD_BYTES / 2**20:.0f} MB). "
                          f"Shrink it first, or {_SAVE_AS}.")
    mode, frames = _peek(name, content)
    if mode not in PICTURE_MODES:
        raise UploadError(f"{name}: its colour mode {mode} holds no ordinary picture; {_SAVE_AS}.")
    image = _decode(name, content)
    w, h = image.size
    if min(w, h) < MIN_SIDE:
        raise UploadError(f"{name}: too small ({w}x{h} px; at least {MIN_SIDE} px a side).")
    notes = [_NOTES[mode]] if mode in _NOTES else []
    if mode.startswith("I;16"):
        notes.append("16-bit grayscale, scaled from its own range to 0-255")
    if frames > 1:
        notes.append(f"the first of its {frames} frames")
    if max(w, h) > PANEL_PX:
        scale = PANEL_PX / max(w, h)
        size_to = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = image.resize(size_to, Image.Resampling.LANCZOS, reducing_gap=3.0)
        notes.append(f"shrunk from {w}x{h} px to fit a panel")
    rgb = np.asarray(image, dtype=np.uint8)
    if not _is_gray(rgb):
        notes.append("a colour picture: the demo models were trained on grayscale radiographs")
    return Upload(name, rgb, notes)


def _peek(name: str, content: bytes) -> tuple[str, int]:
    """The stored colour mode and number of frames, from the header (no pixel decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(content)) as im:
                return im.mode, int(getattr(im, "n_frames", 1) or 1)
    except Image.UnidentifiedImageError:
        raise UploadError(f"{name}: not an image (PNG, JPEG, TIFF, BMP, GIF and WebP are read).") from None
    except Image.DecompressionBombError as exc:
        raise UploadError(f"{name}: too many pixels, refused as a possible decompression bomb ({exc}).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(f"{name}: not a readable image ({type(exc).__name__}: {exc}).") from None


def _decode(name: str, content: bytes) -> Image.Image:
    """The bytes decoded by the project's one safe reader, its refusals reworded to name the upload."""
    with tempfile.TemporaryDirectory(prefix="cfcam-upload-") as tmp:
        path = Path(tmp) / ("upload" + Path(name).suffix.lower()[:8])
        path.write_bytes(content)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # corrupt EXIF and the like: the picture is still shown
                return load_image(path, max_pixels=MAX_UPLOAD_PIXELS)
        except ImageError as err:
            reason = plain_reason(err.reason, path).replace("(raise the limit with max_pixels / --max-pixels)", "")
            reason = reason.strip()
            raise UploadError(f"{name}: {reason}.") from None


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
