"""The machinery every exercise check shares: the cases, running the learner's function safely, one
printed verdict, and comparisons that name the first difference.

A check builds :class:`Case` objects (an input and the package's answer for it) and a ``compare(out, case)``
that raises :class:`Wrong` with what is wrong and, when the mistake is recognised, a targeted hint; then
:func:`verify` runs the learner's function on every case and prints ``Correct:``, ``Not implemented yet:`` or
``Not quite:`` with a hint. It never raises because an answer is wrong.

A check may also list :class:`Mistake` models (what a typical wrong answer computes): when the learner's
function fails and agrees with one of them on *every* case, the hint names that mistake in words. Matching
the whole run, not one case, is what keeps unrelated mistakes from getting the same hint.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...core.engine.threads import torch_threads

__all__ = ["Case", "Mistake", "Wrong", "expect_array", "function_name", "generator", "is_right", "matches",
           "name_mistake", "same_output", "to_array", "to_scalar", "verify"]


@dataclass
class Case:
    """One input for the learner's function and the package's answer for it."""

    label: str  # what the input is, in words, for the verdict
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A typical wrong answer: ``model`` takes a case's arguments and returns what that mistake returns;
    ``hint`` names the mistake in words (never the solution's code)."""

    hint: str
    model: Callable[..., Any]


def same_output(got, model_out, rtol: float = 1e-4, atol: float = 1e-9) -> bool:
    """Whether the learner's output equals a mistake model's output (arrays, tensors, numbers, booleans; NaN
    equals NaN, so that a mistake that divides by zero is recognised too)."""
    try:
        if isinstance(model_out, (bool, np.bool_)):
            return isinstance(got, (bool, np.bool_, int, np.integer, torch.Tensor)) and bool(got) == bool(model_out)
        a, b = to_array(got), np.asarray(to_array(model_out), dtype=np.float64)
        return a.shape == b.shape and bool(np.allclose(a.astype(np.float64), b, rtol=rtol, atol=atol,
                                                       equal_nan=True))
    except Exception:  # an output that cannot be compared matches no mistake
        return False


_RAISED = object()  # what a function that raised "returned": it matches a mistake model that raises too


def _run_quietly(fn, case: Case):
    try:
        return fn(*(_copy(a) for a in case.args), **{k: _copy(v) for k, v in case.kwargs.items()})
    except Exception:
        return _RAISED


def name_mistake(fn, cases: list[Case], mistakes, same: Callable[[Any, Any], bool] = same_output) -> str | None:
    """The hint of the first mistake that ``fn`` agrees with on every case (raising where it raises), else
    None."""
    if not mistakes:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        outs = [_run_quietly(fn, case) for case in cases]
        if any(out is None for out in outs) or all(out is _RAISED for out in outs):
            return None
        for mistake in mistakes:
            if all(_agrees(out, _run_quietly(mistake.model, case), same) for out, case in zip(outs, cases)):
                return mistake.hint  # (all() stops at the first case where the mistake does not fit)
    return None


def _agrees(out, model, same) -> bool:
    if out is _RAISED or model is _RAISED:
        return out is model
    return same(out, model)


class Wrong(Exception):
    """Raised by a comparison: ``problem`` says what is wrong, ``hint`` (optional) a targeted hint."""

    def __init__(self, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


def function_name(fn) -> str:
    """The name a verdict uses for the learner's function (its ``__name__``, else its type's)."""
    return getattr(fn, "__name__", None) or type(fn).__name__


def _copy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def _same(a, b) -> bool:
    """Whether an argument still equals the copy taken before the call (NaN-free inputs only)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    return True


def _call_signature(case: Case) -> str:
    parts = [_describe(a) for a in case.args] + [f"{k}={v!r}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor{tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"array{x.shape}"
    return repr(x)


def verify(fn, exercise: str, cases: list[Case], compare: Callable[[Any, Case], None], hint: str,
            success: str, mistakes=(), same: Callable[[Any, Any], bool] = same_output) -> bool:
    """Run ``fn`` on every case; print one verdict; True when every case passes. On a wrong answer, a
    ``mistakes`` model that ``fn`` agrees with on every case (by ``same``) gives the hint. Torch runs on one
    thread meanwhile: the inputs are tiny, and more threads only wait for each other on a busy machine."""
    with torch_threads(1):
        return _verify(fn, exercise, cases, compare, hint, success, mistakes, same)


def _verify(fn, exercise, cases, compare, hint, success, mistakes, same) -> bool:
    if not callable(fn):
        print(f"Not quite: expected the function itself (for example `check(my_function)`, without calling "
              f"it), got a {type(fn).__name__}.\nHint: pass the function's name, not its result.")
        return False
    name = function_name(fn)
    for case in cases:
        args = tuple(_copy(a) for a in case.args)
        kwargs = {k: _copy(v) for k, v in case.kwargs.items()}
        try:
            out = fn(*args, **kwargs)
        except NotImplementedError:
            print(f"Not implemented yet: `{name}` still raises NotImplementedError. Replace the "
                  f"`raise NotImplementedError` line with your code ({exercise}), then run this cell again.")
            return False
        except Exception as exc:  # the learner's bug, reported, never re-raised
            named = name_mistake(fn, cases, mistakes, same)
            print(f"Not quite: `{name}({_call_signature(case)})` raised {type(exc).__name__}: {exc}\n"
                  f"  input: {case.label}\nHint: {named or hint}")
            return False
        changed = [i for i, (a, b) in enumerate(zip(args, case.args)) if not _same(a, b)]
        changed += [k for k in kwargs if not _same(kwargs[k], case.kwargs[k])]
        if changed:
            print(f"Not quite: `{name}` changed its input in place (argument {changed[0]!r}).\n"
                  f"  input: {case.label}\nHint: compute a new tensor/array instead of modifying the argument "
                  "(avoid in-place operations such as `x -= ...`, `x /= ...` or methods ending in `_`).")
            return False
        try:
            if out is None:
                raise Wrong("it returned None. Did you forget the `return` statement?")
            compare(out, case)
        except Wrong as wrong:
            named = name_mistake(fn, cases, mistakes, same)
            print(f"Not quite: {wrong.problem}\n  input: {case.label}\nHint: {named or wrong.hint or hint}")
            return False
        except Exception as exc:  # a result so odd that comparing it failed
            print(f"Not quite: could not compare what `{name}` returned ({type(out).__name__}) with the expected "
                  f"answer ({type(exc).__name__}: {exc}).\n  input: {case.label}\nHint: {hint}")
            return False
    print(f"Correct: {success}")
    return True


def to_array(out, what: str = "an array or tensor") -> np.ndarray:
    """The learner's output as a float64 numpy array, or ``Wrong`` saying what it was."""
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().double().numpy() if out.is_floating_point() or out.dtype == torch.bool \
            else out.detach().cpu().numpy()
    if isinstance(out, (str, bytes, dict, set)) or out is None:
        raise Wrong(f"it returned a {type(out).__name__}, expected {what}")
    try:
        arr = np.asarray(out)
    except Exception:
        raise Wrong(f"it returned a {type(out).__name__}, expected {what}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise Wrong(f"it returned a {type(out).__name__} that is not numeric, expected {what}")
    return arr.astype(np.float64) if np.issubdtype(arr.dtype, np.floating) else arr


def to_scalar(out, what: str) -> float:
    """The learner's output as one Python number, or ``Wrong`` saying it is not a single number."""
    arr = to_array(out, what)
    if arr.size != 1:
        raise Wrong(f"it returned something of shape {arr.shape}, expected {what} (a single number)")
    return arr.reshape(()).item()


def is_right(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """The answer matches (checked first, so that a right answer is never mistaken for a known mistake)."""
    return got.shape == np.shape(expected) and bool(np.isfinite(got).all()) and \
        bool(np.allclose(got.astype(np.float64), expected, rtol=rtol, atol=atol))


def _values_close(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def expect_array(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-5, atol: float = 0.0,
                 shape_hint: str | None = None) -> None:
    """Shape, finiteness and values; ``Wrong`` describing the first difference."""
    if got.shape != expected.shape:
        raise Wrong(f"the result has shape {got.shape}, expected {expected.shape}", shape_hint)
    got = got.astype(np.float64)
    if not np.isfinite(got).all():
        bad = int((~np.isfinite(got)).sum())
        raise Wrong(f"the result contains {bad} NaN or infinite value(s)")
    if not _values_close(got, expected, rtol, atol):
        err = np.abs(got - expected)
        where = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        index = f" at index {tuple(int(i) for i in where)}" if err.ndim else ""
        raise Wrong(f"the shape is right {got.shape} but the values differ: largest difference "
                     f"{float(err.max()):.3g}{index} (got {float(got[where]):.6g}, expected "
                     f"{float(expected[where]):.6g})")


def matches(got: np.ndarray, candidate, rtol: float = 1e-5, atol: float = 1e-12) -> bool:
    """Whether ``got`` equals a known wrong answer ``candidate`` (used to name the mistake)."""
    try:
        candidate = np.asarray(candidate, dtype=np.float64)
        return got.shape == candidate.shape and bool(np.allclose(got, candidate, rtol=rtol, atol=atol))
    except Exception:
        return False


def generator(seed: int) -> torch.Generator:
    """A seeded torch generator, so a check's inputs are fixed and the learner's random state is untouched."""
    return torch.Generator().manual_seed(seed)
