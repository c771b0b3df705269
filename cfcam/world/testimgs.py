"""The example images: made in memory from a fixed seed, or written to a folder as ``testimgs/`` holds them."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import cv2
import numpy as np

from ..images.writing import write_bytes_atomic
from .scenes import CLASSES, make_image
from .seeding import check_seed

__all__ = ["TESTIMGS_SEED", "example_images", "write_testimgs"]

#: Seed used for the committed example images in ``testimgs/``.
TESTIMGS_SEED = 2024


def _png_bytes(array: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit grayscale PNG."""
    ok, buf = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 2-D arrays
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def example_images(seed: int = TESTIMGS_SEED, per_class: int = 5):
    """Yield ``(stem, label, image, mask)`` for the example images, normal ones first, in manifest order.

    With the default seed these are exactly the images of the repository's ``testimgs/`` (a test checks it),
    made in memory in well under a second, so an installed package needs no image files.
    """
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    seqs = np.random.SeedSequence(check_seed(seed)).spawn(2 * per_class)
    for label, name in enumerate(CLASSES):
        for k in range(per_class):
            image, mask = make_image(seqs[label * per_class + k], label)
            yield f"{name}_{k + 1:02d}", label, image, mask


def write_testimgs(folder: str | os.PathLike, seed: int = TESTIMGS_SEED, per_class: int = 5) -> list[dict]:
    """Write the example images, their masks and ``manifest.csv`` into ``folder``.

    ``folder``: target directory (created if missing).  ``seed``: int seed
    (default ``TESTIMGS_SEED`` = 2024, the one used for ``testimgs/``).
    ``per_class``: images per class (default 5).  Files are
    ``<class>_<NN>.png`` (8-bit grayscale, 224x224), lesion masks are
    ``masks/<stem>_mask.png`` (0/255) and the manifest has columns
    ``file,class,mask`` (mask empty for normal images).  Returns the rows.
    """
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    folder = Path(folder)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, label, image, mask in example_images(seed, per_class):
        write_bytes_atomic(_png_bytes(image), folder / f"{stem}.png")
        mask_rel = ""
        if label == 1:
            mask_rel = f"masks/{stem}_mask.png"
            write_bytes_atomic(_png_bytes(mask.astype(np.uint8) * 255), folder / mask_rel)
        rows.append({"file": f"{stem}.png", "class": CLASSES[label], "mask": mask_rel})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["file", "class", "mask"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(text.getvalue().encode("utf-8"), folder / "manifest.csv")
    return rows
