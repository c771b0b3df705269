"""Train the small demo classifier on the synthetic chest X-ray world: the names, where they used to be.

The demo model is torchvision's ResNet with one BasicBlock per stage (a "ResNet-10"), so
``model.layer4[-1]`` is the block that CAM methods explain. It learns normal-vs-lesion from
:mod:`cfcam.world.synthetic` images on the CPU in about a quarter of an hour, and its model card records how
well it classifies and how well plain Grad-CAM points at the nodules (the pointing game). The model shifts its
input by 16 px so that its 7x7 ``layer4`` cells sit where bilinear CAM upsampling draws them
(:class:`cfcam.world.architecture.AlignedResNet`). ``train_demo(shortcut=True)`` (``cfcam train-demo
--shortcut``) trains the ``demo-shortcut`` model, whose card proves by intervention that it follows a marker.

The work is split by job: :mod:`cfcam.world.recipe` (files, defaults, seeds), :mod:`cfcam.world.loop` (data and
the training loop), :mod:`cfcam.world.saving` (where the files go, written together), :mod:`cfcam.world.card`
(the card's layout), :mod:`cfcam.evaluation.model_card` (what the card measures) and
:mod:`cfcam.cli.train_demo` (``train_demo`` and the command line, above both). This module re-exports their
names so that old imports keep working. The names from the evaluation and the command line are looked up on
first use, so that importing the world never imports the evaluation code (which imports the world).
"""

from __future__ import annotations

import importlib

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..images.preprocess import to_input
from .architecture import ALIGN_SHIFT, AlignedResNet, build_demo_model
from .loop import evaluate_accuracy
from .recipe import (
    ARCHITECTURE,
    CARD_FILE,
    DATA_DIR,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_MAX_SHIFT,
    DEFAULT_N_TEST,
    DEFAULT_N_TRAIN,
    DEFAULT_N_VAL,
    DEFAULT_SEED,
    DEFAULT_WEIGHT_DECAY,
    INPUT_SIZE,
    MODEL_FILE,
    SHORTCUT_CARD_FILE,
    SHORTCUT_MODEL_FILE,
    SHORTCUT_TRAINING,
    split_seeds,
)
from .saving import save_state_dict_fp16

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_SIZE",
    "DATA_DIR",
    "MODEL_FILE",
    "CARD_FILE",
    "ARCHITECTURE",
    "ALIGN_SHIFT",
    "AlignedResNet",
    "POINTING_TOLERANCE_PX",
    "build_demo_model",
    "to_input",
    "split_seeds",
    "evaluate_accuracy",
    "pointing_games",
    "intervention_figures",
    "SHORTCUT_MODEL_FILE",
    "SHORTCUT_CARD_FILE",
    "SHORTCUT_TRAINING",
    "save_state_dict_fp16",
    "train_demo",
    "main",
    "DEFAULT_SEED",
    "DEFAULT_N_TRAIN",
    "DEFAULT_N_VAL",
    "DEFAULT_N_TEST",
    "DEFAULT_EPOCHS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LR",
    "DEFAULT_WEIGHT_DECAY",
    "DEFAULT_MAX_SHIFT",
]

# names that live above the world (they use the evaluation code): looked up on first use
_ABOVE = {
    "POINTING_TOLERANCE_PX": "cfcam.evaluation.metrics",
    "pointing_games": "cfcam.evaluation.model_card",
    "intervention_figures": "cfcam.evaluation.shortcut",
    "train_demo": "cfcam.cli.train_demo",
    "main": "cfcam.cli.train_demo",
}


def __getattr__(name: str):
    """Import the module that now defines ``name`` (see ``_ABOVE``) on first use, and keep the name here."""
    if name not in _ABOVE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_ABOVE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ABOVE))


if __name__ == "__main__":  # pragma: no cover - ``python -m cfcam.world.train`` as before
    raise SystemExit(__getattr__("main")())
