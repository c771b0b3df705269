"""The fast engine, behind one door: :func:`channel_distances`.

The plain path (:mod:`cfcam.core.clustering`) builds the full distance matrix and calls scikit-learn's DBSCAN.
The engine gives the same eps and labels, bit for bit, several times faster: one triangle of squared
distances from a matrix product (:mod:`.triangle`), only the pairs that could decide eps or a neighbour test
recomputed as published (:mod:`.exact`), DBSCAN's expansion over bit-packed rows (:mod:`.graph`), the loops
numpy would need many passes for compiled with numba (:mod:`.kernels`), and torch's threads chosen on purpose
(:mod:`.threads`). This package is the only place that imports numba.

``CFCAM_ENGINE`` (environment) chooses: ``auto`` (default: the engine when numba can be imported, else the
plain path, said once as a warning), ``fast`` (the engine; an error without numba) or ``plain``.
"""

from __future__ import annotations

import functools
import os
import warnings

from .threads import single_threaded  # noqa: F401 - the pipeline runs torch on one thread inside the core

ENGINE_ENV = "CFCAM_ENGINE"
ENGINES = ("auto", "fast", "plain")


class EngineWarning(UserWarning):
    """The fast engine is not available: cfcam runs on the plain path (same results, slower)."""


@functools.lru_cache(maxsize=1)
def _numba_problem() -> str | None:
    """Why numba cannot be used here (None when it can): imported once, on first use."""
    try:
        import numba  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install that fails while importing
        return f"{type(exc).__name__}: {exc}"
    return None


def engine_name() -> str:
    """``"fast"`` or ``"plain"``: the path :func:`channel_distances` takes now."""
    choice = os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"
    if choice not in ENGINES:
        raise ValueError(f"{ENGINE_ENV}={choice!r} is not one of {list(ENGINES)}")
    if choice == "plain":
        return "plain"
    problem = _numba_problem()
    if problem is None:
        return "fast"
    if choice == "fast":
        raise RuntimeError(f"{ENGINE_ENV}=fast, but numba cannot be imported ({problem})")
    _warn_once(problem)
    return "plain"


@functools.lru_cache(maxsize=1)
def _warn_once(problem: str) -> None:
    warnings.warn(f"numba cannot be imported ({problem}): cfcam uses its plain path (scikit-learn's DBSCAN on the "
                  "full distance matrix), which gives the same maps, more slowly", EngineWarning, stacklevel=3)


def channel_distances(flat):
    """The distances between the rows of ``flat`` ``(n, d)`` (channels), with ``eps(percentile, eps_min)``,
    ``dbscan(eps, min_samples)`` and ``matrix``: the engine's :class:`~.exact.Distances` when it is available,
    else the plain :class:`~cfcam.core.clustering.ChannelDistances`. Both give the same eps and labels."""
    if engine_name() == "fast":
        from .exact import Distances

        return Distances(flat)
    from ..clustering import ChannelDistances

    return ChannelDistances(flat)


def worth_threads_per_image(channels: int, positions: int) -> bool:
    """Whether one image's core (``channels`` maps of ``positions`` values) is worth a thread of its own."""
    from .triangle import worth_threads_per_image as worth

    return engine_name() == "fast" and worth(channels, positions)
