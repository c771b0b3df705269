"""The package's own answer to every exercise, with the learner's signature: what a notebook falls back on
when an exercise is unanswered and the notebook has no solution (the student edition), so that the cells
after it still run. Each is named ``package_<exercise>``, so that a cell that prints which function ran says so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["PACKAGE_ANSWERS", "package_answer"]


def package_gradcam_weights(gradients):
    """(C, h, w) gradients -> (C,) Grad-CAM weights, by :func:`cfcam.core.compose.gradcam_weights`."""
    from ...core.compose import gradcam_weights

    return gradcam_weights(gradients)


def package_gradcam_map(activations, weights):
    """(C, h, w) activations and (C,) weights -> (h, w) map, by :func:`cfcam.core.compose.weighted_relu_sum`."""
    from ...core.compose import weighted_relu_sum

    return weighted_relu_sum(activations, weights)


def package_percentile_eps(distances, percentile=25.0):
    """The DBSCAN radius, by :func:`cfcam.core.clustering.percentile_eps` (at least 1e-5)."""
    from ..reference import eps_from_distances

    return eps_from_distances(np.asarray(distances, dtype=np.float64), percentile, 1e-5)


def package_min_samples(n_channels, fraction=0.05, floor=2):
    """DBSCAN's min_samples, by :func:`cfcam.core.clustering.min_samples_for`."""
    from ...core.clustering import min_samples_for

    return min_samples_for(n_channels, fraction, floor)


def package_cluster_sizes(labels):
    """(C,) labels -> (K,) channels per cluster 0..K-1 (noise -1 and important -2 are no cluster)."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    return np.bincount(labels[labels >= 0], minlength=k)


def package_cluster_mean_gradient(gradients, labels, cluster):
    """(h, w) mean gradient of one cluster, by :func:`cfcam.core.pipeline.cluster_mean_gradients`."""
    from ...core.pipeline import cluster_mean_gradients

    return cluster_mean_gradients(gradients, np.asarray(labels))[cluster]


def package_reference_kernel(mean_map, spatial_sigma=5.0, range_sigma=0.1):
    """The published kernel for one (h, w) map, by :func:`cfcam.core.filtering.reference_kernels`."""
    from ...core.filtering import reference_kernels

    return reference_kernels(mean_map[None], spatial_sigma, range_sigma)[0]


def package_softmax_weights(weights, kept):
    """Softmax over the kept channels, 0 elsewhere, by :func:`cfcam.core.compose.coefficients`."""
    from ...core.compose import coefficients

    return coefficients(weights, torch.as_tensor(kept), "softmax")


def package_normalize_map(cam):
    """Min-max scaling to [0, 1] (a flat map -> zeros), by :func:`cfcam.core.compose.normalize`."""
    from ...core.compose import normalize

    return normalize(cam, "minmax")


def package_pointing_game(cam, mask, tolerance=15):
    """Whether the map's maximum lies within ``tolerance`` px of the mask, by
    :func:`cfcam.evaluation.metrics.pointing_hits`."""
    from ...evaluation.metrics import pointing_hits

    cam = cam.detach().cpu().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam)
    return bool(pointing_hits(cam[None], np.asarray(mask, dtype=bool)[None], tolerance)[0])


def package_deletion_auc(predict, image, cam, steps=11):
    """Area under the deletion curve, by the check's reference (:mod:`cfcam.evaluation.faithfulness`)."""
    from .nb06_evaluation import reference_deletion_auc

    return reference_deletion_auc(predict, image, cam, steps)


def package_randomisation_check(explain, model, images, seed=0):
    """Mean Spearman correlation before/after re-initialising ``fc``, by the check's reference."""
    from .nb06_evaluation import reference_randomisation_check

    return reference_randomisation_check(explain, model, images, seed)


def package_my_cfcam(activations, gradients, important_fraction=0.25, eps_percentile=25.0, filtered=True,
                     softmax=True):
    """The ``reference`` preset's (h, w) map with notebook 07's options, by :func:`cfcam.cluster_filter_cam`."""
    from ...core.pipeline import cluster_filter_cam

    result = cluster_filter_cam(activations, gradients, "reference", important_fraction=important_fraction,
                                eps_percentile=eps_percentile, filter="reference" if filtered else "none",
                                weighting="softmax" if softmax else "gap")
    return torch.as_tensor(result.cam)


def package_energy_in_mask(cam, mask):
    """The share of the map's total inside the mask, by :func:`cfcam.evaluation.shortcut.energy_in_mask`."""
    from ...evaluation.shortcut import energy_in_mask

    cam = cam.detach().cpu().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam)
    return float(energy_in_mask(cam[None], np.asarray(mask, dtype=bool)[None])[0])


PACKAGE_ANSWERS: dict[str, Callable] = {fn.__name__.removeprefix("package_"): fn for fn in (
    package_gradcam_weights, package_gradcam_map, package_percentile_eps, package_min_samples,
    package_cluster_sizes, package_cluster_mean_gradient, package_reference_kernel, package_softmax_weights,
    package_normalize_map, package_pointing_game, package_deletion_auc, package_randomisation_check,
    package_my_cfcam, package_energy_in_mask)}
"""The package's answer by the name of the function the learner writes (``my_cfcam`` for notebook 07)."""


def package_answer(exercise: str) -> Callable:
    """The package's answer to ``exercise`` (the learner's function name); ``KeyError`` naming the known ones."""
    try:
        return PACKAGE_ANSWERS[exercise]
    except KeyError:
        raise KeyError(f"no package answer for the exercise {exercise!r}; known: {sorted(PACKAGE_ANSWERS)}") \
            from None
