"""Old path of :mod:`cfcam.evaluation.metrics` (moved); importing it warns once and gives that module."""

from ._moved import replace_with

replace_with(__name__, "cfcam.evaluation.metrics")
