"""The exercise checks as nbgrader's graders, and what a notebook without solutions falls back on.

Each exercise has one graded cell (nbgrader metadata ``grade: true`` with its points) that calls :func:`grade`.
Under nbgrader (``nbgrader autograde`` or ``validate`` set ``NBGRADER_EXECUTION``), :func:`grade` raises when no
function in the notebook passes the exercise's check, so nbgrader gives the cell 0 points; anywhere else it
only prints one line, so Run All never stops on it. The learner's own check cells are not changed: they print a
friendly verdict and never raise.

In the student edition (``make assignments``), the solution cells' bodies are gone and raise
``NotImplementedError``; :func:`package_fallback` is what :func:`~.registry.yours_or_solution` then returns:
the package's own answer, named ``package_<exercise>``, with a line that says so.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

from .answers import package_answer
from .framework import function_name
from .registry import CHECKS

__all__ = ["GRADING_RUNS", "grade", "grading", "package_fallback"]

GRADING_RUNS = ("autograde", "validate")
"""The values of ``NBGRADER_EXECUTION`` under which a failing graded cell raises."""


def grading() -> bool:
    """Whether nbgrader is running this kernel to grade or validate it (it sets ``NBGRADER_EXECUTION``)."""
    return os.environ.get("NBGRADER_EXECUTION", "") in GRADING_RUNS


def _verdict(check: Callable[[Any], bool], fn) -> tuple[bool, str]:
    """Run a check without printing: whether ``fn`` passes, and what the check said."""
    with contextlib.redirect_stdout(io.StringIO()) as said:
        ok = callable(fn) and bool(check(fn))
    return ok, said.getvalue().strip()


def grade(yours, solution, check: Callable[[Any], bool] | None = None) -> bool:
    """The graded cell of one exercise: True when ``yours`` (the learner's function) or else ``solution`` (the
    solution cell's function, which only the instructor edition has) passes the exercise's check.

    The check is looked up by the solution's name (``solution_percentile_eps`` -> ``check_percentile_eps``)
    unless given. When neither passes: raises ``AssertionError`` with the check's verdict under nbgrader (0
    points, and the verdict is the student's feedback), else prints one line and returns False.
    """
    name = function_name(yours)
    check = check or CHECKS[function_name(solution).removeprefix("solution_")]
    ok, verdict = _verdict(check, yours)
    if ok:
        print(f"For the autograder: your `{name}` passes its check.")
        return True
    if _verdict(check, solution)[0]:
        print(f"For the autograder: `{function_name(solution)}` (the solution cell) passes the check of `{name}`; "
              f"your `{name}` does not yet.")
        return True
    if grading():
        raise AssertionError(f"`{name}` does not pass its check, so this exercise scores 0. The check says:\n"
                             f"{verdict}")
    print(f"For the autograder: `{name}` does not pass its check yet (0 points if it were graded now).")
    return False


def package_fallback(exercise: str, check: Callable[[Any], bool]):
    """The package's own answer to ``exercise``, for a notebook whose solution was removed; prints one line
    saying it is used. Raises ``AssertionError`` if it fails the check (a bug in the package, not the notebook)."""
    fn = package_answer(exercise)
    ok, verdict = _verdict(check, fn)
    if not ok:
        raise AssertionError(f"{function_name(fn)} fails the check of `{exercise}`:\n{verdict}")
    print(f"Using `{function_name(fn)}` (the package's own) for now: your `{exercise}` does not pass its check "
          "yet, and this edition has no solution. Yours is left as you wrote it; fix it and run this cell again "
          "to use it.")
    return fn
