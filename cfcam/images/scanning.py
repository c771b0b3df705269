"""Expanding the files and folders a user names into a list of images and a list of problems."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .files import file_kind, stat_problem

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Extensions picked up when a folder is scanned (compared case-insensitively)."""


def find_images(inputs: Iterable) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into ``(images, problems)``.

    A folder is scanned **non-recursively** for files whose extension is one of ``IMAGE_EXTENSIONS``
    (case-insensitive), hidden files (name starting with ".") skipped, sorted by name; an entry with such an
    extension that is not a usable file (a broken or looping link, a FIFO, a socket, a device) is a problem,
    never skipped silently (sub-folders are not scanned, and not reported). A file named explicitly is always
    kept, whatever its extension (``load_image`` decides). A path that does not exist or loops, a folder that
    cannot be listed or holds no images is a ``(path, reason)`` problem. The same file given twice is kept
    once; the order of ``inputs`` is kept.
    """
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    images: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()

    def keep(p: Path) -> None:
        key = os.path.normcase(os.path.realpath(p))
        if key not in seen:
            seen.add(key)
            images.append(p)

    for item in inputs:
        p = Path(os.fsdecode(item))
        try:
            mode = os.stat(p).st_mode
        except OSError as exc:
            problems.append((p, stat_problem(p, exc, "no such file or folder")))
            continue
        if not stat.S_ISDIR(mode):
            keep(p)
            continue
        found, bad = _scan_folder(p)
        problems += bad
        if not found and not bad:
            problems.append((p, f"folder holds no image files ({' '.join(IMAGE_EXTENSIONS)})"))
        for e in found:
            keep(e)
    return images, problems


def _scan_folder(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(image files, problems)`` among the entries of ``folder`` with an image extension, sorted by name."""
    try:
        entries = sorted(folder.iterdir(), key=lambda e: e.name)
    except OSError as exc:
        return [], [(folder, f"cannot list folder ({exc.strerror or exc})")]
    found: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for e in entries:
        if e.suffix.lower() not in IMAGE_EXTENSIONS or e.name.startswith("."):
            continue
        try:
            kind = file_kind(os.stat(e).st_mode)
        except OSError as exc:
            problems.append((e, stat_problem(e, exc)))
            continue
        if kind == "file":
            found.append(e)
        elif kind != "folder":
            problems.append((e, f"not a regular file (a {kind})"))
    return found, problems
