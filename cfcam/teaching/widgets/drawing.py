"""Pictures as RGB arrays and HTML: colour maps with fixed limits, the lesion outline, colour bars, PNG bytes,
and the three kinds of panel the explorers show (the input, a small map enlarged cell by cell, a heat map over
the image). Nothing here touches pyplot."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ...core.compose import to_heatmaps
from ...images.viz import overlay

if TYPE_CHECKING:
    from .session import Session

__all__ = ["HEAT_BAR", "PANEL_PX", "colour_bar", "colour_map", "heat_panel", "input_panel", "map_panel", "outline",
           "signed_limits", "to_png"]


PANEL_PX = 224  # every picture is drawn at this size (the input size of the demo model): no browser resampling


def to_png(rgb: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 array as PNG bytes (fast compression: these pictures live for one move)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _enlarge(rgb: np.ndarray, size: int = PANEL_PX) -> np.ndarray:
    """Nearest-neighbour enlargement of a small picture to about ``size`` pixels: every map cell stays a crisp
    square (an integer factor when it fits)."""
    h, w = rgb.shape[:2]
    factor = max(1, size // max(h, w))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def signed_limits(values: np.ndarray) -> tuple[float, float]:
    """Colour limits centred on zero, ``(-L, L)`` with ``L = max |value|``, so zero is the middle colour."""
    lim = float(np.abs(np.asarray(values, dtype=np.float64)).max()) if np.size(values) else 0.0
    lim = lim if lim > 0 else 1e-30
    return -lim, lim


def colour_map(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """A 2-D map through a matplotlib colour map with fixed limits, as ``(h, w, 3)`` uint8 RGB."""
    v = np.asarray(values, dtype=np.float64)
    span = vmax - vmin
    scaled = (v - vmin) / span if span > 0 else np.full_like(v, 0.5)
    return colormaps[cmap](np.clip(scaled, 0.0, 1.0), bytes=True)[..., :3]


def outline(rgb: np.ndarray, mask) -> np.ndarray:
    """``rgb`` with the boundary pixels of ``mask`` painted white (the true lesion's outline)."""
    if mask is None or not np.any(mask):
        return rgb
    m = np.asarray(mask, dtype=bool)
    if m.shape != rgb.shape[:2]:
        return rgb
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    out = rgb.copy()
    out[m & ~inner] = 255
    return out


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}" if 1e-2 <= abs(x) < 1e3 else f"{x:.1e}"


def colour_bar(cmap: str, vmin: float, vmax: float, label: str = "", width: int = PANEL_PX) -> str:
    """An HTML colour bar (CSS gradient of the colour map) with its limits and middle value as text."""
    stops = ", ".join(f"rgb({r},{g},{b}) {100 * t:.0f}%" for t, (r, g, b) in
                      zip(np.linspace(0, 1, 11), colormaps[cmap](np.linspace(0, 1, 11), bytes=True)[:, :3]))
    mid = 0.0 if vmin == -vmax else (vmin + vmax) / 2
    return (f"<div class='cfcam-colourbar' style='width:{width}px;font-size:11px;line-height:1.2'>"
            f"<div style='height:9px;background:linear-gradient(to right, {stops})'></div>"
            f"<div style='display:flex;justify-content:space-between'><span>{_fmt(vmin)}</span>"
            f"<span>{html.escape(label)} {_fmt(mid)}</span><span>{_fmt(vmax)}</span></div></div>")


HEAT_BAR = colour_bar("jet", 0.0, 1.0, "normalised map")


def input_panel(session: Session, i: int, title: str = "") -> dict:
    """Image ``i`` as it is, its lesion outlined, titled with its name unless ``title`` is given."""
    return {"title": title or html.escape(session.names[i]), "rgb": outline(session.image(i), session.mask(i)),
            "foot": "white outline: the true lesion" if session.mask(i) is not None else "no lesion mask"}


def map_panel(m, title: str, cmap: str = "viridis", signed: bool = False, limits=None) -> dict:
    """A small map enlarged cell by cell; signed maps get centred limits; always a colour bar."""
    m = np.asarray(m, dtype=np.float64)
    vmin, vmax = limits if limits is not None else (signed_limits(m) if signed else (float(m.min()), float(m.max())))
    return {"title": title, "rgb": _enlarge(colour_map(m, cmap, vmin, vmax)), "foot": colour_bar(cmap, vmin, vmax)}


def heat_panel(session: Session, i: int, cam, title: str, mode: str = "minmax") -> dict:
    """The map upsampled to the image and scaled to [0, 1] (:func:`cfcam.core.compose.to_heatmaps`, the
    methods' own post-processing), JET over the image, the lesion outlined."""
    cam = np.asarray(cam)
    heat = to_heatmaps(cam, session.image(i).shape[:2], mode)
    zero = not bool((cam > 0).any())
    title = title + ("<br><span style='color:#b00'>the map is zero everywhere: nothing to show</span>"
                     if zero else "")
    return {"title": title, "rgb": outline(overlay(heat, session.image(i)), session.mask(i)), "foot": HEAT_BAR}
