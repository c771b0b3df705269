"""One cfcam run per output folder: a lock file that the OS releases when its process dies.

A second run into a folder that a run is writing to is refused at once (it would overwrite the first
run's files). The lock is ``flock``/``msvcrt.locking`` on ``.cfcam-explain.lock`` (the same file for
``cfcam explain`` and ``cfcam evaluate``: both write a ``summary.csv``), so a killed run never leaves a stale
lock; the file itself is removed when the run ends. The lock file is opened without following links
(``O_NOFOLLOW``) and must be a regular file: a link planted under its name never makes the run write
anywhere else.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

LOCK_NAME = ".cfcam-explain.lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FolderBusy(Exception):
    """Another run holds the folder; ``pid`` is its process id when known, ``command`` its subcommand."""

    def __init__(self, folder, pid: int | None, command: str | None = None) -> None:
        self.folder, self.pid, self.command = Path(folder), pid, command
        held = f" (process {pid})" if pid else ""
        super().__init__(f"{folder} is in use by another cfcam {command or 'explain'} run{held}; wait for it to "
                         "finish or choose another output folder")


class LockNotAFile(OSError):
    """The lock's name is taken by something that is not a regular file (a link, a folder, a FIFO)."""


class FolderLock:
    """The lock of one output folder: ``acquire()`` (``FolderBusy``, ``LockNotAFile``, or ``OSError`` if the
    folder is not writable), ``release()``; also a context manager. ``command`` is written beside the process
    id, so that a refused run can say what holds the folder."""

    def __init__(self, folder, command: str = "explain") -> None:
        self.path = Path(folder) / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        if self._fd is None:
            self._fd = _acquire(self.path, self.command)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _release(self.path, fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _open(path: Path) -> int:
    """``path`` opened for reading and writing, created if missing, never through a link; ``LockNotAFile``
    when the name is taken by anything but a regular file."""
    try:
        if not _NOFOLLOW and os.path.islink(path):  # no O_NOFOLLOW (Windows): check first
            raise OSError(errno.ELOOP, "a symbolic link")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise LockNotAFile(errno.ELOOP, f"{path} is a symbolic link, not cfcam's lock file; remove it") from None
        if exc.errno == errno.EISDIR or os.path.isdir(path):
            raise LockNotAFile(errno.EISDIR, f"{path} is a folder, not cfcam's lock file; remove it") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise LockNotAFile(errno.EINVAL, f"{path} is not a regular file, so not cfcam's lock file; remove it")
    return fd


def _acquire(path: Path, command: str) -> int:
    """An open, locked descriptor of ``path`` holding this process id and ``command``."""
    for _ in range(20):
        fd = _open(path)
        if not _try_lock(fd):
            pid, holder = _read_holder(fd)
            os.close(fd)
            raise FolderBusy(path.parent, pid, holder)
        if _still_named(fd, path):  # not removed by a finishing run between our open and our lock
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {command}\n".encode())
            except OSError:  # a full disk: leave no empty lock file behind
                _release(path, fd)
                raise
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
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _read_holder(fd: int) -> tuple[int | None, str | None]:
    """The process id and subcommand written in the lock file, if any."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace") if hasattr(os, "pread") else ""
    except OSError:
        return None, None
    words = text.split()
    pid = int(words[0]) if words and words[0].isdigit() else None
    command = words[1] if len(words) > 1 and words[1] in ("explain", "evaluate") else None
    return pid, command


def _read_pid(fd: int) -> int | None:
    """The process id written in the lock file, if any."""
    return _read_holder(fd)[0]


def _release(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then let go."""
    try:
        if _still_named(fd, path):  # never remove what another run put under the name
            os.unlink(path)
    except OSError:  # already gone, or Windows (an open file cannot be removed there)
        pass
    finally:
        os.close(fd)
