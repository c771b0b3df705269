"""What an output folder already holds: earlier runs' overlays (never taken as inputs), their summary, and the
temporary files of killed runs.

An overlay is recognised by its name (``<stem>_<method>.png`` or ``.npy`` for a registered method or
``cfcam``) or by being listed in the ``overlay`` column of its folder's ``summary.csv``. Nothing here follows
a link to remove or read something outside the folder it was given.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

from ..images.writing import TEMP_PREFIX, process_alive
from .escape import printable

SUMMARY_NAME = "summary.csv"
_MAX_SUMMARY_BYTES = 64 << 20  # an earlier summary larger than this is not read (not cfcam's)


def overlay_methods() -> list[str]:
    """The method names an overlay's name may end with (``<stem>_<method>.png``)."""
    from ..methods.registry import method_names

    return ["cfcam", *method_names()]


def overlay_like(name: str, methods=None) -> bool:
    """Whether a file name looks like a cfcam overlay or raw map: ``<stem>_<method>.png`` / ``.npy``."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() not in ("png", "npy"):
        return False
    return any(stem.endswith(f"_{m}") and len(stem) > len(m) + 1 for m in (methods or overlay_methods()))


def cell_name(cell: str) -> str:
    """The file name a summary cell refers to: ``./`` (this version's spreadsheet guard) and ``'`` before a
    formula character (the guard of earlier versions) removed."""
    if cell.startswith("./"):
        return cell[2:]
    if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@"):
        return cell[1:]
    return cell


def earlier_summary(folder) -> dict[str, bool]:
    """``{overlay name as shown: explained}`` from ``folder/summary.csv`` of an earlier ``cfcam explain`` run;
    empty when there is none, it is not a regular file, or it is not such a summary."""
    path = Path(folder) / SUMMARY_NAME
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_SUMMARY_BYTES:
            return {}
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "overlay" not in reader.fieldnames:
                return {}
            return {cell_name(row["overlay"]): not row.get("error") for row in reader if row.get("overlay")}
    except (OSError, csv.Error, UnicodeError):
        return {}


def split_earlier_outputs(images: list[Path], given, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """``(kept, skipped)``: ``images`` without the overlays of earlier runs (and of this one).

    An image found by scanning a folder is skipped when it is named like an overlay or listed in that folder's
    ``summary.csv``; an image named on the command line only when it is listed there, or lies in the output
    folder and is named like an overlay (explicit names are otherwise always tried)."""
    explicit = {os.path.normcase(os.path.abspath(os.fsdecode(p))) for p in given}
    out_key = _folder_key(out_dir)
    methods = overlay_methods()
    listed: dict[str, dict[str, bool]] = {}
    kept, skipped = [], []
    for path in images:
        parent = _folder_key(path.parent)
        if parent not in listed:
            listed[parent] = earlier_summary(path.parent)
        named = overlay_like(path.name, methods)
        in_summary = printable(path.name) in listed[parent]
        if os.path.normcase(os.path.abspath(path)) in explicit:
            drop = in_summary or (named and parent == out_key)
        else:
            drop = in_summary or named
        (skipped if drop else kept).append(path)
    return kept, skipped


def unrecorded_overlays(out_dir: Path) -> list[str]:
    """Overlays (by name) in ``out_dir`` that its ``summary.csv`` does not record as explained: the work of a run
    killed before it could write its last summary (or of another tool), shown escaped, sorted."""
    done = {name for name, ok in earlier_summary(out_dir).items() if ok}
    methods = overlay_methods()
    try:
        names = [e.name for e in os.scandir(out_dir)
                 if overlay_like(e.name, methods) and e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(printable(n) for n in names if printable(n) not in done)


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files (``.cfcam-<pid>-<hex>.tmp``) that killed cfcam processes left in ``folder``;
    the removed paths. Only regular files whose process no longer runs are touched: a live writer's files, and
    a folder or a link that merely has such a name, are left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith(TEMP_PREFIX) and e.name.endswith(".tmp")):
            continue
        pid = e.name[len(TEMP_PREFIX):].split("-", 1)[0]
        try:
            regular = e.is_file(follow_symlinks=False)
        except OSError:
            continue
        if regular and pid.isdigit() and not process_alive(int(pid)):
            try:
                os.unlink(e.path)
            except OSError:
                continue
            removed.append(Path(e.path))
    return removed


def _folder_key(folder: Path) -> str:
    """A folder's identity (links resolved, case-folded where the OS folds case)."""
    return os.path.normcase(os.path.realpath(folder))
