"""The example images with their lesion masks, for the notebooks, the widgets and your own labelled folders.

``load_examples()`` makes the ten example images of the demo world in memory from their seed: exactly the
pixels of the repository's ``testimgs/`` (a test compares them), so the notebooks and widgets see the same
images from a checkout, an installed wheel, or a copy of ``notebooks/`` anywhere. ``load_examples(folder)``
reads any folder laid out the same way (``manifest.csv`` with columns ``file,class,mask``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..images.reading import ImageError, load_image
from . import synthetic

MANIFEST = "manifest.csv"


@dataclass(frozen=True, eq=False)
class Example:
    """One example: its file name, class, RGB image and lesion mask (all False when there is no lesion)."""

    name: str
    class_name: str
    image: Image.Image
    mask: np.ndarray

    @property
    def has_lesion(self) -> bool:
        return bool(self.mask.any())

    def __repr__(self) -> str:
        return f"Example({self.name!r}, class {self.class_name!r}, {self.image.width}x{self.image.height})"


def load_examples(folder: str | os.PathLike | None = None) -> list[Example]:
    """The examples: the built-in ten (normal_01..05, lesion_01..05) or those listed in ``folder/manifest.csv``.

    A manifest row names an image ``file``, its ``class`` and an optional ``mask`` file (white = lesion).
    Problems raise ``ValueError`` naming the manifest row and what is wrong.
    """
    if folder is None:
        return [Example(e.name, e.class_name, e.image.copy(), e.mask) for e in _builtin()]
    return _from_folder(Path(folder))


def find_example(examples: list[Example], class_name: str | None = None, index: int = 0) -> Example:
    """The ``index``-th example of ``class_name`` (any class if None); ``ValueError`` if there is none."""
    chosen = [e for e in examples if class_name is None or e.class_name == class_name]
    if not -len(chosen) <= index < len(chosen):
        have = sorted({e.class_name for e in examples})
        raise ValueError(f"no example number {index} of class {class_name!r} (classes present: {have}, "
                         f"{len(chosen)} of that class)")
    return chosen[index]


@lru_cache(maxsize=1)
def _builtin() -> tuple[Example, ...]:
    out = []
    for stem, label, image, mask in synthetic.example_images():
        rgb = Image.fromarray(np.repeat(image[:, :, None], 3, axis=2), "RGB")
        mask = np.asarray(mask, dtype=bool)
        mask.setflags(write=False)
        out.append(Example(f"{stem}.png", synthetic.CLASSES[label], rgb, mask))
    return tuple(out)


def _from_folder(folder: Path) -> list[Example]:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"{manifest} not found: a folder of examples needs a manifest.csv with columns "
                         "file,class,mask")
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "class"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{manifest}: missing column(s) {sorted(missing)}; expected file,class,mask")
        rows = list(reader)
    examples = []
    for line, row in enumerate(rows, start=2):
        try:
            image = load_image(folder / row["file"])
        except ImageError as exc:
            raise ValueError(f"{manifest}, line {line}: image {row['file']!r}: {exc.reason}") from None
        mask_name = (row.get("mask") or "").strip()
        if mask_name:
            try:
                mask = np.asarray(Image.open(folder / mask_name).convert("L")) > 127
            except (OSError, ValueError) as exc:
                raise ValueError(f"{manifest}, line {line}: mask {mask_name!r} cannot be read ({exc})") from None
            if mask.shape != (image.height, image.width):
                raise ValueError(f"{manifest}, line {line}: mask {mask_name!r} is {mask.shape[1]}x{mask.shape[0]}, "
                                 f"the image {image.width}x{image.height}")
        else:
            mask = np.zeros((image.height, image.width), dtype=bool)
        examples.append(Example(row["file"], row["class"], image, mask))
    return examples
