"""Old path of :mod:`cfcam.world.models` (moved); importing it warns once and gives that module."""

from ._moved import replace_with

replace_with(__name__, "cfcam.world.models")
