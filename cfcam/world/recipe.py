"""What the demo models are and how they are trained: file names, the architecture's name, the defaults.

:class:`Recipe` holds one run's checked settings, so the training steps take one argument instead of ten;
:func:`split_seeds` derives the three data sets' seeds from the run's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import synthetic
from .models import DATA_DIR

__all__ = [
    "INPUT_SIZE", "DATA_DIR", "MODEL_FILE", "CARD_FILE", "SHORTCUT_MODEL_FILE", "SHORTCUT_CARD_FILE",
    "SHORTCUT_TRAINING", "ARCHITECTURE", "DEFAULT_SEED", "DEFAULT_N_TRAIN", "DEFAULT_N_VAL", "DEFAULT_N_TEST",
    "DEFAULT_EPOCHS", "DEFAULT_BATCH_SIZE", "DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "DEFAULT_MAX_SHIFT", "Recipe",
    "check_int", "split_seeds", "file_names",
]

#: Model input (channels, height, width).
INPUT_SIZE = (3, synthetic.SIZE, synthetic.SIZE)

#: Files of the committed demo model and its card, in ``DATA_DIR`` (the package's own data folder).
MODEL_FILE = "demo_model.pt"
CARD_FILE = "demo_model.json"

#: Files of the ``demo-shortcut`` model and its card (``train_demo(shortcut=True)``).
SHORTCUT_MODEL_FILE = "demo_shortcut_model.pt"
SHORTCUT_CARD_FILE = "demo_shortcut_model.json"

#: How the shortcut model's training set is drawn (``make_shortcut_dataset``'s options): the marker is on
#: every lesion image and on no normal image (perfectly predictive), and the nodules are drawn fainter than
#: in the demo world, so the marker is by far the easier cue to the label.
SHORTCUT_TRAINING = {"marker_if_lesion": 1.0, "marker_if_normal": 0.0, "nodule_contrast": 0.35}

#: Human-readable architecture name written into the model card.
ARCHITECTURE = (
    "torchvision.models.resnet.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2) ('ResNet-10'), "
    "input shifted 16 px up/left to align layer4 with bilinear CAM upsampling (cfcam.world.architecture.AlignedResNet)"
)

# Defaults of train_demo (also used by the command line).
DEFAULT_SEED = 0
DEFAULT_N_TRAIN = 3500
DEFAULT_N_VAL = 600
DEFAULT_N_TEST = 300
DEFAULT_EPOCHS = 6
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 2e-3
DEFAULT_WEIGHT_DECAY = 1e-4
DEFAULT_MAX_SHIFT = 8


def check_int(name: str, value, minimum: int) -> int:
    """Validate an integer argument and return it; the message names it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def split_seeds(seed: int) -> dict:
    """Derive distinct data seeds for the train / val / test sets from one seed.

    ``seed``: the run's seed (int >= 0).  The three sets never share a seed,
    whatever ``seed`` is, because each is drawn from ``SeedSequence([seed, k])``.
    """
    check_int("seed", seed, minimum=0)
    return {
        name: int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0])
        for k, name in enumerate(("train", "val", "test"), start=1)
    }


def file_names(shortcut: bool) -> tuple[str, str]:
    """``(weights file, card file)`` of the demo model, or of the ``demo-shortcut`` model."""
    return (SHORTCUT_MODEL_FILE, SHORTCUT_CARD_FILE) if shortcut else (MODEL_FILE, CARD_FILE)


@dataclass(frozen=True)
class Recipe:
    """One training run's settings, checked (see ``train_demo`` for what each one means)."""

    seed: int = DEFAULT_SEED
    n_train: int = DEFAULT_N_TRAIN
    epochs: int = DEFAULT_EPOCHS
    n_val: int = DEFAULT_N_VAL
    n_test: int = DEFAULT_N_TEST
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    max_shift: int = DEFAULT_MAX_SHIFT
    amp: str = "auto"
    threads: int = 2
    shortcut: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shortcut, (bool, np.bool_)):
            raise TypeError(f"shortcut must be True or False, got {self.shortcut!r}")
        minimums = {"seed": 0, "n_train": 2, "epochs": 1, "n_val": 1, "n_test": 1, "batch_size": 2,
                    "max_shift": 0, "threads": 1}
        for name, minimum in minimums.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum))
        object.__setattr__(self, "shortcut", bool(self.shortcut))
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed n_train ({self.n_train}): an epoch "
                             "is made of whole batches")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch: the ragged last batch is dropped."""
        return self.n_train // self.batch_size
