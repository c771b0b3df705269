"""cfcam's version, kept in one place: pyproject.toml's ``version`` (``cfcam.__version__`` reads it from there).

Installed from a wheel or an sdist, the number is the installed distribution's metadata. In a source checkout
(pyproject.toml beside the package, installed editable or not at all) that file is read instead: an editable
install's metadata is only as new as its last ``pip install``, and another checkout's may be the one installed.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

UNKNOWN = "0+unknown"  # neither installed nor in a checkout (a copied folder): a valid version, and says so


def source_tree_version(package_dir: Path) -> str | None:
    """``version`` from the pyproject.toml next to ``package_dir`` when that file is cfcam's; else None."""
    try:
        text = (package_dir.parent / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if not project or not re.search(r'^name\s*=\s*"cfcam"\s*$', project[1], re.M):
        return None
    found = re.search(r'^version\s*=\s*"([^"]+)"', project[1], re.M)
    return found[1] if found else None


def find_version() -> str:
    """The source checkout's number if this is one, else the installed metadata's, else ``0+unknown``."""
    from_source = source_tree_version(Path(__file__).resolve().parent)
    if from_source:
        return from_source
    try:
        return metadata.version("cfcam")
    except metadata.PackageNotFoundError:
        return UNKNOWN


__version__ = find_version()
