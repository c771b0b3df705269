"""The notebook exercise checks: stubs say so, odd answers never make them raise, the chooser and the framework.

Right and wrong answers for every check: test_checks_mistakes.py."""

import numpy as np
import pytest
import torch

from cfcam.teaching import checks


def stub(*args, **kwargs):
    raise NotImplementedError("write this function")


def gradcam_weights(gradients):
    return gradients.mean(dim=(1, 2))


CHECK_NAMES = sorted(name for name in checks.__all__ if name.startswith("check_"))


@pytest.mark.parametrize("check_name", CHECK_NAMES)
def test_stub_is_not_implemented_yet(check_name, capsys):
    assert getattr(checks, check_name)(stub) is False
    out = capsys.readouterr().out
    assert out.startswith("Not implemented yet:") and "stub" in out


@pytest.mark.parametrize("check_name", CHECK_NAMES)
def test_nothing_raises_for_odd_answers(check_name, capsys):
    for odd in (lambda *a, **k: "a string", lambda *a, **k: {"x": 1}, lambda *a, **k: [float("nan")],
                lambda *a, **k: 1 / 0, lambda *a, **k: torch.full((3, 3), float("nan"))):
        assert getattr(checks, check_name)(odd) is False
        assert capsys.readouterr().out.startswith("Not quite:")
    assert getattr(checks, check_name)(42) is False  # a value, not a function
    assert "function" in capsys.readouterr().out


def test_registry_names_every_check():
    assert set(checks.CHECKS.values()) == {getattr(checks, n) for n in checks.__all__ if n.startswith("check_")}


def test_numpy_answers_are_accepted(capsys):
    assert checks.check_gradcam_weights(lambda g: g.numpy().mean(axis=(1, 2)))
    assert checks.check_cluster_sizes(lambda labels: {j: int((labels == j).sum()) for j in range(labels.max() + 1)})
    assert checks.check_min_samples(lambda n, fraction=0.05, floor=2: np.int64(max(floor, int(fraction * n))))
    assert capsys.readouterr().out.count("Correct:") == 3


def solution_gradcam_weights(gradients):
    return gradients.mean(dim=(1, 2))


def test_yours_or_solution_keeps_the_learners_function(capsys):
    chosen = checks.yours_or_solution(stub, solution_gradcam_weights)
    assert chosen is solution_gradcam_weights
    out = capsys.readouterr().out
    assert out.startswith("Using `solution_gradcam_weights` for now") and "Correct" not in out
    assert out.count("\n") == 1
    with pytest.raises(NotImplementedError):
        stub(torch.zeros(1, 1, 1))  # the learner's function is untouched
    assert checks.yours_or_solution(gradcam_weights, solution_gradcam_weights) is gradcam_weights
    assert capsys.readouterr().out.startswith("Using your `gradcam_weights`")


def test_yours_or_solution_refuses_a_broken_solution():
    def solution_gradcam_weights(gradients):  # noqa: F811 - a deliberately wrong solution
        return gradients.sum(dim=(1, 2))

    with pytest.raises(AssertionError, match="fails its own check"):
        checks.yours_or_solution(stub, solution_gradcam_weights)


def test_framework_is_public_for_new_checks(capsys):
    """A notebook (or a new module) writes its own check with the same machinery and verdicts."""
    from cfcam.teaching.checks import Case, Wrong, verify

    def compare(out, case):
        if out != case.expected:
            raise Wrong(f"it returned {out}, expected {case.expected}", "multiply by two.")

    cases = [Case("the number 2", (2,), 4), Case("the number 3", (3,), 6)]
    assert verify(lambda x: 2 * x, "doubling", cases, compare, "double it.", "it doubles.") is True
    assert verify(lambda x: x + 2, "doubling", cases, compare, "double it.", "it doubles.") is False
    out = capsys.readouterr().out
    assert out.startswith("Correct: it doubles.\nNot quite: it returned 5, expected 6")
    assert "input: the number 3" in out and "Hint: multiply by two." in out


def test_teaching_modules_are_small_and_import_no_private_names():
    """Every module under cfcam/teaching is under 500 lines and imports only public names from others."""
    import ast
    from pathlib import Path

    root = Path(checks.__file__).resolve().parents[1]
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 10
    for path in modules:
        text = path.read_text()
        assert text.count("\n") < 500, f"{path} has {text.count(chr(10))} lines"
        private = [(node.module, alias.name) for node in ast.walk(ast.parse(text))
                   if isinstance(node, ast.ImportFrom) for alias in node.names if alias.name.startswith("_")]
        assert private == [], f"{path} imports private names {private}"


def test_reference_eps_is_numpys_percentile():
    from cfcam.teaching.reference import eps_from_distances, pairwise_distances

    d = pairwise_distances(np.random.default_rng(0).normal(size=(40, 9)))
    off = d[~np.eye(40, dtype=bool)].astype(np.float64)
    for p in (0.0, 10.0, 25.0, 73.3, 100.0):
        assert eps_from_distances(d, p, 1e-5) == max(np.percentile(off, p), 1e-5)
    assert eps_from_distances(np.zeros((5, 5), np.float32), 25.0, 1e-5) == 1e-5
    assert eps_from_distances(np.zeros((1, 1), np.float32), 25.0, 0.5) == 0.5
