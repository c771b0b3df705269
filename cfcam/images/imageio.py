"""Reading images safely and writing results atomically.

``load_image`` turns whatever a user points at (8- or 16-bit, grayscale, palette, RGBA, CMYK, rotated by EXIF)
into one RGB image, or raises ``ImageError`` naming the file and the reason. ``find_images`` expands files and
folders into a list of images plus a list of problems. The ``*_atomic`` writers go through a temporary file in
the destination folder and ``os.replace``, so an interrupted run never leaves a half-written file. Nothing here
ever opens an input file for writing.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Extensions picked up when a folder is scanned (compared case-insensitively)."""

_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


class ImageError(ValueError):
    """An input that cannot be used as an image; ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")


# -- reading ----------------------------------------------------------------------------------------------

def load_image(path) -> Image.Image:
    """The image at ``path`` as an in-memory RGB ``PIL.Image``; ``ImageError`` if it cannot be used.

    Refused with a reason: a missing path, a folder, an unreadable or empty file, a file PIL does not
    recognise or cannot decode (corrupt, truncated, not an image), and an image with more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (decompression bomb: refused from the header, never decoded).
    Conversions: EXIF orientation applied; 16-bit and 32-bit grayscale (``I;16``, ``I``, ``F``, common for
    radiographs) scaled linearly from the image's own min..max to 0..255 (a constant image becomes black);
    alpha is **dropped** (the colour channels are kept as stored, not composited), so the pixel values the
    model sees do not depend on transparency; palette, grayscale, 1-bit and CMYK images convert to RGB.
    Multi-frame files (GIF, multi-page TIFF) give their first frame. The file is only ever opened for reading.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(p, "no such file")
    if p.is_dir():
        raise ImageError(p, "is a folder, not an image file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageError(p, f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(p, "empty file (0 bytes)")
    try:
        fh = open(p, "rb")
    except OSError as exc:
        raise ImageError(p, f"cannot open file ({exc.strerror or exc})") from None
    with fh, warnings.catch_warnings():
        # Over MAX_IMAGE_PIXELS PIL only warns (over twice that it raises): treat both as a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fh) as im:
                im.load()
                image = _to_rgb(_exif_transpose(im))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(p, f"too many pixels, refused as a possible decompression bomb ({exc})") from None
        except Image.UnidentifiedImageError:
            raise ImageError(p, "not a recognised image format (corrupt, or not an image)") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
            raise ImageError(p, f"corrupt or truncated image data ({type(exc).__name__}: {exc})") from None
    return image


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
    a = np.asarray(values, dtype=np.float64)
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


def find_images(inputs: Iterable) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into ``(images, problems)``.

    A folder is scanned **non-recursively** for files whose extension is one of ``IMAGE_EXTENSIONS``
    (case-insensitive), hidden files (name starting with ".") skipped, sorted by name. A file named
    explicitly is always kept, whatever its extension (``load_image`` decides). A path that does not exist,
    a folder that cannot be listed or holds no images is a ``(path, reason)`` problem. The same file given
    twice is kept once; the order of ``inputs`` is kept.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    images: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()

    def keep(p: Path) -> None:
        key = os.path.normcase(str(p.resolve()))
        if key not in seen:
            seen.add(key)
            images.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            try:
                entries = sorted(p.iterdir(), key=lambda e: e.name)
            except OSError as exc:
                problems.append((p, f"cannot list folder ({exc.strerror or exc})"))
                continue
            found = [e for e in entries if e.suffix.lower() in IMAGE_EXTENSIONS
                     and not e.name.startswith(".") and e.is_file()]
            if not found:
                problems.append((p, f"folder holds no image files ({' '.join(IMAGE_EXTENSIONS)})"))
            for e in found:
                keep(e)
        elif p.exists():
            keep(p)
        else:
            problems.append((p, "no such file or folder"))
    return images, problems


# -- writing ----------------------------------------------------------------------------------------------

def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomic(path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, then ``os.replace`` it onto ``path``.

    The temporary file is removed if anything fails (also on ``KeyboardInterrupt``), so ``path`` holds
    either its old content or the complete new one, never half of it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file path, got the folder {path}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


PNG_COMPRESS_LEVEL = 1  # zlib level: about 3x faster than PIL's default 6, files about 10-20 % larger


def save_png_atomic(image, path) -> Path:
    """Write ``image`` (PIL image, or uint8 array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``) as a PNG, atomically."""
    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ValueError(f"image must be a PIL image or a uint8 array, got dtype {arr.dtype}")
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
        image = Image.fromarray(np.ascontiguousarray(arr))
    return _write_atomic(path, lambda fh: image.save(fh, format="PNG", compress_level=PNG_COMPRESS_LEVEL))


def save_npy_atomic(array, path) -> Path:
    """Write ``array`` as a ``.npy`` file (no pickles), atomically."""
    arr = np.asarray(array)
    if arr.dtype == object:
        raise ValueError("array must be numeric, got dtype object")
    return _write_atomic(path, lambda fh: np.save(fh, arr, allow_pickle=False))


def write_bytes_atomic(data: bytes, path) -> Path:
    """Write ``data`` to ``path``, atomically."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"data must be bytes, got {type(data).__name__}")
    return _write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(text: str, path, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (encoded with ``encoding``, newlines as given), atomically."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return write_bytes_atomic(text.encode(encoding), path)
