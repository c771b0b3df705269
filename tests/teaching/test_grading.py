"""The checks as nbgrader's graders: ``grade`` raises only under nbgrader and only when no function passes;
the package's own answers pass every check; a notebook without solutions falls back on them and says so."""

from __future__ import annotations

import pytest

from cfcam.teaching import checks
from cfcam.teaching.checks.answers import PACKAGE_ANSWERS, package_answer
from cfcam.teaching.checks.grading import grade, grading


def _check_of(exercise: str):
    return checks.check_cfcam if exercise == "my_cfcam" else checks.CHECKS[exercise]


def test_there_is_a_package_answer_for_every_registered_exercise():
    assert set(PACKAGE_ANSWERS) == (set(checks.CHECKS) - {"cfcam"}) | {"my_cfcam"}
    with pytest.raises(KeyError, match="no package answer for the exercise 'nope'"):
        package_answer("nope")


@pytest.mark.parametrize("exercise", sorted(PACKAGE_ANSWERS))
def test_each_package_answer_passes_its_check(exercise, capsys):
    fn = package_answer(exercise)
    assert fn.__name__ == f"package_{exercise}"
    assert _check_of(exercise)(fn) is True
    assert capsys.readouterr().out.startswith("Correct:")


def stub(distances, percentile=25.0):
    raise NotImplementedError("your code here")


def solution_min_samples(n_channels, fraction=0.05, floor=2):
    return max(floor, int(fraction * n_channels))


def my_min_samples(n_channels, fraction=0.05, floor=2):
    return max(floor, int(fraction * n_channels))


def min_samples(n_channels, fraction=0.05, floor=2):
    return int(fraction * n_channels)  # forgets the floor


def solution_percentile_eps(distances, percentile=25.0):
    raise NotImplementedError("no solution in the student edition")  # what generate_assignment leaves


def test_grade_passes_on_the_learners_function_or_else_the_solution(capsys, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grade(my_min_samples, stub, checks.check_min_samples) is True
    assert capsys.readouterr().out == "For the autograder: your `my_min_samples` passes its check.\n"
    assert grade(min_samples, solution_min_samples) is True  # the instructor edition: the solution passes
    out = capsys.readouterr().out
    assert "`solution_min_samples` (the solution cell) passes the check of `min_samples`" in out
    assert "Correct:" not in out and "Using" not in out  # never credits the learner for the solution


@pytest.mark.parametrize("run", ["autograde", "validate"])
def test_grade_raises_under_nbgrader_when_nothing_passes(run, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", run)
    assert grading()
    with pytest.raises(AssertionError, match=r"`stub` does not pass its check.*\n.*Not implemented yet"):
        grade(stub, solution_percentile_eps)
    with pytest.raises(AssertionError, match="scores 0. The check says:\nNot quite"):
        grade(min_samples, stub, checks.check_min_samples)


def test_grade_only_prints_outside_nbgrader(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not grading()
    assert grade(stub, solution_percentile_eps) is False
    assert capsys.readouterr().out == ("For the autograder: `stub` does not pass its check yet (0 points if it were "
                                       "graded now).\n")


def test_without_a_solution_the_chooser_uses_the_package_and_says_so(capsys):
    def percentile_eps(distances, percentile=25.0):
        raise NotImplementedError("your code here")

    chosen = checks.yours_or_solution(percentile_eps, solution_percentile_eps)
    assert chosen is package_answer("percentile_eps")
    out = capsys.readouterr().out
    assert out.startswith("Using `package_percentile_eps` (the package's own) for now: your `percentile_eps` does "
                          "not pass its check yet, and this edition has no solution.")
    assert out.count("\n") == 1


def test_a_solution_that_is_wrong_is_still_a_bug_in_the_notebook():
    def solution_min_samples(n_channels, fraction=0.05, floor=2):
        return 0

    with pytest.raises(AssertionError, match="solution_min_samples fails its own check"):
        checks.yours_or_solution(stub, solution_min_samples)
