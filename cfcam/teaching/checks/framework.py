"""The machinery every exercise check shares: the cases, running the learner's function safely, one
printed verdict, and comparisons that name the first difference.

A check builds :class:`Case` objects (an input and the package's answer for it) and a ``compare(out, case)``
that raises :class:`Wrong` with what is wrong and, when the mistake is recognised, a targeted hint; then
:func:`verify` runs the learner's function on every case and prints ``Correct:``, ``Not implemented yet:`` or
``Not quite:`` with a hint. It never raises because an answer is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Case", "Wrong", "expect_array", "function_name", "generator", "is_right", "matches", "to_array",
           "to_scalar", "verify"]


@dataclass
class Case:
    """One input for the learner's function and the package's answer for it."""

    label: str  # what the input is, in words, for the verdict
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)


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
            success: str) -> bool:
    """Run ``fn`` on every case; print one verdict; True when every case passes."""
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
            print(f"Not quite: `{name}({_call_signature(case)})` raised {type(exc).__name__}: {exc}\n"
                  f"  input: {case.label}\nHint: {hint}")
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
            print(f"Not quite: {wrong.problem}\n  input: {case.label}\nHint: {wrong.hint or hint}")
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
