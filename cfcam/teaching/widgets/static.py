"""Explorers on a static page (the book, ``make book``): a still of the current pictures and where to run it live.

A web page without a kernel cannot move a slider, so when ``CFCAM_STATIC_WIDGETS=1`` an explorer displays, in
place of its widget, one PNG of its panels side by side (what the widget would show first), the panels' titles,
and a line saying where to run it live: the notebook on Binder (``CFCAM_BINDER_URL``, set per notebook by the
book build) or ``make lab``. Without the variable nothing here runs: notebooks show the live widget.
"""

from __future__ import annotations

import html
import io
import os
import re
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .drawing import PANEL_PX, to_png

if TYPE_CHECKING:
    from .explorer import Explorer

__all__ = ["enabled", "still", "still_note", "show_still"]

GAP = 8  # white pixels between two panels in the still


def enabled() -> bool:
    """True when the explorers should draw stills instead of live widgets (the book build sets this)."""
    return os.environ.get("CFCAM_STATIC_WIDGETS", "") not in ("", "0")


def still(explorer: Explorer) -> np.ndarray:
    """The explorer's pictures side by side on white, top-aligned, as one ``(H, W, 3)`` uint8 array.

    A panel that shows HTML instead of a picture (a chart) is left out of the picture; its title is in the note.
    """
    pictures = [_decode(p.image.value) for p in explorer.panels[:len(explorer.row.children)]
                if p.image.value and p.image.layout.display != "none"]
    if not pictures:
        return np.full((PANEL_PX, PANEL_PX, 3), 255, np.uint8)
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + GAP * (len(pictures) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for p in pictures:
        canvas[:p.shape[0], x:x + p.shape[1]] = p[..., :3]
        x += p.shape[1] + GAP
    return canvas


def _decode(png: bytes) -> np.ndarray:
    """A panel's PNG (what the widget shows) back to an RGB array."""
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


def _text(fragment: str) -> str:
    """An HTML title as plain text (a line break becomes '; ', or nothing after a comma)."""
    text = re.sub(r"\s*<br\s*/?>\s*", "; ", fragment)
    return html.unescape(re.sub(r"([,;:]);", r"\1", re.sub(r"<[^>]+>", "", text))).strip()


def still_note(explorer: Explorer, binder_url: str | None = None) -> str:
    """HTML: what the still shows (each panel's title, the settings) and where to run the explorer live."""
    shown = explorer.panels[:len(explorer.row.children)]
    titles = "".join(f"<li>{html.escape(_text(p.title.value))}"
                     f"{' (a chart, not in the still)' if p.image.layout.display == 'none' else ''}</li>"
                     for p in shown)
    settings = ", ".join(f"{html.escape(k)} = {html.escape(str(getattr(c, 'label', None) or c.value))}"
                         for k, c in explorer.controls.items())  # a dropdown by its label: the image's name
    where = (f"<a href='{html.escape(binder_url)}'>launch this notebook on Binder</a>"
             if binder_url else "launch this notebook on Binder (the link at the top of the page)")
    return (f"<div class='cfcam-still-note'><p><b>A still of the interactive explorer</b> at {settings}. "
            f"Its panels, left to right:</p><ol>{titles}</ol><p>To move its controls, run it live: {where}, "
            f"or on your computer with <code>make lab</code>.</p></div>")


def show_still(explorer: Explorer) -> None:
    """Display the still (PNG) and its note in place of the live widget."""
    from IPython.display import HTML, Image, display

    display(Image(data=to_png(still(explorer)), format="png"))
    display(HTML(still_note(explorer, os.environ.get("CFCAM_BINDER_URL") or None)))
