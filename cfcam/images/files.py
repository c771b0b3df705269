"""Opening a path as a regular file, and naming what is wrong with a path that is not one.

``ImageError`` is the one error a bad input image or mask raises; its message names the file and the reason.
``file_kind`` and ``stat_problem`` put an ``st_mode`` or a failed ``os.stat`` into words, for reading and scanning.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path


class ImageError(ValueError):
    """An input that cannot be used as an image; ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path, reason: str) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")


def open_regular_file(p: Path) -> io.BufferedReader:
    """``p`` opened for reading, or ``ImageError``: only a regular, non-empty file (links followed) is opened.

    The file is opened without blocking and checked on the open descriptor, so a FIFO never hangs the
    program and a file swapped between the check and the read cannot slip through.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise ImageError(p, stat_problem(p, exc)) from None
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind == "folder":
            raise ImageError(p, "is a folder, not an image file")
        if kind != "file":
            raise ImageError(p, f"not a regular file (a {kind})")
        if os.fstat(fd).st_size == 0:
            raise ImageError(p, "empty file (0 bytes)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words: "file", "folder", "FIFO", "socket", "device" or "special file"."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def stat_problem(path, exc: OSError, missing: str = "no such file") -> str:
    """Why ``path`` could not be opened or stat'ed, in words (a loop and a broken link named as such)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself)"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"broken symbolic link (its target {target} does not exist)"
    if exc.errno == errno.ENOENT:
        return missing
    return f"cannot open file ({exc.strerror or exc})"
