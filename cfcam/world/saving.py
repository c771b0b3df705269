"""Where a trained demo model goes, and writing it with its card so that a stopped run replaces nothing.

By default ``train-demo`` writes into the user's cache folder (``$XDG_CACHE_HOME/cfcam``, else
``~/.cache/cfcam``). The package's own data folder holds the shipped demo models; writing there is refused
unless it is asked for explicitly (``into_package=True``, ``--into-package``). The weights and the card are
written to temporary files and renamed only once both are complete.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..images.writing import check_writable, write_bytes_atomic, write_files_atomic
from .recipe import DATA_DIR, file_names

__all__ = ["default_out_dir", "is_package_data_dir", "output_folder", "prepare_folder", "state_dict_fp16_bytes",
           "save_state_dict_fp16", "save_model_and_card"]


def default_out_dir() -> Path:
    """The user's cache folder for cfcam: ``$XDG_CACHE_HOME/cfcam``, or ``~/.cache/cfcam`` when that variable is
    unset, empty or relative (the XDG specification says to ignore a relative one)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "cfcam"


def is_package_data_dir(folder) -> bool:
    """True when ``folder`` is the package's own data folder (through links, or in another spelling)."""
    try:
        if os.path.samefile(folder, DATA_DIR):
            return True
    except OSError:  # one of them does not exist (yet): compare the paths themselves
        pass
    return os.path.normcase(os.path.realpath(folder)) == os.path.normcase(os.path.realpath(DATA_DIR))


def output_folder(out_dir=None, into_package: bool = False) -> Path:
    """The folder a training run writes into; ``ValueError`` if it is refused. Nothing is created or written.

    ``out_dir``: a folder the user names (default: :func:`default_out_dir`). The package's data folder, which
    holds the shipped demo models, is refused unless ``into_package`` is True; ``into_package`` writes there
    (an ``out_dir`` naming another folder contradicts it).
    """
    if not isinstance(into_package, (bool, np.bool_)):
        raise TypeError(f"into_package must be True or False, got {into_package!r}")
    if into_package:
        if out_dir is not None and not is_package_data_dir(out_dir):
            raise ValueError(f"out_dir {out_dir} contradicts into_package=True, which writes into the package's "
                             f"data folder {DATA_DIR}: give one or the other")
        return DATA_DIR
    folder = default_out_dir() if out_dir is None else Path(out_dir)
    if is_package_data_dir(folder):
        raise ValueError(f"out_dir {folder} is the package's own data folder, which holds the shipped demo "
                         "models: refused, so that they are not replaced. Name another folder, or ask for it "
                         "explicitly with into_package=True (--into-package)")
    return folder


def prepare_folder(folder) -> Path:
    """``folder`` created if missing and checked to be writable (a probe file, removed): ``OSError`` if not.

    Done before training, so a run does not fail after a quarter of an hour for want of a folder.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out_dir {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    check_writable(folder)
    return folder


def state_dict_fp16_bytes(model: nn.Module) -> bytes:
    """``model``'s state dict with float tensors in float16, as the bytes of a ``torch.save`` file."""
    state = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_state_dict_fp16(model: nn.Module, path) -> None:
    """Save ``model``'s state dict with float tensors in float16, atomically.

    Load with ``model.load_state_dict({k: v.float() if v.is_floating_point() else v ...})``.
    """
    write_bytes_atomic(state_dict_fp16_bytes(model), Path(path))


def save_model_and_card(model: nn.Module, card: dict, folder, shortcut: bool = False) -> tuple[Path, Path]:
    """Write the weights (float16) and the card (JSON) into ``folder`` together; ``(weights path, card path)``.

    Both are written in full to temporary files first and renamed only then, so a run stopped while writing
    leaves the old pair (the shipped files, say) as it was.
    """
    weights_name, card_name = file_names(shortcut)
    folder = Path(folder)
    written = write_files_atomic({
        folder / weights_name: state_dict_fp16_bytes(model),
        folder / card_name: (json.dumps(card, indent=2) + "\n").encode("utf-8"),
    })
    return written[0], written[1]
