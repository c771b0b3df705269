"""argparse value types shared by the subcommands: each names what it expected."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def alpha_value(text: str) -> float:
    """argparse type: a number in [0, 1] (the heatmap's weight in the overlay)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def class_names(text: str) -> list[str]:
    """argparse type: comma-separated class names, none empty."""
    names = [s.strip() for s in text.split(",")]
    if not names or any(not s for s in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-empty names like 'normal,lesion', got {text!r}")
    return names


def int_range(low: int, high: int):
    """argparse type factory: an integer in ``[low, high]`` (the message names the bounds)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}")
        return value

    return parse
