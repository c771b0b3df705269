"""Every check by the name of the function the learner writes, and the chooser between the learner's
function and the notebook's solution."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from .framework import function_name
from .nb01_gradcam import check_gradcam_map, check_gradcam_weights
from .nb02_clustering import check_cluster_sizes, check_min_samples, check_percentile_eps
from .nb03_filtering import check_cluster_mean_gradient, check_reference_kernel
from .nb04_composition import check_normalize, check_softmax_weights
from .nb05_pointing import check_pointing_game
from .nb06_evaluation import check_deletion_auc, check_randomisation_check
from .nb07_capstone import check_cfcam
from .nb08_shortcut import check_energy_in_mask

__all__ = ["CHECKS", "yours_or_solution"]


CHECKS: dict[str, Callable[[Any], bool]] = {
    "gradcam_weights": check_gradcam_weights,
    "gradcam_map": check_gradcam_map,
    "percentile_eps": check_percentile_eps,
    "min_samples": check_min_samples,
    "cluster_sizes": check_cluster_sizes,
    "cluster_mean_gradient": check_cluster_mean_gradient,
    "reference_kernel": check_reference_kernel,
    "softmax_weights": check_softmax_weights,
    "normalize_map": check_normalize,
    "pointing_game": check_pointing_game,
    "cfcam": check_cfcam,
    "energy_in_mask": check_energy_in_mask,
    "deletion_auc": check_deletion_auc,
    "randomisation_check": check_randomisation_check,
}
"""Every check by the name of the function the learner writes."""


def yours_or_solution(yours, solution, check: Callable[[Any], bool] | None = None):
    """``yours`` when it passes its check, else ``solution``; prints one line saying which, and never changes
    the learner's name (the notebook keeps both and uses what this returns).

    The check is looked up by the solution's name (``solution_gradcam_weights`` -> ``check_gradcam_weights``)
    unless given. Raises ``AssertionError`` if the solution itself fails its check (a bug in the notebook). A
    solution that raises ``NotImplementedError`` (its body removed: the student edition) gives the package's
    own answer instead (:func:`.grading.package_fallback`).
    """
    name = function_name(solution)
    base = name.removeprefix("solution_")
    check = check or CHECKS[base]
    with contextlib.redirect_stdout(io.StringIO()):
        mine = callable(yours) and check(yours)
    if mine:
        print(f"Using your `{function_name(yours)}` (it passes its check).")
        return yours
    with contextlib.redirect_stdout(io.StringIO()) as said:
        ok = check(solution)
    if not ok and said.getvalue().startswith("Not implemented yet:"):  # no solution here: the student edition
        from .grading import package_fallback

        return package_fallback(base, check)
    if not ok:
        raise AssertionError(f"{name} fails its own check:\n{said.getvalue()}")
    print(f"Using `{name}` for now: your `{base}` does not pass its check yet. It is left as you wrote it; "
          "fix it and run this cell again to use yours.")
    return solution
