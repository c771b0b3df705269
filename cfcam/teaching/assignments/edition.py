"""The student edition with nbgrader: a course directory under ``build/nbgrader/`` with one assignment per
notebook, ``generate_assignment`` for each, the result copied to ``build/student/``, and, when asked, the
autograding of two submissions per notebook: the instructor edition (must score full marks) and the student
edition unanswered (must score 0 on every graded cell, and fail nowhere else).

nbgrader is imported only here (the ``classroom`` extra); everything runs offline.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from .marking import mark_notebook

__all__ = ["CONFIG", "INSTRUCTOR", "UNANSWERED", "Score", "autograde", "generate", "write_course"]

COURSE_ID = "cfcam"
INSTRUCTOR = "instructor-edition"
UNANSWERED = "unanswered-student"
# nbgrader_config.py of the course directory: teachers copy it to their own course (docs/teaching.md).
CONFIG = '''\
# nbgrader configuration for the cfcam course (written by `python -m cfcam.teaching.assignments`)
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "cfcam"
# In the student edition a solution's body becomes this: the chooser after it then uses the package's own
# answer and says so (cfcam.teaching.checks.grading.package_fallback), so every later cell still runs.
c.ClearSolutions.code_stub = {"python": "# (no solution in the student edition)\\n"
                                       "raise NotImplementedError(\\"no solution in the student edition\\")"}
# One page at the top of each student notebook says what differs from the instructor edition.
c.IncludeHeaderFooter.header = "source/header.ipynb"
# Some cells run whole evaluations: 30 s (nbgrader's default) is too short on a busy machine.
c.Execute.timeout = 1200
'''
HEADER = (
    "> **Student edition.** The solution cells of this notebook are empty. Write each exercise in the cell that "
    "raises `NotImplementedError(\"your code here\")`; the check under it says whether it is right and gives "
    "hints. Until yours passes, the cells after it use the package's own function and say so, so Run All always "
    "works. The cells marked *For the autograder* are how your work is graded: leave them as they are."
)


@dataclass
class Score:
    """The autograder's result for one notebook and one submission."""

    notebook: str
    student: str
    score: float
    max_score: float
    cells: dict  # grade_id -> points scored
    errors_outside_graded_cells: list  # the first line of each error in a cell that is not graded


def write_course(notebooks: Path, course: Path, stems: list[str]) -> None:
    """A fresh nbgrader course directory: config, header and ``source/<stem>/<stem>.ipynb`` for each notebook,
    after checking that each notebook is marked exactly as :func:`mark_notebook` would mark it."""
    for stem in stems:
        path = notebooks / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"no notebook {path}")
        nb = nbformat.read(path, as_version=4)
        if mark_notebook(nb, stem) != nb:
            raise ValueError(f"{path} is not marked for nbgrader as the exercise registry says: run "
                             "`make mark` (python -m cfcam.teaching.assignments mark) and commit the result")
    if course.exists():
        shutil.rmtree(course)
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG)
    header = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(HEADER)])
    header.cells[0].id = "student-edition"
    nbformat.write(header, course / "source" / "header.ipynb")
    for stem in stems:
        (course / "source" / stem).mkdir()
        shutil.copy2(notebooks / f"{stem}.ipynb", course / "source" / stem / f"{stem}.ipynb")


def _api(course: Path):
    """nbgrader's Python API on ``course``, configured by its ``nbgrader_config.py``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs the `alembic` script of its environment by name: make it findable without an activated venv
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _run(result: dict, what: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('error', '')}\n{result.get('log', '')[-4000:]}")


def generate(course: Path, stems: list[str], student: Path) -> None:
    """``generate_assignment`` for each notebook; the student edition replaces ``student`` (atomically)."""
    api = _api(course)
    for stem in stems:
        _run(api.generate_assignment(stem, force=True, create=True), f"generate_assignment {stem}")
    student.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".student-", dir=student.parent))
    for stem in stems:
        shutil.copy2(course / "release" / stem / f"{stem}.ipynb", staging / f"{stem}.ipynb")
    if student.exists():
        shutil.rmtree(student)
    os.replace(staging, student)


def _graded_ids(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def _errors_outside_graded_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue', '')}".splitlines()[0] for c in nb.cells if c.cell_type == "code"
            and not c.metadata.get("nbgrader", {}).get("grade") for o in c.get("outputs", [])
            if o.output_type == "error"]


def autograde(course: Path, stem: str) -> list[Score]:
    """Submit the instructor edition and the unanswered student edition of one notebook and autograde both."""
    from nbgrader.api import Gradebook

    api = _api(course)
    sources = {INSTRUCTOR: course / "source" / stem, UNANSWERED: course / "release" / stem}
    scores = []
    for student, folder in sources.items():
        target = course / "submitted" / student / stem
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / f"{stem}.ipynb", target / f"{stem}.ipynb")
        with warnings.catch_warnings():  # nbgrader's own SQLAlchemy session warnings say nothing about the grades
            warnings.filterwarnings("ignore", message=".*not in session.*")
            _run(api.autograde(stem, student, force=True, create=True), f"autograde {stem} for {student}")
            graded = course / "autograded" / student / stem / f"{stem}.ipynb"
            ids = _graded_ids(nbformat.read(graded, as_version=4))
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
                nb = gb.find_submission_notebook(stem, stem, student)
                cells = {g.name: g.score for g in nb.grades if g.name in ids}
                score, max_score = nb.score, nb.max_score
        scores.append(Score(stem, student, score, max_score, cells, _errors_outside_graded_cells(graded)))
    return scores


def report(scores: list[Score], path: Path) -> list[str]:
    """Write the scores as JSON to ``path`` (atomically); the problems found, one line each (none: all good)."""
    problems = []
    for s in scores:
        if s.errors_outside_graded_cells:
            problems.append(f"{s.notebook} ({s.student}): errors outside the graded cells: "
                            f"{s.errors_outside_graded_cells}")
        if s.student == INSTRUCTOR and s.score != s.max_score:
            problems.append(f"{s.notebook}: the instructor edition scores {s.score} of {s.max_score}")
        if s.student == UNANSWERED and any(s.cells.values()):
            problems.append(f"{s.notebook}: the unanswered student edition scores {s.cells}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(s) for s in scores], indent=1))
    os.replace(tmp, path)
    return problems
