"""Signals that stop a run cleanly: SIGINT (Ctrl-C), SIGTERM and SIGHUP become an exception in the main thread.

The first signal raises :class:`Stopped` where the run is, so ``finally`` blocks and atomic writers clean up;
later ones are ignored while the run writes its summary (a third quits at once, exit code 128 + N). Inside
:func:`deferred_stop` the exception waits for the end of the block: an exception half-way through a thread
pool's ``submit`` would leave a worker thread running that the pool no longer knows about.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The run was stopped by signal ``signum``; ``exit_code`` is the shell's ``128 + signum`` (130 for Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(exc: BaseException) -> str:
    """The signal behind an interruption: ``SIGTERM``... for :class:`Stopped`, ``SIGINT`` for a plain Ctrl-C."""
    return signal.Signals(exc.signum).name if isinstance(exc, Stopped) else "SIGINT"


class SignalGuard:
    """Context manager: while it is active, the first of ``SIGNALS`` raises :class:`Stopped` (when armed).

    ``disarm()`` before writing what must be written (the summary): a signal is then only recorded in
    ``signum``. Installed only in the main thread (elsewhere Python cannot); the old handlers come back at exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.armed = True
        self._count = 0
        self._old: dict = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}

    def disarm(self) -> None:
        """From now on a signal is recorded, not raised."""
        self.armed = False

    def _handle(self, signum, frame) -> None:
        self._count += 1
        if self.signum is None:
            self.signum = signum
            if self.armed:
                if _deferring["depth"]:
                    _deferring["guard"] = self
                    return
                raise Stopped(signum)
        elif self._count >= 3:  # asked three times: quit now, without the summary
            os._exit(128 + signum)


@contextmanager
def on_start_up():
    """While the command line starts (imports, parsing) and finishes (printing), before and after a run's
    :class:`SignalGuard`: the first of ``SIGNALS`` prints ``cfcam: stopped by SIG...`` and exits 128 + N at
    once (nothing is being written then, and an exception inside an import would print a traceback). The old
    handlers come back at exit; only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _exit_now) for s in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _exit_now(signum, frame) -> None:
    """One line on stderr, then exit 128 + N without unwinding (see :func:`on_start_up`)."""
    try:
        os.write(2, f"cfcam: stopped by {signal.Signals(signum).name}\n".encode())
    except OSError:
        pass
    os._exit(128 + signum)


_deferring: dict = {"depth": 0, "guard": None}  # signal handlers run in the main thread only


@contextmanager
def deferred_stop():
    """A signal that arrives inside the block stops the run at the block's end instead of inside it (nestable;
    for short steps that must not be cut in two, such as handing a job to a thread pool)."""
    _deferring["depth"] += 1
    try:
        yield
    finally:
        _deferring["depth"] -= 1
        guard = _deferring["guard"]
        if _deferring["depth"] == 0 and guard is not None:
            _deferring["guard"] = None
            if guard.armed:
                raise Stopped(guard.signum)
