"""Similarity of two maps: Spearman rank correlation, Pearson correlation and SSIM.

SSIM is written here (a dozen lines of uniform filters) rather than taken from scikit-image, which cfcam
does not otherwise need; it follows ``skimage.metrics.structural_similarity``'s defaults (7x7 uniform window,
sample covariance, K1 = 0.01, K2 = 0.03, mean over the valid interior) and the tests compare the two.
Each function returns NaN, not an error, where the quantity is undefined (a constant map has no ranks to
correlate): the caller reports it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats


def ranks(a) -> np.ndarray | None:
    """The average ranks of a map's values (flattened), what Spearman correlates; None for a constant map."""
    a = np.asarray(a, dtype=np.float64).ravel()
    if np.ptp(a) == 0:
        return None
    return stats.rankdata(a)


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (flattened); NaN when either is constant."""
    return spearman_ranked(ranks(a), b)


def spearman_ranked(ranks_a: np.ndarray | None, b) -> float:
    """:func:`spearman` with the first map's :func:`ranks` computed once (a map compared with many): Pearson of
    the average ranks, as ``scipy.stats.spearmanr`` computes it, at a quarter of its cost."""
    ranks_b = ranks(b)
    if ranks_a is None or ranks_b is None:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def pearson(a, b) -> float:
    """Pearson correlation of two maps (flattened); NaN when either is constant."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def ssim(a, b, data_range: float = 1.0, win_size: int = 7) -> float:
    """Structural similarity (Wang et al. 2004) of two 2-D maps, as scikit-image computes it by default."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two 2-D maps of one shape, got {a.shape} and {b.shape}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    f = lambda x: ndimage.uniform_filter(x, size=win_size)  # noqa: E731
    cov = win_size ** 2 / (win_size ** 2 - 1)
    ua, ub = f(a), f(b)
    vaa, vbb, vab = cov * (f(a * a) - ua * ua), cov * (f(b * b) - ub * ub), cov * (f(a * b) - ua * ub)
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua ** 2 + ub ** 2 + c1) * (vaa + vbb + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def mse(a, b) -> float:
    """Mean squared difference of two maps."""
    return float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
