"""Progress for the notebooks' long cells: printed steps, so a learner on a slow or busy machine sees the work
move instead of a silent cell (any cell over about 5 s shows its progress)."""

from __future__ import annotations

import time

__all__ = ["PrintedProgress"]


class PrintedProgress:
    """A ``progress(done, total, label)`` callback (as :class:`cfcam.evaluation.engine.Evaluation` takes) that
    prints one short line when the step's label changes and at most one every ``every`` seconds otherwise,
    with the share done and the seconds so far; ``done == total`` prints the last line."""

    def __init__(self, title: str = "", every: float = 2.0, out=print) -> None:
        self.title, self.every, self.out = title, float(every), out
        self.start = time.perf_counter()
        self._last_time = -1e9
        self._last_label: str | None = None
        self.lines = 0

    def __call__(self, done: int, total: int, label: str = "") -> None:
        now = time.perf_counter()
        finished = total > 0 and done >= total
        if label == self._last_label and now - self._last_time < self.every and not finished:
            return
        self._last_time, self._last_label = now, label
        share = f"{100 * done / total:3.0f} %" if total > 0 else "  ? %"
        head = f"{self.title}: " if self.title else ""
        self.out(f"{head}{share} after {now - self.start:4.1f} s  {label}")
        self.lines += 1
