"""A user's folder to evaluate on (``cfcam evaluate --data DIR``): ``DIR/manifest.csv`` lists the images.

The manifest is a CSV file (UTF-8) with a header line and one row per image; column names are matched
without regard to case or surrounding spaces, other columns are ignored::

    image,mask,label
    scans/a.png,masks/a.png,lesion
    scans/b.png,,1

``image`` (required): the image, a path relative to DIR (an absolute path, or one that leads out of DIR with
``..``, is refused for its row). ``mask`` (optional column): an image of the same size
whose non-zero pixels mark where the evidence is; an empty cell (or a mask with no non-zero pixel) gives that
row NaN localisation values with a note; without the column no localisation metric is computed. ``label``
(optional): the class to explain, an index or a class name of the model; an empty cell (or no column): the
model's top class. Images are read and preprocessed as ``cfcam explain`` reads them (resized to the model's
input size); masks are resized to the same size with nearest neighbour. A row that cannot be used is skipped
and reported (its line, file and why); nothing in DIR is ever written.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

import numpy as np
import torch
from PIL import Image

from ..images.reading import ImageError, load_image, load_mask
from ..images.viz import preprocess
from ..world.models import class_index
from .engine import EvalData

MANIFEST = "manifest.csv"
COLUMNS = ("image", "mask", "label")


class ManifestError(ValueError):
    """The folder or its manifest cannot be used at all; the message names the file. ``skipped`` lists the rows
    skipped before it was clear that none is usable."""

    def __init__(self, message: str, skipped: list | None = None) -> None:
        super().__init__(message)
        self.skipped = list(skipped or [])


class RowError(ValueError):
    """One manifest row cannot be used: ``file`` (the manifest or the file it names) and ``why``."""

    def __init__(self, file, why: str) -> None:
        super().__init__(f"{file}: {why}")
        self.file, self.why = str(file), why


@dataclass(frozen=True)
class Row:
    """One manifest row: its line in the file and its cells (empty string where a cell is empty or absent)."""

    line: int
    image: str
    mask: str
    label: str


@dataclass(frozen=True)
class Case:
    """One usable row: the model's input ``(1, 3, S, S)``, its mask ``(S, S)`` (None: no mask) and its target
    (-1: the top class)."""

    row: Row
    tensor: torch.Tensor
    mask: np.ndarray | None
    target: int


def read_manifest(folder, info: dict, limit: int | None = None, max_pixels: int | None = None,
                  max_rows: int | None = None) -> tuple[EvalData, list[dict]]:
    """``(data, skipped)`` for the first ``limit`` rows of ``folder/manifest.csv`` and a model's ``info``
    (``input_size``, ``mean``, ``std``, ``classes``); ``skipped`` lists ``{"line", "file", "why"}`` per bad row.
    ``ManifestError`` when the folder or the manifest cannot be used, no row is usable, or (without ``limit``)
    the manifest lists more than ``max_rows`` rows (every image is held in memory: refused before any is read)."""
    folder = Path(folder)
    if limit is None and max_rows is not None:
        rows, has_mask = manifest_rows(folder, max_rows + 1)
        if len(rows) > max_rows:
            raise ManifestError(f"{folder / MANIFEST}: more than {max_rows} rows; evaluate at most {max_rows} at a "
                                "time (--n N takes the first N rows)")
    else:
        rows, has_mask = manifest_rows(folder, limit)
    cases, skipped = [], []
    for row in rows:
        try:
            cases.append(load_row(folder, row, info, max_pixels))
        except RowError as exc:
            skipped.append({"line": row.line, "file": exc.file, "why": exc.why})
    if not cases:
        raise ManifestError(f"{folder / MANIFEST}: no usable row ({len(rows)} read, {len(skipped)} skipped)", skipped)
    return to_eval_data(folder, cases, has_mask, len(skipped)), skipped


def manifest_rows(folder: Path, limit: int | None = None) -> tuple[list[Row], bool]:
    """The first ``limit`` non-blank rows of the manifest, and whether it has a ``mask`` column."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ManifestError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    if not path.is_file():
        raise ManifestError(f"{path}: no such file (the folder needs a manifest.csv with an 'image' column)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return _rows(csv.reader(fh), path, limit)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot be read as a UTF-8 CSV file ({exc})") from None


def _rows(reader, path: Path, limit: int | None) -> tuple[list[Row], bool]:
    """Rows from an open CSV reader after checking its header (see :func:`manifest_rows`)."""
    header = [name.strip().casefold() for name in next(reader, [])]
    if "image" not in header:
        raise ManifestError(f"{path}: line 1 must be a header with an 'image' column (and optionally 'mask' and "
                            f"'label'), got {','.join(header) or 'an empty file'}")
    twice = [c for c in COLUMNS if header.count(c) > 1]
    if twice:
        raise ManifestError(f"{path}: the header names the column '{twice[0]}' twice")
    where = {c: header.index(c) for c in COLUMNS if c in header}
    rows: list[Row] = []
    for cells in reader:
        if limit is not None and len(rows) >= limit:
            break
        if any(cell.strip() for cell in cells):
            get = {c: (cells[i].strip() if i < len(cells) else "") for c, i in where.items()}
            rows.append(Row(reader.line_num, get["image"], get.get("mask", ""), get.get("label", "")))
    return rows, "mask" in where


def load_row(folder: Path, row: Row, info: dict, max_pixels: int | None = None) -> Case:
    """Read, check and preprocess one row; ``RowError`` naming the file and the reason."""
    if not row.image:
        raise RowError(folder / MANIFEST, "the image cell is empty")
    target = -1
    if row.label:
        try:
            target = class_index(row.label, info["classes"])
        except ValueError as exc:
            raise RowError(folder / MANIFEST, f"unknown label: {exc}") from None
    image = _read(folder / inside(folder, row.image, "image"), load_image, max_pixels)
    size = info["input_size"]
    try:
        tensor = preprocess(image, size, info["mean"], info["std"])
    except (ValueError, RuntimeError) as exc:
        raise RowError(folder / row.image, f"cannot be preprocessed ({exc})") from None
    mask = None
    if row.mask:
        full = _read(folder / inside(folder, row.mask, "mask"), load_mask, max_pixels)
        if full.shape != (image.height, image.width):
            raise RowError(folder / row.mask, f"the mask is {full.shape[1]}x{full.shape[0]} pixels but its image "
                                              f"{row.image} is {image.width}x{image.height}")
        mask = resize_mask(full, size)
    return Case(row, tensor, mask, target)


def inside(folder: Path, cell: str, column: str) -> PurePath:
    """The manifest cell ``cell`` as a path relative to ``folder``; ``RowError`` (naming the manifest, so the
    row's line goes with it) when it is absolute or leads out of the folder with ``..``. The check is on the
    path as written: a link inside the folder is followed like any other file."""
    windows = PureWindowsPath(cell)
    if PurePath(cell).is_absolute() or windows.drive or windows.root or cell.startswith(("/", "\\")):
        raise RowError(folder / MANIFEST, f"the {column} cell {cell!r} is an absolute path; give a path relative "
                                          f"to {folder}")
    parts = PurePath(os.path.normpath(cell.replace("\\", "/"))).parts
    if parts and parts[0] == "..":
        raise RowError(folder / MANIFEST, f"the {column} cell {cell!r} leads outside {folder}; give a path inside it")
    return PurePath(cell)


def _read(path: Path, reader, max_pixels: int | None):
    """``reader(path)`` (an image or a mask), its ``ImageError`` as a :class:`RowError`."""
    try:
        return reader(path, max_pixels=max_pixels)
    except ImageError as exc:
        raise RowError(path, exc.reason) from None


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool mask resized to ``size x size`` with nearest neighbour (it stays a mask: no blended edges)."""
    small = Image.fromarray(mask.astype(np.uint8) * 255, mode="L").resize((size, size), Image.NEAREST)
    return np.asarray(small) > 0


def to_eval_data(folder: Path, cases: list[Case], has_mask: bool, skipped: int) -> EvalData:
    """The usable rows stacked into one :class:`EvalData`; ``extras["rows"]`` ties each image to its row."""
    size = cases[0].tensor.shape[-2:]
    masks = np.stack([c.mask if c.mask is not None else np.zeros(size, dtype=bool) for c in cases]) \
        if has_mask else None
    targets = np.array([c.target for c in cases], dtype=np.int64)
    rows = [{"image": i, "line": c.row.line, "file": c.row.image, "mask": c.row.mask or None,
             "label": c.row.label or None} for i, c in enumerate(cases)]
    name = f"{folder}, {len(cases)} image(s) from {MANIFEST}" + (f" ({skipped} row(s) skipped)" if skipped else "")
    return EvalData(torch.cat([c.tensor for c in cases]), masks, targets, name, {"rows": rows}, targets)
