"""Old module paths kept working: a shim module at an old path hands over the module's new home.

``cfcam.imageio`` (and the other top-level modules of earlier versions) became modules of subpackages; the
README and notebooks of those versions import the old paths. Each shim calls :func:`replace_with`, which warns
once (``DeprecationWarning`` naming the new path) and puts the new module in the old one's place, so
``import cfcam.imageio`` gives exactly ``cfcam.images.imageio``, private names and monkeypatching included.
"""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["replace_with"]


def replace_with(old: str, new: str) -> None:
    """Warn that module ``old`` moved to ``new``, and make ``sys.modules[old]`` the module ``new``."""
    # stacklevel 3: past this function and the shim's body; the warnings module skips importlib's own frames,
    # so the warning names the line that imported the old path
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will go away)", DeprecationWarning,
                  stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
