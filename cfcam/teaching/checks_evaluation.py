"""Notebook 06's exercise checks (evaluation), kept at this path for the notebook and older code: they live
in :mod:`cfcam.teaching.checks.nb06_evaluation` and are re-exported here.

- :func:`check_deletion_auc` ``deletion_auc(predict, image, cam, steps=11) -> float``
- :func:`check_randomisation_check` ``randomisation_check(explain, model, images, seed=0) -> float``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .checks.nb06_evaluation import (
                                     TinyNet,
                                     check_deletion_auc,
                                     check_randomisation_check,
                                     class_blind_maps,
                                     input_gradient_maps,
                                     reference_deletion_auc,
                                     reference_randomisation_check,
)

__all__ = ["CHECKS", "TinyNet", "check_deletion_auc", "check_randomisation_check", "class_blind_maps",
           "input_gradient_maps", "reference_deletion_auc", "reference_randomisation_check"]

CHECKS: dict[str, Callable[[Any], bool]] = {
    "deletion_auc": check_deletion_auc,
    "randomisation_check": check_randomisation_check,
}
"""Notebook 06's checks by the name of the function the learner writes."""
