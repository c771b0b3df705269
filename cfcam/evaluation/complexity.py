"""Complexity: how concentrated is the map? (no model, no mask)

* **Sparseness** (Chalasani et al. 2020, "Concise explanations of neural networks using adversarial
  training"; Quantus' ``Sparseness``): the Gini index of the map's absolute values, 0 for a flat map, near 1
  when a few pixels hold all the mass. Higher is "more concise".

What it does NOT show: that the concentrated pixels are the right ones. A single bright pixel anywhere scores
near 1; a map spread over a large lesion scores lower than one on a corner of it. Read it next to the
localisation and faithfulness scores, never alone. An all-zero map is flat: Gini 0 (Quantus' ``1e-7`` offset
makes every map's values positive, as here).
"""

from __future__ import annotations

import numpy as np

#: added to every value before the Gini index, as Quantus does (a zero map then scores 0, not 0 / 0)
GINI_OFFSET = 1e-7


def gini(maps) -> np.ndarray:
    """Per map ``(N, H, W)``: the Gini index of ``|map| + 1e-7`` over its pixels (Quantus' ``Sparseness``)."""
    a = np.abs(np.asarray(maps, dtype=np.float64)).reshape(len(maps), -1) + GINI_OFFSET
    if a.shape[1] == 0:
        raise ValueError("maps must have at least one pixel")
    a = np.sort(a, axis=1)
    k = a.shape[1]
    rank = 2 * np.arange(1, k + 1) - k - 1
    return (rank * a).sum(axis=1) / (k * a.sum(axis=1))
