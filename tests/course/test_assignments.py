"""The student edition: the notebooks carry nbgrader's marks exactly as the marking script writes them; the
edition nbgrader generates has no solution code and still runs; the autograder gives the instructor edition
full marks and the unanswered student edition 0, with the exercise checks as the graders.

The autograding executes notebooks (two runs per notebook), so it runs on one representative notebook here
(REPRESENTATIVE: the capstone, whose every part then comes from the package), and one more notebook runs as a
student runs it, outside nbgrader (PLAIN_RUN); ``make assignments`` grades all nine.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from cfcam.teaching import checks
from cfcam.teaching.assignments.marking import BEGIN, END, exercises, mark_notebook, solution_cells

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
STEMS = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
REPRESENTATIVE = ["07_capstone"]  # the most machinery: 9 fallbacks, a cell of 8 solutions, a named check
PLAIN_RUN = "01_hooks_and_gradcam"  # the plain pattern, run as a student would, outside nbgrader


def load(stem):
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def unmarked(nb):
    """The notebook as it was before marking: no graded cells, no markers, no nbgrader metadata."""
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if not meta(c).get("grade")]
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)
        c.source = "\n".join(line for line in c.source.split("\n") if line.strip() not in (BEGIN, END))
    return nb


def solution_lines(nb) -> list[str]:
    """Every line of solution code between the markers (blank lines left out)."""
    lines = []
    for cell in (nb.cells[i] for i in solution_cells(nb)):
        inside = False
        for line in cell.source.split("\n"):
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


@pytest.mark.parametrize("stem", STEMS)
def test_committed_notebooks_are_marked_exactly_as_the_script_marks_them(stem):
    nb = load(stem)
    assert mark_notebook(nb, stem) == nb, f"run `make mark`: {stem} is not marked as the registry says"
    assert mark_notebook(unmarked(nb), stem) == nb  # the marks come from the script, not from hand edits
    assert [c.id for c in nb.cells] == [str(i) for i in range(len(nb.cells))]  # as `make strip` leaves them


def test_every_registered_exercise_is_graded_once_after_its_chooser():
    graded = {}
    for stem in STEMS:
        nb = load(stem)
        cells = [c for c in nb.cells if meta(c).get("grade")]
        assert [meta(c)["grade_id"] for c in cells] == [e.grade_id for e in exercises(nb, stem)]
        for cell in cells:
            m = meta(cell)
            assert m["locked"] and m["points"] >= 1 and m["schema_version"] == 3
            name = m["grade_id"].removeprefix("grade_")
            before = nb.cells[nb.cells.index(cell) - 1]
            assert re.match(rf"(?s).*use_{name} = checks\.yours_or_solution\({name}, solution_{name}", before.source)
            assert f"grade({name}, solution_{name}" in cell.source and "For the autograder" in cell.source
            graded[name] = (stem, m["points"])
    assert set(graded) == (set(checks.CHECKS) - {"cfcam"}) | {"my_cfcam"}  # 07 writes `my_cfcam`, checked by cfcam
    assert graded["percentile_eps"] == ("02_channel_clustering", 1) and graded["my_cfcam"] == ("07_capstone", 2)


@pytest.mark.parametrize("stem", [s for s in STEMS if s != "00_index"])
def test_solution_cells_are_nbgrader_solutions_with_every_body_between_markers(stem):
    nb = load(stem)
    for cell in (nb.cells[i] for i in solution_cells(nb)):
        m = meta(cell)
        assert m["solution"] and not m["grade"] and not m["locked"]
        assert cell.metadata["jupyter"]["source_hidden"] is True  # still collapsed for the self-learner
        defs = re.findall(r"^def solution_\w+\(", cell.source, re.M)
        assert cell.source.count(BEGIN) == cell.source.count(END) == len(defs) >= 1
    ids = [meta(c)["grade_id"] for c in nb.cells if meta(c)]
    assert len(ids) == len(set(ids))
    assert solution_lines(nb)


def test_no_markdown_or_other_cell_carries_a_solution_marker():
    """nbgrader refuses a marker outside a solution cell (and would cut text at one in a markdown cell)."""
    for stem in STEMS:
        for cell in load(stem).cells:
            if "BEGIN SOLUTION" in cell.source or "HIDDEN TESTS" in cell.source:
                assert meta(cell).get("solution"), f"{stem}: {cell.source[:60]!r}"


def test_make_mark_rewrites_an_unmarked_notebook_and_make_assignments_refuses_one(tmp_path, capsys):
    from cfcam.teaching.assignments.__main__ import main
    from cfcam.teaching.assignments.edition import write_course

    stem = "08_a_model_that_cheats"
    nbformat.write(unmarked(load(stem)), tmp_path / f"{stem}.ipynb")
    with pytest.raises(ValueError, match=f"{stem}.ipynb is not marked .* run `make mark`"):
        write_course(tmp_path, tmp_path / "course", [stem])
    assert main(["mark", "--check", "--notebooks", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"not marked: {stem}\n"
    assert main(["mark", "--notebooks", str(tmp_path)]) == 0
    assert nbformat.read(tmp_path / f"{stem}.ipynb", as_version=4) == load(stem)
    assert main(["mark", "--check", "--notebooks", str(tmp_path)]) == 0
    with pytest.raises(SystemExit, match="--only: no such notebook"):
        main(["build", "--notebooks", str(tmp_path), "--only", "99_nope"])


# -- the student edition and the autograder (nbgrader; executes notebooks) ---------------------------------


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition of every notebook, as `make assignments` writes it."""
    # nbgrader comes with the classroom extra, which .ci/install installs: without it this fails (no skip)
    from cfcam.teaching.assignments.edition import generate, write_course

    build = tmp_path_factory.mktemp("build")
    write_course(NOTEBOOKS, build / "nbgrader", STEMS)
    generate(build / "nbgrader", STEMS, build / "student")
    return build


@pytest.mark.notebooks
@pytest.mark.slow
def test_the_student_edition_has_no_solution_code(edition):
    student = edition / "student"
    assert sorted(p.stem for p in student.glob("*.ipynb")) == STEMS
    for stem in STEMS:
        source, released = load(stem), nbformat.read(student / f"{stem}.ipynb", as_version=4)
        code = "\n".join(c.source for c in released.cells if c.cell_type == "code")
        assert "BEGIN SOLUTION" not in code and "END SOLUTION" not in code
        given = "\n".join(c.source for i, c in enumerate(source.cells)  # code the exercises hand out anyway
                          if c.cell_type == "code" and i not in solution_cells(source))
        leaked = [line for line in solution_lines(source) if len(line) > 12 and line in code and line not in given]
        assert leaked == [], f"{stem}: solution code in the student edition: {leaked}"
        assert released.cells[0].source.startswith("> **Student edition.**")
        graded = {meta(c)["grade_id"]: c.source for c in released.cells if meta(c).get("grade")}
        assert graded == {meta(c)["grade_id"]: c.source for c in source.cells if meta(c).get("grade")}
        for i in solution_cells(released):  # the signature stays, the body raises: the chooser falls back
            assert 'raise NotImplementedError("no solution in the student edition")' in released.cells[i].source
        if stem != "00_index":
            assert len(solution_cells(released)) == len(solution_cells(source)) >= 1


@pytest.fixture(scope="module")
def scores(edition):
    from cfcam.teaching.assignments.edition import autograde

    return {stem: autograde(edition / "nbgrader", stem) for stem in REPRESENTATIVE}


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("stem", REPRESENTATIVE)
def test_autograde_gives_the_instructor_edition_full_marks_and_the_unanswered_edition_zero(stem, scores, edition):
    from cfcam.teaching.assignments.edition import INSTRUCTOR, UNANSWERED

    by_student = {s.student: s for s in scores[stem]}
    expected = {e.grade_id for e in exercises(load(stem), stem)}
    instructor, unanswered = by_student[INSTRUCTOR], by_student[UNANSWERED]
    assert instructor.max_score == sum(e.points for e in exercises(load(stem), stem)) > 0
    assert instructor.score == instructor.max_score and set(instructor.cells) == expected
    assert unanswered.score == 0 and unanswered.cells == dict.fromkeys(expected, 0)
    assert instructor.errors_outside_graded_cells == [] == unanswered.errors_outside_graded_cells

    # the unanswered edition ran top to bottom: each exercise reported by its check, the package's answer used
    graded = nbformat.read(edition / "nbgrader" / "autograded" / UNANSWERED / stem / f"{stem}.ipynb", as_version=4)
    text = "\n".join(o.get("text", "") for c in graded.cells for o in c.get("outputs", []) if o.output_type == "stream")
    names = [e.name for e in exercises(load(stem), stem)]
    for name in names:
        assert f"Using `package_{name}` (the package's own) for now: your `{name}`" in text
    assert "Not implemented yet:" in text and "Using `solution_" not in text
    errors = [o for c in graded.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == len(names) and all(o.ename == "AssertionError" for o in errors)
    if stem == "07_capstone":  # every part and the assembly come from the package, and the page says so
        assert "MATCH: `package_my_cfcam` reproduces the package" in text
        assert text.count("Using `package_") == 9


@pytest.mark.notebooks
@pytest.mark.slow
def test_the_student_edition_runs_top_to_bottom_in_jupyter(edition, monkeypatch):
    """Outside nbgrader (a student's Run All) no cell raises: the graded cells only print."""
    from nbclient import NotebookClient

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    stem = PLAIN_RUN
    nb = nbformat.read(edition / "student" / f"{stem}.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(edition / "student")}}).execute()  # raises on an error
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    for name in (e.name for e in exercises(load(stem), stem)):
        assert f"Not implemented yet: `{name}` still raises NotImplementedError" in text
        assert f"Using `package_{name}` (the package's own) for now" in text
        assert f"For the autograder: `{name}` does not pass its check yet" in text
