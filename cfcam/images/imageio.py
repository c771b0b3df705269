"""Reading images safely and writing results atomically: the names of the modules that do each job, in one place.

The work is split by job: :mod:`cfcam.images.reading` (``load_image``, ``load_mask`` and their guards),
:mod:`cfcam.images.scanning` (``find_images``), :mod:`cfcam.images.writing` (the ``*_atomic`` writers, temporary
files, ``check_writable``), :mod:`cfcam.images.png` (``encode_png``) and :mod:`cfcam.images.files` (``ImageError``
and the words for what a path is). This module re-exports their public names, so code and notebooks that import
from ``cfcam.images.imageio`` keep working. Settings such as ``MAX_PIXELS`` are read in their own module:
change ``cfcam.images.reading.MAX_PIXELS``, not this module's copy.
"""

from __future__ import annotations

from .files import ImageError, file_kind, open_regular_file, stat_problem
from .png import PNG_COMPRESS_LEVEL, encode_png
from .reading import MAX_PIXELS, ImageWarning, load_image, load_mask, scale_to_uint8
from .scanning import IMAGE_EXTENSIONS, find_images
from .writing import (
                      TEMP_PREFIX,
                      check_writable,
                      remove_stale_temps,
                      save_npy_atomic,
                      save_png_atomic,
                      write_atomic,
                      write_bytes_atomic,
                      write_files_atomic,
                      write_text_atomic,
)

__all__ = [
    "IMAGE_EXTENSIONS", "MAX_PIXELS", "PNG_COMPRESS_LEVEL", "TEMP_PREFIX", "ImageError", "ImageWarning",
    "check_writable", "encode_png", "file_kind", "find_images", "load_image", "load_mask", "open_regular_file",
    "remove_stale_temps", "save_npy_atomic", "save_png_atomic", "scale_to_uint8", "stat_problem", "write_atomic",
    "write_bytes_atomic", "write_files_atomic", "write_text_atomic",
]
