"""Writing results atomically: a temporary file in the destination folder, then one ``os.replace``.

An interrupted run never leaves a half-written file: ``path`` holds its old content or the complete new one.
Temporary files are hidden and named after the writing process, so :func:`remove_stale_temps` can clear what a
killed run left behind without touching a live writer's. :func:`write_files_atomic` writes several files that
belong together (a model and its card) and renames them only once all of them are complete.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from .png import PNG_COMPRESS_LEVEL, encode_png

TEMP_PREFIX = ".cfcam-"
"""Temporary files are named ``.cfcam-<pid>-<random>.tmp``: short whatever the output's name, and owned."""


def _temp_path(folder: Path) -> Path:
    """A fresh temporary name in ``folder`` (28 bytes or so, so a long output name never makes it too long)."""
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.tmp"


def write_atomic(path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, then move it onto ``path`` in one step.

    The temporary file, ``.cfcam-<pid>-<random>.tmp`` (hidden, short whatever ``path`` is), is removed if
    anything fails (also on ``KeyboardInterrupt``); after a ``SIGKILL`` :func:`remove_stale_temps` removes it.
    ``path`` holds either its old content or the complete new one, never half of it.
    """
    path = _file_path(path)
    tmp = _temp_path(path.parent)  # named before it exists: a Ctrl-C just after its creation still removes it
    try:
        _fill(tmp, write)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_files_atomic(contents: Mapping) -> list[Path]:
    """Write several files that belong together (``{path: bytes}``); rename them only once all are complete.

    Every file is first written in full to its own temporary file beside it; only then are they moved onto
    their paths, one ``os.replace`` after the other. A run stopped (an error, Ctrl-C, ``SIGKILL``) before the
    renames leaves every old file as it was, so a model is never paired with another model's card.
    Returns the paths, in the order given.
    """
    items = [(_file_path(path), data) for path, data in contents.items()]
    for path, data in items:
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"the data for {path} must be bytes, got {type(data).__name__}")
    temps = [_temp_path(path.parent) for path, _ in items]
    try:
        for (_, data), tmp in zip(items, temps):
            _fill(tmp, lambda fh, data=data: fh.write(data))
        for (path, _), tmp in zip(items, temps):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            _remove(tmp)  # those not renamed yet (a renamed one, or one never created, is not there)
        raise
    return [path for path, _ in items]


def _file_path(path) -> Path:
    """``path`` as a ``Path``; ``ValueError`` if it names an existing folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file path, got the folder {path}")
    return path


def _fill(tmp: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Create the new file ``tmp`` and hand it to ``write(fh)``, then flush it to disk (the caller removes it
    on failure)."""
    with os.fdopen(_create(tmp), "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def _create(tmp: Path) -> int:
    """A descriptor of the new, empty file ``tmp``, opened for writing, with the usual permissions (umask)."""
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def _remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def check_writable(folder) -> None:
    """Raise ``OSError`` unless a file can be created in ``folder`` (tried for real, then removed)."""
    tmp = _temp_path(Path(folder))
    try:
        os.close(_create(tmp))
    finally:
        _remove(tmp)


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files that crashed cfcam processes left in ``folder``; the removed paths.

    Only names ``.cfcam-<pid>-<hex>.tmp`` whose process no longer runs are touched: a live writer's are kept.
    """
    removed = []
    for e in Path(folder).glob(f"{TEMP_PREFIX}*-*.tmp"):
        pid = e.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and e.is_file() and not e.is_symlink() and not process_alive(int(pid)):
            _remove(e)
            removed.append(e)
    return removed


def process_alive(pid: int) -> bool:
    """True when a process with id ``pid`` exists (on this machine): a temporary file named after a live
    process is still being written."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):  # not ours, or the platform cannot tell
        return True
    return True


def save_png_atomic(image, path) -> Path:
    """Write ``image`` (PIL image, or uint8 array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``) as a PNG, atomically.

    Arrays are encoded by :func:`encode_png` before the file is opened; PIL images by PIL (any mode)."""
    if isinstance(image, Image.Image):
        return write_atomic(path, lambda fh: image.save(fh, format="PNG", compress_level=PNG_COMPRESS_LEVEL))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be a PIL image or a uint8 array, got dtype {arr.dtype}")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if min(arr.shape[:2]) == 0:
        raise ValueError(f"image must not be empty, got shape {arr.shape}")
    data = encode_png(np.ascontiguousarray(arr))
    return write_atomic(path, lambda fh: fh.write(data))


def save_npy_atomic(array, path) -> Path:
    """Write ``array`` as a ``.npy`` file (no pickles), atomically."""
    arr = np.asarray(array)
    if arr.dtype == object:
        raise ValueError("array must be numeric, got dtype object")
    return write_atomic(path, lambda fh: np.save(fh, arr, allow_pickle=False))


def write_bytes_atomic(data: bytes, path) -> Path:
    """Write ``data`` to ``path``, atomically."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"data must be bytes, got {type(data).__name__}")
    return write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(text: str, path, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (encoded with ``encoding``, newlines as given), atomically."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return write_bytes_atomic(text.encode(encoding), path)
