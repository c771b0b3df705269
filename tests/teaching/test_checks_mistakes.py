"""Every exercise check accepts right answers written differently and rejects each typical mistake with a hint
that names that mistake, in words: no hint prints solution code (answers in answers_early.py, answers_late.py)."""

import ast
import contextlib
import functools
import io
import re
from pathlib import Path

import pytest
from answers_early import RIGHT as RIGHT_EARLY
from answers_early import WRONG as WRONG_EARLY
from answers_late import RIGHT as RIGHT_LATE
from answers_late import WRONG as WRONG_LATE

from cfcam.teaching import checks

RIGHT = {**RIGHT_EARLY, **RIGHT_LATE}
WRONG = {**WRONG_EARLY, **WRONG_LATE}

RIGHT_CASES = [(name, fn) for name, fns in RIGHT.items() for fn in fns]
WRONG_CASES = [(name, i, word) for name, pairs in WRONG.items() for i, (_, word) in enumerate(pairs)]

# The mistakes issue 23 found passing, each with the check that must reject it and the words of its hint.
LISTED = [
    ("check_percentile_eps", "every zero distance"),  # eps from d[d > 0], with dead channels
    ("check_cfcam", "every zero distance"),
    ("check_cfcam", "strict comparison"),  # > instead of >= in the important split
    ("check_reference_kernel", "(h-1)/2"),  # the kernel centred in the middle
    ("check_cfcam", "(h-1)/2"),
    ("check_cfcam", "mirroring"),  # symmetric padding instead of zeros
    ("check_cfcam", "split the other way"),
    ("check_min_samples", "to the nearest integer"),  # rounded instead of truncated
    ("check_cfcam", "min_samples is rounded"),
    ("check_gradcam_map", "looks transposed"),  # a transposed map
    ("check_cluster_mean_gradient", "looks transposed"),
    ("check_normalize", "looks transposed"),
    ("check_energy_in_mask", "looks transposed"),
    ("check_cfcam", "looks transposed"),
    ("check_deletion_auc", "transposed"),
    ("check_pointing_game", "is a square"),  # a Chebyshev instead of a Euclidean tolerance
    ("check_deletion_auc", "first channel only"),  # a deletion curve that reads one input channel
]

# What solution code looks like in a hint: a library call, an assignment, a definition, a statement.
CODE = re.compile(r"\b(np|numpy|torch|scipy|copy|F|stats|math)\.\w|\bdef \w|\breturn\s+[A-Za-z_][\w.]*[(\[]|"
                  r"\blambda\b|;\s*\w+\s*=|\bimport\b|^\s*\w+\s*=[^=]|\.\w+\(|\[:, None")


def verdict(check_name, fn):
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        ok = getattr(checks, check_name)(fn)
    return ok, printed.getvalue()


@functools.cache
def wrong_verdict(check_name, index):
    """The verdict on one wrong answer, computed once for the tests below."""
    return verdict(check_name, WRONG[check_name][index][0])


def hint_of(out: str) -> str:
    return out.split("\nHint: ", 1)[1] if "\nHint: " in out else ""


def _id(case):
    return f"{case[0]}-{getattr(case[1], '__name__', '?')}"


@pytest.mark.parametrize("check_name, fn", RIGHT_CASES, ids=[_id(c) for c in RIGHT_CASES])
def test_right_answers_written_differently_pass(check_name, fn):
    ok, out = verdict(check_name, fn)
    assert ok is True, out
    assert out.startswith("Correct:") and out.count("\n") == 1


@pytest.mark.parametrize("check_name, index, word", WRONG_CASES, ids=[f"{c[0]}-{c[1]}" for c in WRONG_CASES])
def test_each_mistake_is_rejected_with_its_own_hint(check_name, index, word):
    ok, out = wrong_verdict(check_name, index)
    assert ok is False, out
    assert out.startswith("Not quite:") and "\n  input: " in out and "\nHint: " in out, out
    assert "Correct" not in out
    assert word in out, out
    others = {w for name, _, w in WRONG_CASES if name == check_name and w not in word and word not in w}
    assert not [w for w in others if w in hint_of(out) and len(w) > 8], out  # no other mistake's words


def test_every_listed_mistake_has_a_wrong_answer():
    assert not [pair for pair in LISTED if pair not in {(n, w) for n, _, w in WRONG_CASES}]


@pytest.mark.parametrize("check_name", sorted(WRONG))
def test_mistakes_of_one_check_get_different_hints(check_name):
    hints = {}
    for index, (_, word) in enumerate(WRONG[check_name]):
        _, out = wrong_verdict(check_name, index)
        hints.setdefault(hint_of(out), set()).add(word)
    shared = {hint: words for hint, words in hints.items() if len(words) > 1}
    assert not shared, shared


@pytest.mark.parametrize("check_name", sorted(WRONG))
def test_no_hint_contains_solution_code(check_name):
    """Every hint a check can print for its mistakes, a stub or an odd answer is words, not code."""
    outs = [wrong_verdict(check_name, i)[1] for i in range(len(WRONG[check_name]))]
    outs += [verdict(check_name, fn)[1] for fn in (lambda *a, **k: "text", lambda *a, **k: 1 / 0)]
    for out in outs:
        hint = hint_of(out)
        for line in hint.splitlines():
            assert not CODE.search(line), (check_name, line)
    mistakes = [getattr(module, name) for module in vars(checks).values() if hasattr(module, "__name__")
                for name in dir(module) if name.endswith("_MISTAKES")]
    assert len(mistakes) >= 12
    for group in mistakes:
        for mistake in group:
            assert not CODE.search(mistake.hint), mistake.hint


def test_the_code_pattern_finds_code():
    for code in ("np.percentile(d, 25)", "x = d.mean()", "copy.deepcopy(model)", "a = 1; b = 2", "k / k.sum()",
                 "return max(floor, n)"):
        assert CODE.search(code), code
    for words in ("divide S * R by its sum (plus 1e-6).", "ReLU(sum_k w_k A_k)", "the `tolerance` argument",
                  "you summed it; take the mean", "return how many channels each cluster has"):
        assert not CODE.search(words), words


def _text(node) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return ""


def test_no_hint_in_the_check_modules_is_code():
    """Every hint written in the checks' source (a Wrong's hint, a Mistake's, verify's fallback) is words."""
    folder = Path(checks.__file__).parent
    hints = []
    for path in sorted(folder.glob("nb*.py")) + [folder / "framework.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            position = {"Wrong": 1, "verify": 4, "Mistake": 0}.get(name, 0 if name.endswith("_mistake") else None)
            if position is not None and len(node.args) > position:
                hints.append((path.name, _text(node.args[position])))
    assert len([h for h in hints if h[1]]) > 100
    assert not [(name, text) for name, text in hints if CODE.search(text)]
