"""Old path of :mod:`cfcam.teaching.checks` (moved); importing it warns once and gives that module."""

from ._moved import replace_with

replace_with(__name__, "cfcam.teaching.checks")
