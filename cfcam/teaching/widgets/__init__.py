"""Interactive explorers for the notebooks, built here (not pasted into cells) so tests can drive them.

A :class:`Session` holds the model, the images and a cache of captures: the forward/backward pass runs once
per (image, layer, class). :class:`~cfcam.core.pipeline.CFCAMPipeline` recomputes only the CF-CAM stages after
the parameter that changed. Each explorer redraws its panels in place when a control is released
(``continuous_update=False``).

Drawing is built for speed and honesty rather than with matplotlib figures: every picture is an RGB array
composed with NumPy (a colour map lookup, nearest-neighbour enlargement of small maps, the lesion outline
painted in) and sent as a PNG shown at its native pixel size, so nothing is resampled by the browser; titles,
colour bars and legends are HTML text, sharp at any zoom. Signed maps (gradients) use a diverging colour map
with limits centred on zero and a colour bar, so that zero reads as zero. A move that leaves every picture as
it was says "map unchanged" instead of silently redrawing the same thing. The status line reports the whole
time the kernel spent on a move (computation and drawing); ``last_seconds`` is the computation alone and
``last_total_seconds`` the whole. Nothing here touches pyplot, so a notebook's plotting backend is left alone.

One module per job: :mod:`.session` (the session and its caches), :mod:`.drawing` (pictures, colour bars and
panels), :mod:`.controls`, :mod:`.explorer` (the shell every explorer uses), then one module per explorer:
:mod:`.hooks` (notebook 01), :mod:`.clustering` (02), :mod:`.filtering` (03), :mod:`.dashboard` (04).
"""

from __future__ import annotations

from .clustering import IMPORTANT_RGB, NOISE_RGB, clustering_explorer
from .controls import LAYERS
from .dashboard import dashboard
from .drawing import HEAT_BAR, PANEL_PX, colour_bar, colour_map, outline, signed_limits
from .explorer import Explorer, Panel, one_thread
from .filtering import filtering_explorer
from .hooks import hooks_explorer
from .session import ActivationsAndGradients, Session

__all__ = ["HEAT_BAR", "IMPORTANT_RGB", "LAYERS", "NOISE_RGB", "PANEL_PX", "ActivationsAndGradients", "Explorer",
           "Panel", "Session", "clustering_explorer", "colour_bar", "colour_map", "dashboard", "filtering_explorer",
           "hooks_explorer", "one_thread", "outline", "signed_limits"]
