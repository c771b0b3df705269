"""Judging maps against two truths: the lesion, and the shortcut marker the ``demo-shortcut`` model really uses.

The demo world's lesion masks say where the *disease* is, not what the *model* looks at, so a map can only be
checked for plausibility against them. The ``demo-shortcut`` model (see ``cfcam train-demo --shortcut``) was
trained on images where a laterality marker outside the lungs gave the class away, and its model card shows
by intervention that it follows the marker. On lesion images that carry the marker both truths are present:
a faithful method points at the marker, a merely plausible one at the lesion.

:func:`localisation_rows` scores every registered method against both masks; :func:`shortcut_evaluation_set`
makes its default images; :func:`intervention_figures` shows what a model's answers follow (marker or
nodule). ``cfcam evaluate`` and the model card call them; they are plain functions so a notebook can call
them, too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..images.preprocess import to_input
from .localisation import energy_in_mask  # noqa: F401 - one definition, re-exported here (old import path)
from .metrics import POINTING_TOLERANCE_PX, pointing_hits

__all__ = [
    "SHORTCUT_EVAL_SEED",
    "METRICS",
    "energy_in_mask",
    "localisation_rows",
    "summarise",
    "shortcut_evaluation_set",
    "intervention_figures",
]

#: Seed of the default evaluation set (not one of the seeds ``train-demo`` draws its data sets from).
SHORTCUT_EVAL_SEED = 90_210

#: The methods scored when none are named: Grad-CAM and both CF-CAM presets (``cfcam evaluate`` runs them all).
CORE_METHODS = ("gradcam", "cfcam-readme", "cfcam-reference")

#: The metrics of one method, in the order :func:`localisation_rows` returns them: two against the lesion
#: mask, two against the marker mask.
METRICS = ("pointing_game", "energy_in_mask", "pointing_game_shortcut", "energy_in_shortcut")


def localisation_rows(model: torch.nn.Module, inputs, masks, marker_masks, methods: Iterable[str] | None = None,
                      layer: str = "layer4[-1]", target: int | None = 1, batch_size: int = 32,
                      tolerance: int = POINTING_TOLERANCE_PX) -> list[dict]:
    """Score each method's maps against the lesion masks and the marker masks.

    model: the classifier; inputs: uint8 grayscale images ``(N, H, W)`` (the demo world's, preprocessed with
    :func:`cfcam.images.preprocess.to_input`) or already preprocessed ``(N, 3, H, W)`` float tensors; masks,
    marker_masks: ``(N, H, W)`` bool, each image's lesion and marker (every mask non-empty); methods: registered
    method names (default: all of :data:`cfcam.methods.METHODS`); target: the class explained (default 1,
    ``lesion``; None = each image's top class).

    Returns one row per (method, metric), methods in the given order and metrics in :data:`METRICS` order::

        {"method": "gradcam", "metric": "pointing_game_shortcut", "value": 0.93, "per_image": [1.0, 0.0, ...]}

    ``value`` is the mean of ``per_image`` (hits are 1.0/0.0, energies fractions). Each method's maps are
    computed once and scored against both masks, so both truths see exactly the same maps.
    """
    from ..methods.registry import create

    x = _as_inputs(inputs)
    masks, marker_masks = np.asarray(masks, dtype=bool), np.asarray(marker_masks, dtype=bool)
    n = len(x)
    if masks.shape != (n, *x.shape[-2:]) or marker_masks.shape != masks.shape:
        raise ValueError(f"masks and marker_masks must have shape {(n, *x.shape[-2:])} to match the inputs, got "
                         f"{masks.shape} and {marker_masks.shape}")
    for name, m in (("masks", masks), ("marker_masks", marker_masks)):
        empty = np.flatnonzero(~m.any(axis=(1, 2)))
        if len(empty):
            raise ValueError(f"{name}[{int(empty[0])}] is empty; every image needs both a lesion and a marker")
    methods = list(CORE_METHODS if methods is None else methods)
    rows = []
    for method in methods:
        scores = {metric: [] for metric in METRICS}
        with create(method, model, layer) as explainer:
            for i in range(0, n, batch_size):
                maps = explainer(x[i:i + batch_size], targets=target)
                lesion, marker = masks[i:i + batch_size], marker_masks[i:i + batch_size]
                scores["pointing_game"].append(pointing_hits(maps, lesion, tolerance).astype(np.float64))
                scores["energy_in_mask"].append(energy_in_mask(maps, lesion))
                scores["pointing_game_shortcut"].append(pointing_hits(maps, marker, tolerance).astype(np.float64))
                scores["energy_in_shortcut"].append(energy_in_mask(maps, marker))
        for metric in METRICS:
            per_image = np.concatenate(scores[metric]) if n else np.zeros(0)
            rows.append({"method": method, "metric": metric, "value": float(per_image.mean()) if n else float("nan"),
                         "per_image": per_image.tolist()})
    return rows


def summarise(rows: Sequence[dict]) -> dict:
    """``{method: {metric: value}}`` from :func:`localisation_rows`' rows (what the model card stores)."""
    out: dict = {}
    for row in rows:
        out.setdefault(row["method"], {})[row["metric"]] = row["value"]
    return out


def shortcut_evaluation_set(n: int = 200, seed: int = SHORTCUT_EVAL_SEED):
    """The default evaluation set for ``demo-shortcut``: ``n`` lesion images that all carry the marker.

    Both truths are in every image: the nodules (``masks``) and the marker (``marker_masks``), at the demo
    world's full nodule contrast. Returns a :class:`cfcam.world.synthetic.ShortcutSet`.
    """
    from ..world.synthetic import make_shortcut_dataset

    return make_shortcut_dataset(n, seed, balance=1.0, marker_if_lesion=1.0, marker_if_normal=1.0)


@torch.no_grad()
def _lesion_calls(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Per image: does ``model`` (in eval mode) call it a lesion?  Returns (N,) bool."""
    model.eval()
    out = [model(to_input(images[i : i + batch_size])).argmax(1).numpy() == 1
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


def intervention_figures(model: torch.nn.Module, n: int, seed: int) -> dict:
    """How a model's answers change when the shortcut marker is removed or added, on ``n`` fresh images.

    The same ``n`` images (``make_dataset(n, seed)``, half lesions, full nodule contrast) are drawn twice:
    without any marker and with the marker on every image; only the marker's pixels differ between the two.
    Returns accuracies and the share of images called "lesion" in each of the four (class, marker) cells:
    ``accuracy_with_marker`` (lesions carry it, normals do not: the training set's rule),
    ``accuracy_marker_removed`` (no image carries it), ``accuracy_marker_everywhere`` (every image does),
    and ``called_lesion`` = ``{lesion_with_marker, lesion_without_marker, normal_with_marker,
    normal_without_marker}``. A model that follows the marker calls marked normals lesions and unmarked
    lesions normal; one that follows the nodules does not care.
    """
    from ..world.synthetic import make_shortcut_dataset

    plain = make_shortcut_dataset(n, seed, marker_if_lesion=0.0, marker_if_normal=0.0)
    marked = make_shortcut_dataset(n, seed, marker_if_lesion=1.0, marker_if_normal=1.0)
    lesion = plain.labels == 1
    with_marker, without = _lesion_calls(model, marked.images), _lesion_calls(model, plain.images)
    as_trained = np.where(lesion, with_marker, without)

    def share(called, which) -> float:
        return float(called[which].mean()) if which.any() else float("nan")

    return {
        "n": int(n),
        "seed": int(seed),
        "accuracy_with_marker": float((as_trained == lesion).mean()),
        "accuracy_marker_removed": float((without == lesion).mean()),
        "accuracy_marker_everywhere": float((with_marker == lesion).mean()),
        "called_lesion": {
            "lesion_with_marker": share(with_marker, lesion),
            "lesion_without_marker": share(without, lesion),
            "normal_with_marker": share(with_marker, ~lesion),
            "normal_without_marker": share(without, ~lesion),
        },
    }


def _as_inputs(inputs) -> torch.Tensor:
    """``(N, 3, H, W)`` float model input from uint8 ``(N, H, W)`` images or an input tensor as it is."""
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        if inputs.ndim != 4:
            raise ValueError(f"an input tensor must have shape (N, 3, H, W), got {tuple(inputs.shape)}")
        return inputs
    return to_input(inputs)
