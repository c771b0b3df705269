"""What an ``cfcam evaluate`` output folder says about its run: ``run.json`` with a ``status``, kept honest.

``run.json`` is written first, before any work, with ``"status": "running"``, after the files of an earlier
run in the folder are removed (so that none of them can pass for this run's result); it is rewritten when the
run ends: ``"finished"``, ``"interrupted"`` (with the signal and the stage it was in) or ``"failed"`` (with
why). A run killed outright (SIGKILL, a power cut) leaves ``"running"`` and its process id.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from ..images.imageio import write_text_atomic

RUN_JSON = "run.json"
#: every file ``cfcam evaluate`` writes into its output folder
REPORT_FILES = ("summary.csv", "per_image.csv", "table.md", RUN_JSON, "runs.json", "metrics.png", "curves.png",
                "cascade.png")


def clear_earlier(folder) -> list[str]:
    """Remove an earlier run's report files from ``folder`` (by name, from :data:`REPORT_FILES`); the names
    removed. A link under such a name is removed as a link (what it points to is never touched); a folder is
    left alone (``OSError`` then comes from the write that needs the name)."""
    removed = []
    for name in REPORT_FILES:
        path = Path(folder) / name
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


class RunState:
    """``run.json`` of one run: :meth:`start` (``"running"``), then :meth:`end` once, with the final fields."""

    def __init__(self, folder, info: dict) -> None:
        self.path = Path(folder) / RUN_JSON
        self.info = dict(info)

    def write(self, **fields) -> Path:
        """``run.json`` now: the run's info, updated with ``fields`` (atomically; ``OSError`` if it cannot be)."""
        self.info.update(fields)
        return write_text_atomic(json.dumps(self.info, indent=2, sort_keys=True, default=str) + "\n", self.path)

    def start(self) -> Path:
        return self.write(status="running", pid=os.getpid(), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def end(self, status: str, **fields) -> bool:
        """The final ``run.json``; False if it cannot be written (the caller says so)."""
        try:
            self.write(status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields)
        except OSError:
            return False
        return True
