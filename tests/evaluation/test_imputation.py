"""cfcam's ROAD imputer builds pytorch-grad-cam's equation system faster: the same system, the same scores; and
Spearman from ranks computed once equals scipy's."""

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from cfcam.evaluation.imputation import CooImputer, road_combined, sparse_system


@pytest.mark.parametrize("shape, removed", [((17, 23), 0.5), ((32, 32), 0.1), ((9, 40), 0.9)])
def test_the_system_is_the_librarys(shape, removed):
    rng = np.random.default_rng(len(shape) + shape[1])
    mask = (rng.random(shape) > removed).astype(np.float32)
    mask[0, :] = 0  # removed pixels on the border: the library's weight reduction for missing neighbours
    img = rng.random((3, *shape)).astype(np.float32)
    ours, b = sparse_system(mask, img)
    lib, lib_b = NoisyLinearImputer.setup_sparse_system(mask, img, NoisyLinearImputer().weighting)
    assert (ours != lib.tocsc()).nnz == 0
    np.testing.assert_array_equal(b, lib_b)


def test_the_imputed_image_is_the_librarys():
    rng = np.random.default_rng(3)
    img = torch.from_numpy(rng.random((3, 40, 48)).astype(np.float32))
    mask = torch.from_numpy((rng.random((40, 48)) > 0.4).astype(np.float32))
    torch.manual_seed(5)
    ours = CooImputer()(img, mask)
    torch.manual_seed(5)
    lib = NoisyLinearImputer()(img, mask)
    assert torch.equal(ours, lib)


def test_road_combined_is_the_librarys(demo):
    rng = np.random.default_rng(0)
    maps = rng.random((2, 224, 224)).astype(np.float32)
    targets = [ClassifierOutputSoftmaxTarget(1), ClassifierOutputSoftmaxTarget(1)]
    torch.manual_seed(0)
    ours = road_combined([20, 80], demo.inputs[:2], maps, targets, demo.model)
    torch.manual_seed(0)
    lib = ROADCombined(percentiles=[20, 80])(demo.inputs[:2], maps, targets, demo.model)
    np.testing.assert_array_equal(ours, lib)


def test_spearman_from_ranks_is_scipys():
    """The classifier check compares one map with 20 draws: its ranks are computed once (similarity.ranks)."""
    from scipy import stats

    from cfcam.evaluation.similarity import ranks, spearman, spearman_ranked

    rng = np.random.default_rng(1)
    a = np.maximum(rng.normal(size=(30, 40)), 0)  # ReLU: many tied zeros
    b = np.round(rng.random((30, 40)), 1)  # ties among the values too
    expected = stats.spearmanr(a.ravel(), b.ravel()).statistic
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert spearman_ranked(ranks(a), b) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(spearman(np.zeros((3, 3)), b[:3, :3])) and np.isnan(spearman_ranked(None, b))
