"""Mark the exercises of the notebooks in nbgrader's convention, from the exercise registry, idempotently.

What a marked notebook carries (nbgrader metadata schema 3):

- every solution cell (a code cell starting ``# Solution``) is an nbgrader *solution* cell, and the body of each
  ``solution_...`` function in it sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, so that
  ``nbgrader generate_assignment`` removes exactly the solution code (the signature and docstring stay);
- after the chooser cell of every exercise graded in this notebook (``use_X = checks.yours_or_solution(X, ...)``
  whose check lives in this notebook's check module, e.g. ``nb02_clustering`` for 02), one locked *graded* cell
  ``grade_X`` with its points, calling :func:`cfcam.teaching.checks.grading.grade`.

Marking a marked notebook changes nothing, so it can be rerun after any edit of the exercises.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

import nbformat

__all__ = ["BEGIN", "END", "POINTS", "Exercise", "exercises", "mark_notebook", "solution_cells"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SCHEMA_VERSION = 3
POINTS: dict[str, int] = {"my_cfcam": 2}
"""Points of an exercise's graded cell where not 1 (the capstone assembles a whole method)."""
GRADED_PREFIX = "grade_"


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: the learner's function, its solution, the check expression the chooser names
    (None: looked up by name), and the index of the chooser cell."""

    name: str
    solution: str
    check: str | None
    chooser_cell: int

    @property
    def grade_id(self) -> str:
        return GRADED_PREFIX + self.name

    @property
    def points(self) -> int:
        return POINTS.get(self.name, 1)


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def solution_cells(nb) -> list[int]:
    """Indices of the solution cells: code cells whose source starts with ``# Solution``."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("# Solution")]


def _check_module(check) -> str:
    return check.__module__.rpartition(".")[2]


def _resolve_check(expression: str | None, name: str):
    """The check function a chooser uses: the named one (``checks.check_cfcam``) or ``CHECKS[name]``."""
    from ..checks.registry import CHECKS

    if expression is None:
        if name not in CHECKS:
            raise ValueError(f"no check named {name!r} in the registry (cfcam.teaching.checks.CHECKS)")
        return CHECKS[name]
    by_name = {fn.__name__: fn for fn in CHECKS.values()}
    attribute = expression.rpartition(".")[2]
    if attribute not in by_name:
        raise ValueError(f"the chooser's check {expression!r} is not in the registry (cfcam.teaching.checks.CHECKS)")
    return by_name[attribute]


def _choosers(source: str):
    """``(name, solution, check expression or None)`` for each ``use_X = ...yours_or_solution(X, solution_X[, c])``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    for node in tree.body:
        call = node.value if isinstance(node, ast.Assign) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "yours_or_solution" and len(call.args) >= 2):
            continue
        yours, solution = (ast.unparse(a) for a in call.args[:2])
        check = ast.unparse(call.args[2]) if len(call.args) > 2 else None
        yield yours, solution, check


def exercises(nb, stem: str) -> list[Exercise]:
    """The exercises graded in notebook ``stem`` (e.g. ``02_channel_clustering``): its choosers whose check is
    defined in the notebook's own check module (``nb02_...``), in notebook order."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.source.startswith("# Solution"):
            continue
        for name, solution, check in _choosers(cell.source):
            fn = _resolve_check(check, name)
            if _check_module(fn).startswith(f"nb{stem[:2]}_"):
                found.append(Exercise(name, solution, check, index))
    return found


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def mark_solution_source(source: str) -> str:
    """The solution cell's source with the body of each ``solution_...`` function (after its docstring) between
    the markers; markers already there are placed afresh."""
    lines = _strip_markers(source).split("\n")
    tree = ast.parse("\n".join(lines))
    regions = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("solution_")):
            continue
        body = node.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str)
        if has_doc and len(body) == 1:
            raise ValueError(f"{node.name} has only a docstring: no solution code to mark")
        first = body[1] if has_doc else body[0]
        start = body[0].end_lineno if has_doc else first.lineno - 1  # 0-based index of the first body line
        regions.append((start, node.end_lineno, " " * first.col_offset))
    if not regions:
        raise ValueError(f"no `def solution_...` in the solution cell starting {source[:60]!r}")
    for start, end, indent in reversed(regions):
        lines[end:end] = [indent + END]
        lines[start:start] = [indent + BEGIN]
    return "\n".join(lines)


def _solution_grade_id(source: str) -> str:
    names = re.findall(r"^def (solution_\w+)\(", source, re.M)
    if len(names) == 1:
        return names[0]
    return f"solutions_{names[0].removeprefix('solution_')}_to_{names[-1].removeprefix('solution_')}"


def graded_source(exercise: Exercise) -> str:
    """The graded cell's code: a comment for the reader, then one call of ``grade``."""
    args = ", ".join([exercise.name, exercise.solution] + ([exercise.check] if exercise.check else []))
    points = f"{exercise.points} point{'s' if exercise.points != 1 else ''}"
    return (f"# For the autograder (nbgrader, {points}): nothing to do here. Under nbgrader it fails when your\n"
            f"# `{exercise.name}` does not pass its check; anywhere else it only prints one line.\n"
            "from cfcam.teaching.checks.grading import grade\n\n"
            f"grade({args});")


def mark_notebook(nb, stem: str):
    """A marked copy of notebook ``nb`` (``stem`` names it, e.g. ``02_channel_clustering``); ``nb`` is unchanged."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells
                if not c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(GRADED_PREFIX)]
    for index in solution_cells(nb):
        cell = nb.cells[index]
        cell.source = mark_solution_source(cell.source)
        cell.metadata["nbgrader"] = _nbgrader(_solution_grade_id(cell.source), solution=True)
    for exercise in reversed(exercises(nb, stem)):  # from the end: earlier indices stay valid, order is kept
        cell = nbformat.v4.new_code_cell(graded_source(exercise))
        cell.metadata["nbgrader"] = _nbgrader(exercise.grade_id, grade=True, points=exercise.points)
        nb.cells.insert(exercise.chooser_cell + 1, cell)
    for index, cell in enumerate(nb.cells):  # positional cell ids, as nbstripout (`make strip`) writes them
        cell.id = str(index)
    return nb
