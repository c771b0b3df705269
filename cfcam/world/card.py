"""The demo model's card: how it was trained (from the recipe) and what was measured on it (given).

The measurements (accuracy, pointing games, the shortcut model's interventions) come from
:mod:`cfcam.evaluation.model_card`; this module only lays them out next to the recipe, so that the world's
training code needs nothing from the evaluation code.
"""

from __future__ import annotations

import datetime as _dt

import torch

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from . import synthetic
from .recipe import ARCHITECTURE, DEFAULT_EPOCHS, DEFAULT_N_TRAIN, INPUT_SIZE, SHORTCUT_TRAINING, Recipe

__all__ = ["CARD_EVIDENCE_KEYS", "model_card"]

#: What the evidence handed to :func:`model_card` holds (plus ``"shortcut"`` for the shortcut model).
CARD_EVIDENCE_KEYS = ("val_accuracy", "pointing_game_gradcam", "pointing_game_tolerance_px", "pointing_game_cfcam")


def model_card(recipe: Recipe, seeds: dict, bf16: bool, evidence: dict, seconds: dict) -> dict:
    """The card of a model trained by ``recipe`` on data drawn from ``seeds`` (see ``split_seeds``).

    ``evidence``: the measurements, keys :data:`CARD_EVIDENCE_KEYS` (and ``"shortcut"``, the intervention and
    localisation report, for ``recipe.shortcut``); ``seconds``: ``{"training": ..., "total": ...}``.
    """
    import torchvision

    missing = [k for k in CARD_EVIDENCE_KEYS + (("shortcut",) if recipe.shortcut else ()) if k not in evidence]
    if missing:
        raise ValueError(f"evidence lacks {', '.join(missing)}")
    card = {
        "name": "cfcam demo-shortcut model" if recipe.shortcut else "cfcam demo model",
        "architecture": ARCHITECTURE,
        "target_layer": "layer4[-1]",
        "classes": list(synthetic.CLASSES),
        "input_size": list(INPUT_SIZE),
        "input": "8-bit grayscale repeated to 3 channels, scaled to [0, 1], then normalised",
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "weights_dtype": "float16 (cast back to float32 when loading)",
        "seed": recipe.seed,
        "data": _data_section(recipe, seeds),
        "data_sizes": {"train": recipe.n_train, "val": recipe.n_val, "test": recipe.n_test},
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "optimizer": {"name": "AdamW", "lr": recipe.lr, "weight_decay": recipe.weight_decay,
                      "schedule": "OneCycleLR(pct_start=0.2)"},
        "augmentation": {"horizontal_flip": 0.5, "max_shift_px": recipe.max_shift},
        "autocast": "bfloat16" if bf16 else "off",
        **{key: evidence[key] for key in CARD_EVIDENCE_KEYS},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "threads": recipe.threads,
        "training_seconds": round(seconds["training"], 1),
        "total_seconds": round(seconds["total"], 1),
    }
    if recipe.shortcut:
        card["shortcut"] = {**_shortcut_story(recipe), **evidence["shortcut"]}
    return card


def _data_section(recipe: Recipe, seeds: dict) -> dict:
    """The card's ``data`` entry: generator, and each set's size, seed and share of lesions (and its use)."""
    data = {
        "generator": "cfcam.synthetic.make_dataset",
        "train": {"n": recipe.n_train, "seed": seeds["train"], "lesion_fraction": 0.5},
        "val": {"n": recipe.n_val, "seed": seeds["val"], "lesion_fraction": 0.5},
        "test": {"n": recipe.n_test, "seed": seeds["test"], "lesion_fraction": 1.0},
    }
    if recipe.shortcut:
        data["generator"] = "cfcam.world.synthetic.make_shortcut_dataset"
        data["train"].update(SHORTCUT_TRAINING)
        data["val"]["use"] = "intervention figures: the same images without the marker and with it on every image"
        data["test"].update(marker_if_lesion=1.0, use="pointing games against the lesion and the marker")
    return data


def _shortcut_story(recipe: Recipe) -> dict:
    """What the shortcut card says about its marker and how the model was made to cheat."""
    return {
        "marker": "a radiograph-style laterality token (bright 'L' or 'R' in a box) outside the lung fields, at "
                  "a varying position (cfcam.world.synthetic.make_scene(marker=True))",
        "what_was_done": (
            "In the training set every lesion image carries the marker and no normal image does, so the marker "
            f"alone predicts the label perfectly; the nodules are drawn at {SHORTCUT_TRAINING['nodule_contrast']:g} "
            f"of the demo world's contrast, so they are the harder cue. It trains on {recipe.n_train} images for "
            f"{recipe.epochs} epochs (the demo model's defaults: {DEFAULT_N_TRAIN} for {DEFAULT_EPOCHS}); everything "
            "else (architecture, seed, optimiser, one-cycle schedule over the run, batch size, augmentation) is the "
            "demo model's recipe. All figures below are measured on fresh images at the demo world's full nodule "
            "contrast."
        ),
    }
