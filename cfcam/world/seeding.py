"""Seeds and argument checks shared by the synthetic world's modules: a seed, a ``SeedSequence`` or a numpy
``Generator`` all become a ``Generator``; labels and fractions are checked with a message naming them."""

from __future__ import annotations

from typing import Union

import numpy as np

__all__ = ["SeedLike", "as_generator", "check_seed", "check_label", "check_fraction"]

SeedLike = Union[int, np.integer, np.random.SeedSequence, np.random.Generator]


def as_generator(rng_or_seed: SeedLike, name: str = "rng_or_seed") -> np.random.Generator:
    """Turn a seed (int / SeedSequence) or a Generator into a Generator."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int seed or a numpy Generator, not bool")
    if isinstance(rng_or_seed, (int, np.integer)):
        if rng_or_seed < 0:
            raise ValueError(f"{name} must be >= 0, got {rng_or_seed}")
        return np.random.default_rng(int(rng_or_seed))
    if isinstance(rng_or_seed, np.random.SeedSequence):
        return np.random.default_rng(rng_or_seed)
    raise TypeError(
        f"{name} must be an int seed, a SeedSequence or a numpy Generator, "
        f"got {type(rng_or_seed).__name__}"
    )


def check_label(label) -> int:
    """Validate a class label (0 or 1) and return it as a Python int."""
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"label must be 0 or 1, got {label!r}")
    if int(label) not in (0, 1):
        raise ValueError(f"label must be 0 ('normal') or 1 ('lesion'), got {label}")
    return int(label)


def check_fraction(name: str, value) -> float:
    """Validate a number in [0, 1] and return it as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_seed(seed) -> int:
    """Validate an int seed (>= 0) and return it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)
