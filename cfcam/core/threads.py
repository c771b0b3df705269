"""Old path of :mod:`cfcam.core.engine.threads` (moved into the fast engine); importing it warns once and gives
that module."""

from .._moved import replace_with

replace_with(__name__, "cfcam.core.engine.threads")
