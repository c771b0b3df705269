"""Reading images and masks safely: every refusal an ``ImageError`` naming the file and the reason.

``load_image`` turns whatever a user points at (8- or 16-bit, grayscale, palette, RGBA, CMYK, rotated by EXIF)
into one RGB image; ``load_mask`` reads a mask the same way into a bool array. Headers are checked before any
pixel is decoded (decompression bombs, lying sizes), and nothing here ever opens an input file for writing.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .files import ImageError, open_regular_file

_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")

MAX_PIXELS = 40_000_000
"""Default pixel limit of ``load_image`` (40 MP, about 2 GB at peak for an overlay at full size); larger
images are refused from their header, before any pixel is decoded. ``PIL.Image.MAX_IMAGE_PIXELS`` applies too."""

# Most image pixels one byte of stored data can hold, per format (measured on constant images, with a
# margin of 4 or more): a header claiming more is lying, and is refused before a full-size buffer exists.
# PNG is checked on its compressed data itself (deflate cannot exceed 1032:1). WebP, fax-coded TIFF and the
# rest have no useful bound and are left to their decoders.
_PIXELS_PER_BYTE = {"JPEG": 1_000, "MPO": 1_000, "GIF": 5_000, "BMP": 1_000, "TIFF": 5_000}
_TIFF_BOUNDED = {"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"}
_DEFLATE_MAX_RATIO = 1100  # deflate's ceiling is 1032:1; a little over for headers


class ImageWarning(UserWarning):
    """Something odd but harmless in an image file (e.g. corrupt EXIF data); the message names the file."""


# Python's warning filters and recorder are global: two threads reading images at once would lose or swap each
# other's decoder warnings (one thread's catch_warnings restores the filters under the other). Reading and
# re-issuing hold this lock, so threads that read images (the command line's) keep each file's own warnings.
_WARNINGS_LOCK = threading.RLock()


def load_image(path, max_pixels: int | None = None) -> Image.Image:
    """The image at ``path`` as an in-memory RGB ``PIL.Image``; ``ImageError`` if it cannot be used.

    Refused with a reason: a missing path, a broken or looping symbolic link, a folder, a FIFO or device, an
    unreadable or empty file, a file PIL does not recognise or cannot decode (corrupt, truncated, not an
    image), an image with more than ``max_pixels`` pixels (default ``MAX_PIXELS``, and never more than
    ``PIL.Image.MAX_IMAGE_PIXELS``: a possible decompression bomb), and a header that claims more pixels than
    the file's data can hold; the last two are refused from the header, never decoded.
    Conversions: EXIF orientation applied; 16-bit and 32-bit grayscale (``I;16``, ``I``, ``F``, common for
    radiographs) and 16-bit colour (48/64-bit PNG and TIFF) scaled linearly from the image's own min..max to
    0..255, jointly over the colour channels (a constant image becomes black); alpha is **dropped** (the colour
    channels are kept as stored, not composited), so the pixel values the model sees do not depend on
    transparency; palette, grayscale, 1-bit and CMYK images convert to RGB. Multi-frame files (GIF,
    multi-page TIFF) give their first frame. The file is only ever opened for reading.
    Warnings from the decoder (such as corrupt EXIF data) are re-issued as ``ImageWarning`` naming the file,
    and listed in ``image.info["warnings"]``.
    """
    image, notes = _read(Path(path), max_pixels, _decode)
    image.info["warnings"] = notes
    return image


def load_mask(path, max_pixels: int | None = None) -> np.ndarray:
    """The mask at ``path`` as a bool ``(H, W)`` array: True where any colour value is non-zero (alpha ignored).

    Read as safely as :func:`load_image` (the same refusals, ``ImageError``) and turned upright by EXIF like it,
    so a mask lines up with its image; the values are the stored ones, never rescaled (a 16-bit mask of 0 and
    1 keeps its ones); a palette image is read as its colours.
    """
    return _read(Path(path), max_pixels, _decode_mask)[0]


def _read(p: Path, max_pixels: int | None, decode: Callable) -> tuple:
    """``(decode(p, fh, im), decoder warnings)`` for the file at ``p``, or ``ImageError`` (see ``load_image``);
    each warning is also re-issued as an ``ImageWarning`` naming the file, to the caller of ``load_image`` or
    ``load_mask``. Holds :data:`_WARNINGS_LOCK` throughout."""
    with _WARNINGS_LOCK:
        decoded, notes = _decode_recording_warnings(p, max_pixels, decode)
        for note in notes:
            warnings.warn(ImageWarning(f"{p}: {note}"), stacklevel=3)
    return decoded, notes


def _decode_recording_warnings(p: Path, max_pixels: int | None, decode: Callable) -> tuple:
    """``(decode(p, fh, im), decoder warnings)``: the refusals and the decoder's warnings, recorded."""
    fh = open_regular_file(p)
    limit = _pixel_limit(max_pixels)
    with fh, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded here: bombs refused, the rest re-issued with the file name
        try:
            with Image.open(fh) as im:
                _refuse_lying_header(p, fh, im)
                _refuse_too_many_pixels(p, im, caught, limit)
                decoded = decode(p, fh, im)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(p, f"too many pixels, refused as a possible decompression bomb ({exc})") from None
        except Image.UnidentifiedImageError:
            raise ImageError(p, "not a recognised image format (corrupt, or not an image)") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
            raise ImageError(p, f"corrupt or truncated image data ({type(exc).__name__}: {exc})") from None
    return decoded, [" ".join(str(w.message).split()) for w in caught]


def _pixel_limit(max_pixels: int | None) -> int:
    """The pixel limit in force: ``max_pixels`` (default ``MAX_PIXELS``), capped by PIL's own limit."""
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if limit < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    pil = Image.MAX_IMAGE_PIXELS
    return min(limit, int(pil)) if pil else limit


def _refuse_too_many_pixels(p: Path, im: Image.Image, caught: list, limit: int) -> None:
    """``ImageError`` if the header's size is over ``limit`` or PIL warned of a decompression bomb."""
    w, h = im.size
    bomb = any(issubclass(c.category, Image.DecompressionBombWarning) for c in caught)
    if bomb or w * h > limit:
        raise ImageError(p, f"too many pixels ({w}x{h} = {w * h} > {limit}), refused as a possible "
                            "decompression bomb (raise the limit with max_pixels / --max-pixels)")


def _refuse_lying_header(p: Path, fh, im: Image.Image) -> None:
    """``ImageError`` if the header claims more pixels than the file's data could possibly hold."""
    w, h = im.size
    if im.format == "PNG":
        need, have = _png_row_bytes(im) * h, _png_data_bytes(fh)
        if need > _DEFLATE_MAX_RATIO * have + 65_536:
            raise ImageError(p, f"the header claims {w}x{h} pixels ({need} bytes) but the file holds only "
                                f"{have} bytes of compressed image data (a lying or truncated header)")
        return
    bound = _max_pixels_per_byte(im)
    if bound is None:
        return
    size = os.fstat(fh.fileno()).st_size
    if w * h > bound * size:
        raise ImageError(p, f"the header claims {w}x{h} pixels but the file holds only {size} bytes "
                            "(a lying or truncated header)")


def _max_pixels_per_byte(im: Image.Image) -> int | None:
    """The most pixels one stored byte can hold in ``im``'s format and compression, or None if unbounded."""
    if im.format == "TIFF" and im.info.get("compression") not in _TIFF_BOUNDED:
        return None  # fax (group 3/4) coding of a blank page packs far more
    if im.format == "BMP" and not (im.tile and im.tile[0][0] == "raw"):
        return None  # run-length coding with "delta" jumps can skip whole regions
    return _PIXELS_PER_BYTE.get(im.format or "")


def _png_row_bytes(im: Image.Image) -> int:
    """Bytes of one decompressed PNG row (filter byte included), from the mode's bits per pixel."""
    bits = {"1": 1, "L": 8, "P": 8, "LA": 16, "RGB": 24, "RGBA": 32, "I": 16, "I;16": 16, "I;16B": 16}
    depth = bits.get(im.mode, 8)  # unknown: assume little, so an honest file is never refused
    raw = _tile_rawmode(im)
    if ";16" in raw:  # 16 bits per channel
        depth = 16 * len(im.getbands())
    elif raw in ("1", "L;2", "L;4", "P;1", "P;2", "P;4"):  # packed low bit depths
        depth = {"1": 1, "L;2": 2, "L;4": 4, "P;1": 1, "P;2": 2, "P;4": 4}[raw]
    return 1 + (im.size[0] * depth + 7) // 8


def _png_data_bytes(fh) -> int:
    """Total length of a PNG's IDAT/fdAT chunks (its compressed pixel data), read from the chunk headers."""
    pos = fh.tell()
    total = 0
    try:
        fh.seek(8)  # the signature
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"IDAT", b"fdAT"):
                total += length
            if kind == b"IEND":
                break
            fh.seek(length + 4, io.SEEK_CUR)  # data and CRC
    finally:
        fh.seek(pos)
    return total


def _tile_rawmode(im: Image.Image) -> str:
    """The raw mode of the image's first data tile (e.g. ``"RGB;16B"``), or ``""``."""
    if not im.tile:
        return ""
    args = im.tile[0][3]
    raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
    return raw if isinstance(raw, str) else ""


def _is_deep_colour(im: Image.Image) -> bool:
    """True for RGB(A) stored with 16 bits per channel, of which PIL would keep only the high byte."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    bits = getattr(im, "tag_v2", {}).get(258) if im.format == "TIFF" else None  # TIFF BitsPerSample
    if bits is not None:
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return ";16" in _tile_rawmode(im)


def _decode(p: Path, fh, im: Image.Image) -> Image.Image:
    """Decode the opened image into a new RGB image (see ``load_image`` for the rules)."""
    if _is_deep_colour(im):
        return _orient(_decode_deep_colour(p, fh), _orientation(im))
    im.load()
    return _to_rgb(_exif_transpose(im))


def _decode_mask(p: Path, fh, im: Image.Image) -> np.ndarray:
    """Decode the opened mask into a bool array: any non-zero colour value (see ``load_mask``)."""
    if _is_deep_colour(im):  # PIL would keep only the high byte of each 16-bit value
        bgr = _decode_full_depth(p, fh, "mask")
        return _orient_array((bgr[..., :3] != 0).any(axis=2), _orientation(im))
    im.load()
    im = _exif_transpose(im)
    if im.mode not in ("1", "L", "LA", "RGB", "RGBA", *_HIGH_DEPTH_MODES):
        im = im.convert("RGBA" if im.mode in ("P", "PA") else "RGB")  # a palette's colours; CMYK, YCbCr...
    arr = np.asarray(im)
    if arr.ndim == 3:
        colour = [i for i, band in enumerate(im.getbands()) if band != "A"]
        return (arr[..., colour] != 0).any(axis=2)
    return arr != 0


def _orient_array(mask: np.ndarray, orientation: int) -> np.ndarray:
    """A bool mask decoded apart from PIL turned upright for its file's EXIF ``orientation``."""
    upright = _orient(Image.fromarray(mask.astype(np.uint8) * 255, mode="L"), orientation)
    return np.asarray(upright) != 0


def _decode_full_depth(p: Path, fh, kind: str) -> np.ndarray:
    """A 16-bit-per-channel colour file decoded at full depth by OpenCV: ``(H, W, 3 or 4)``, BGR(A), as stored;
    ``ImageError`` naming the ``kind`` of file (image, mask) when it cannot be."""
    import cv2

    fh.seek(0)
    arr = cv2.imdecode(np.frombuffer(fh.read(), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(p, f"16-bit colour {kind} that cannot be decoded at full depth (corrupt, or an "
                            "unsupported compression)")
    return arr


def _decode_deep_colour(p: Path, fh) -> Image.Image:
    """A 16-bit-per-channel colour image decoded at full depth, scaled to its own range."""
    rgb = _decode_full_depth(p, fh, "image")[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    return Image.fromarray(scale_to_uint8(rgb), mode="RGB")


def _orientation(im: Image.Image) -> int:
    """The EXIF Orientation tag of ``im`` (1, upright, when absent or unreadable)."""
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # a malformed EXIF block must not make a readable image unusable
        return 1


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` (decoded apart from PIL) turned upright for the EXIF ``orientation`` of its file."""
    if orientation == 1:
        return image
    image.getexif()[0x0112] = orientation
    return _exif_transpose(image)


def _exif_transpose(im: Image.Image) -> Image.Image:
    """``im`` turned upright according to its EXIF Orientation tag (unchanged if the tag is malformed)."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # a malformed EXIF block must not make a readable image unusable
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """A new RGB image from any PIL mode (see ``load_image`` for the rules)."""
    if im.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(scale_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    if im.mode == "La":  # premultiplied alpha
        im = im.convert("LA")
    if im.mode == "LA":
        im = im.convert("L")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    return im.convert("RGB")  # drops alpha; always a copy, detached from the file


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """``values`` mapped linearly from their own min..max to 0..255 uint8 (all zero when constant)."""
    values = np.asarray(values)
    # float32 holds 16-bit values exactly and needs half the memory of float64 on a large image
    a = values.astype(np.float32 if values.dtype.itemsize <= 2 else np.float64)
    if a.size == 0:
        raise ValueError("values must not be empty")
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    scaled = (np.where(finite, a, lo) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
