"""``summary.csv`` of one ``cfcam explain`` run, kept true while the run goes on.

It is written (atomically) when the run starts, with a row per input, so that an older run's summary never
stands for this one; rewritten after a batch (at most once a second); and written a last time on every way
out: the end, an error, Ctrl-C, SIGTERM. An input the run did not reach says so in its ``error`` cell. Every
cell has its control characters and undecodable bytes escaped; the ``file`` and ``overlay`` cells go through
:func:`path_cell` (a name that starts like a formula gets ``./`` in front: still the same file), the others
through :func:`csv_cell` (a leading ``'``).
``add`` may be called from worker threads.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path

from ..images.writing import write_text_atomic
from .escape import csv_cell, path_cell

PATH_COLUMNS = ("file", "overlay")
CSV_COLUMNS = ("file", "overlay", "predicted", "confidence", "target", "clusters", "noise_channels", "seconds",
               "notes", "error")
NOT_REACHED = "not explained: the run ended before this image"


class RunLog:
    """The rows of one run, in input order (path problems first), and the ``summary.csv`` they make."""

    PROGRESS_SECONDS = 1.0  # shortest time between two saves during the run

    def __init__(self, path, inputs) -> None:
        self.path = Path(path)
        self._order = [str(p) for p in inputs]
        self._rows: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._saved_at: float | None = None  # when save_progress last wrote

    def add(self, row: dict) -> None:
        """Record the row of one input (``row["file"]`` is its path as given); replaces an earlier one."""
        with self._lock:
            self._rows[row["file"]] = dict(row)

    def rows(self, pending: str = NOT_REACHED) -> list[dict]:
        """One row per input in order; an input without a row yet gets ``pending`` as its error."""
        with self._lock:
            return [self._rows.get(key) or {"file": key, "error": pending} for key in self._order]

    def text(self, pending: str = NOT_REACHED) -> str:
        """The CSV text, every cell escaped."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        for row in self.rows(pending):
            writer.writerow({k: path_cell(v) if k in PATH_COLUMNS else csv_cell(v) for k, v in row.items()})
        return buf.getvalue()

    def save(self, pending: str = NOT_REACHED) -> Path:
        """Write ``summary.csv`` now (atomically); ``OSError`` if it cannot be written."""
        return write_text_atomic(self.text(pending), self.path)

    def save_progress(self) -> bool:
        """``save()`` during the run, at most once every :attr:`PROGRESS_SECONDS` (each save rewrites every row):
        a failure (a full disk) returns False, the final ``save()`` reports it."""
        now = time.monotonic()
        if self._saved_at is not None and now - self._saved_at < self.PROGRESS_SECONDS:
            return True
        self._saved_at = now
        try:
            self.save()
        except OSError:
            return False
        return True
