"""ROAD (Rong et al. 2022) as pytorch-grad-cam computes it, with the imputer's equation system built faster.

pytorch-grad-cam's ``NoisyLinearImputer`` fills the removed pixels by solving one sparse linear system per
image; it builds that system in an empty ``scipy.sparse.lil_matrix`` of one row per removed pixel, and
creating that empty matrix took 60 % of ROAD's time (ROAD was the default evaluation's largest cost after the
classifier check). :class:`CooImputer` builds the same matrix from coordinate lists and solves it the same way;
:func:`road_combined` is the library's ``ROADCombined`` with that imputer (and the unperturbed images scored
once). ``tests/evaluation/test_imputation.py`` checks both equal to the library's, value for value.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, neighbors_weights
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve


def sparse_system(mask: np.ndarray, img: np.ndarray, weights=neighbors_weights):
    """``NoisyLinearImputer.setup_sparse_system``'s system (CSC matrix, right-hand sides) for the pixels where
    ``mask`` is 0: each is the weighted mean of its known neighbours and the unknown ones."""
    mask_flat = mask.flatten()
    img_flat = img.reshape((img.shape[0], -1))
    indices = np.argwhere(mask_flat == 0).flatten()
    to_variable = np.zeros(len(mask_flat), dtype=int)
    to_variable[indices] = np.arange(len(indices))
    n = len(indices)
    b = np.zeros((n, img.shape[0]))
    sum_neighbours = np.ones(n)
    rows, cols, values = [], [], []
    for offset, weight in weights:
        valid, coords = NoisyLinearImputer.add_offset_to_indices(indices, offset, mask.shape)
        valid_coords = coords[valid]
        valid_ids = np.argwhere(valid == 1).flatten()
        known = mask_flat[valid_coords] > 0.5
        b[valid_ids[known], :] -= weight * img_flat[:, valid_coords[known]].T
        unknown = mask_flat[valid_coords] < 0.5
        rows.append(valid_ids[unknown])
        cols.append(to_variable[valid_coords[unknown]])
        values.append(np.full(int(unknown.sum()), weight))
        sum_neighbours[np.argwhere(valid == 0).flatten()] -= weight
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    values.append(-sum_neighbours)
    matrix = coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    matrix.sum_duplicates()  # canonical form: sorted indices, as the library's lil -> csc conversion gives
    return matrix, b


class CooImputer(NoisyLinearImputer):
    """``NoisyLinearImputer`` (the same noise, weights and solve) with :func:`sparse_system`."""

    def __call__(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        img_flat = img.reshape(img.shape[0], -1)
        removed = np.argwhere(mask.reshape(-1) == 0).flatten()
        matrix, b = sparse_system(mask.numpy(), img.numpy(), self.weighting)
        res = torch.tensor(spsolve(matrix, b), dtype=torch.float)
        filled = img_flat.clone()
        filled[:, removed] = res.t() + self.noise * torch.randn_like(res.t())
        return filled.reshape_as(img)


class _MostRelevantFirst(PerturbationConfidenceMetric):
    def __init__(self, percentile=80):
        super().__init__(RemoveMostRelevantFirst(percentile, CooImputer()))


class _LeastRelevantFirst(PerturbationConfidenceMetric):
    def __init__(self, percentile=20):
        super().__init__(RemoveLeastRelevantFirst(percentile, CooImputer()))


def road_combined(percentiles, inputs: torch.Tensor, cams: np.ndarray, targets, model) -> np.ndarray:
    """pytorch-grad-cam's ``ROADCombined(percentiles)(inputs, cams, targets, model)``: (LeRF - MoRF) / 2 averaged
    over ``percentiles``, LeRF first as the library draws its noise. The library scores the unperturbed images
    again for every percentile and order; here they are scored once (the same pass, so the same scores)."""
    with torch.no_grad():
        outputs = model(inputs)
    scores = np.float32([target(output).cpu().numpy() for target, output in zip(targets, outputs)])

    def averaged(metric):  # AveragerAcrossThresholds(metric, percentiles)
        return np.mean(np.float32([metric(p)(inputs, cams, targets, model, return_diff=False) - scores
                                   for p in percentiles]), axis=0)

    return (averaged(_LeastRelevantFirst) - averaged(_MostRelevantFirst)) / 2
