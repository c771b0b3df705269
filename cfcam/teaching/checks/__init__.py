"""Automatic checks for the notebook exercises.

Each ``check_*`` function takes the learner's function, runs it on a few small inputs and compares what it
returns with the package's own implementation. It prints one verdict and returns ``True``/``False``:

- success: one line starting with ``Correct:``;
- a stub that still raises ``NotImplementedError``: a line starting with ``Not implemented yet:``;
- anything else: what is wrong (the shape, the values, which input) and a ``Hint:`` that points at the idea
  without giving the code away. When the answer agrees, on every input, with a typical mistake the check
  knows (a :class:`Mistake`: a transposed map, a strict comparison, a rounded count, ...), the hint names that
  mistake in words.

A check never raises because an answer is wrong, whatever the function does (raises, returns ``None``, a
string, NaNs, changes its input in place).

Checks by notebook, with the function the learner writes:

- 01: :func:`check_gradcam_weights` ``gradcam_weights(gradients) -> (C,)``;
  :func:`check_gradcam_map` ``gradcam_map(activations, weights) -> (h, w)``
- 02: :func:`check_percentile_eps` ``percentile_eps(distances, percentile=25.0) -> float``;
  :func:`check_min_samples` ``min_samples(n_channels, fraction=0.05, floor=2) -> int``;
  :func:`check_cluster_sizes` ``cluster_sizes(labels) -> (K,)``
- 03: :func:`check_cluster_mean_gradient` ``cluster_mean_gradient(gradients, labels, cluster) -> (h, w)``;
  :func:`check_reference_kernel` ``reference_kernel(mean_map, spatial_sigma=5.0, range_sigma=0.1) -> (h, w)``
- 04: :func:`check_softmax_weights` ``softmax_weights(weights, kept) -> (C,)``;
  :func:`check_normalize` ``normalize_map(cam) -> (H, W)`` in [0, 1]
- 05 (optional): :func:`check_pointing_game` ``pointing_game(cam, mask, tolerance=15) -> bool``
- 06: :func:`check_deletion_auc` ``deletion_auc(predict, image, cam, steps=11) -> float``;
  :func:`check_randomisation_check` ``randomisation_check(explain, model, images, seed=0) -> float``
- 07: :func:`check_cfcam` ``cfcam(activations, gradients) -> (h, w)``, the reference preset from the parts
- 08: :func:`check_energy_in_mask` ``energy_in_mask(cam, mask) -> float`` in [0, 1]

Solutions in the notebooks are named ``solution_<name>``, so running every cell never replaces the learner's
function; :func:`yours_or_solution` picks the learner's function when it passes, else the solution, and says
which.

One module per notebook (``nb01_gradcam`` ... ``nb08_shortcut``, and ``nb07_assembly``, the capstone written
out with a switch per typical mistake); the machinery they share (:class:`Case`, :class:`Wrong`,
:class:`Mistake`, :func:`verify` and the comparisons) is :mod:`.framework`, public so that a new check (or a
notebook's own) is written the same way; :mod:`.registry` holds :data:`CHECKS` and :func:`yours_or_solution`.
"""

from __future__ import annotations

from .framework import Case, Mistake, Wrong, verify
from .nb01_gradcam import check_gradcam_map, check_gradcam_weights
from .nb02_clustering import check_cluster_sizes, check_min_samples, check_percentile_eps
from .nb03_filtering import check_cluster_mean_gradient, check_reference_kernel
from .nb04_composition import check_normalize, check_softmax_weights
from .nb05_pointing import check_pointing_game
from .nb06_evaluation import (
                              check_deletion_auc,
                              check_randomisation_check,
                              reference_deletion_auc,
                              reference_randomisation_check,
)
from .nb07_capstone import check_cfcam
from .nb08_shortcut import check_energy_in_mask
from .registry import CHECKS, yours_or_solution

__all__ = [
    "CHECKS",
    "Case",
    "Mistake",
    "Wrong",
    "check_cfcam",
    "check_cluster_mean_gradient",
    "check_cluster_sizes",
    "check_deletion_auc",
    "check_energy_in_mask",
    "check_gradcam_map",
    "check_gradcam_weights",
    "check_min_samples",
    "check_normalize",
    "check_percentile_eps",
    "check_pointing_game",
    "check_randomisation_check",
    "check_reference_kernel",
    "check_softmax_weights",
    "reference_deletion_auc",
    "reference_randomisation_check",
    "verify",
    "yours_or_solution",
]
