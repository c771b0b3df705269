"""The evidence a demo model's card records: accuracy, pointing games and, for ``demo-shortcut``, proof by
intervention that it follows the marker, with every core method scored against both truths.

``cfcam train-demo`` calls :func:`card_evidence` on the freshly trained model (rounded to float16, as saved);
:func:`cfcam.world.card.model_card` lays the result out next to the training recipe.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..images.preprocess import to_input
from ..world import synthetic
from ..world.loop import evaluate_accuracy
from ..world.recipe import Recipe
from .metrics import POINTING_TOLERANCE_PX, pointing_game
from .shortcut import CORE_METHODS, intervention_figures, localisation_rows, summarise

__all__ = ["pointing_games", "shortcut_report", "card_evidence"]


def pointing_games(model: nn.Module, images: np.ndarray, masks: np.ndarray) -> dict:
    """Pointing game (class lesion) of Grad-CAM and of CF-CAM with each preset, at ``layer4[-1]``."""
    x = to_input(images)
    return {
        "gradcam": pointing_game(model, x, masks, "gradcam", target=1),
        "cfcam": {p: pointing_game(model, x, masks, "cfcam", p, target=1) for p in ("readme", "reference")},
    }


def shortcut_report(model: nn.Module, n_val: int, n_test: int, seeds: dict) -> dict:
    """The shortcut card's evidence: interventions on the validation seed, both truths on the test seed."""
    test = synthetic.make_shortcut_dataset(n_test, seeds["test"], balance=1.0, marker_if_lesion=1.0)
    return {
        "interventions": intervention_figures(model, n_val, seeds["val"]),
        "localisation": summarise(localisation_rows(model, test.images, test.masks, test.marker_masks,
                                                    methods=CORE_METHODS)),
    }


def card_evidence(model: nn.Module, recipe: Recipe, seeds: dict) -> dict:
    """What the card of ``model``, trained by ``recipe``, reports (keys of :data:`cfcam.world.card.CARD_EVIDENCE_KEYS`,
    plus ``"shortcut"`` for the shortcut model), measured on the validation and test seeds of ``seeds``."""
    if recipe.shortcut:
        report = shortcut_report(model, recipe.n_val, recipe.n_test, seeds)
        local = report["localisation"]
        val_acc = report["interventions"]["accuracy_with_marker"]
        pointing = {"gradcam": local["gradcam"]["pointing_game"],
                    "cfcam": {p: local[f"cfcam-{p}"]["pointing_game"] for p in ("readme", "reference")}}
    else:
        val_x, val_y, _ = synthetic.make_dataset(recipe.n_val, seeds["val"])
        val_acc = evaluate_accuracy(model, val_x, val_y)
        test_x, _, test_m = synthetic.make_dataset(recipe.n_test, seeds["test"], balance=1.0)
        pointing = pointing_games(model, test_x, test_m)
    evidence = {"val_accuracy": val_acc, "pointing_game_gradcam": pointing["gradcam"],
                "pointing_game_tolerance_px": POINTING_TOLERANCE_PX, "pointing_game_cfcam": pointing["cfcam"]}
    if recipe.shortcut:
        evidence["shortcut"] = report
    return evidence
