"""One ``cfcam explain`` run per output folder: a lock file that the OS releases when its process dies.

A second run into a folder that a run is writing to is refused at once (it would overwrite the first
run's overlays and summary). The lock is ``flock``/``msvcrt.locking`` on ``.cfcam-explain.lock``, so a
killed run never leaves a stale lock; the file itself is removed when the run ends.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".cfcam-explain.lock"


class FolderBusy(Exception):
    """Another run holds the folder; ``pid`` is its process id when known."""

    def __init__(self, folder, pid: int | None) -> None:
        self.folder, self.pid = Path(folder), pid
        held = f" (process {pid})" if pid else ""
        super().__init__(f"{folder} is in use by another cfcam explain run{held}; wait for it to finish or "
                         "choose another output folder")


class FolderLock:
    """The lock of one output folder: ``acquire()`` (``FolderBusy``, or ``OSError`` if the folder is not
    writable), ``release()``; also a context manager."""

    def __init__(self, folder) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        if self._fd is None:
            self._fd = _acquire(self.path)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _release(self.path, fd)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _acquire(path: Path) -> int:
    """An open, locked descriptor of ``path`` holding this process id."""
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            pid = _read_pid(fd)
            os.close(fd)
            raise FolderBusy(path.parent, pid)
        if _still_named(fd, path):  # not removed by a finishing run between our open and our lock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise FolderBusy(path.parent, None)


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` without waiting; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_named(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _read_pid(fd: int) -> int | None:
    """The process id written in the lock file, if any."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace") if hasattr(os, "pread") else ""
    except OSError:
        return None
    return int(text.strip()) if text.strip().isdigit() else None


def _release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then let go."""
    try:
        os.unlink(path)
    except OSError:  # already gone, or Windows (an open file cannot be removed there)
        pass
    finally:
        os.close(fd)
