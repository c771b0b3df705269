"""Interactive explorers for the notebooks, built here (not pasted into cells) so tests can drive them.

A :class:`Session` holds the model, the images and a cache of captures: the forward/backward pass runs once
per (image, layer, class). :class:`~cfcam.core.pipeline.CFCAMPipeline` recomputes only the CF-CAM stages after the parameter that
changed. Each explorer redraws its panels in place when a control is released (``continuous_update=False``).

Drawing is built for speed and honesty rather than with matplotlib figures: every picture is an RGB array
composed with NumPy (a colour map lookup, nearest-neighbour enlargement of small maps, the lesion outline
painted in) and sent as a PNG shown at its native pixel size, so nothing is resampled by the browser; titles,
colour bars and legends are HTML text, sharp at any zoom. Signed maps (gradients) use a diverging colour map
with limits centred on zero and a colour bar, so that zero reads as zero. A move that leaves every picture as
it was says "map unchanged" instead of silently redrawing the same thing. The status line reports the whole
time the kernel spent on a move (computation and drawing); ``last_seconds`` is the computation alone and
``last_total_seconds`` the whole. Nothing here touches pyplot, so a notebook's plotting backend is left alone.
"""

from __future__ import annotations

import html
import io
import time
from typing import Callable, Sequence

import ipywidgets as W
import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

from ..core.capture import ActivationsAndGradients, Capture, eval_mode
from ..core.compose import gradcam_weights, normalize, upsample, weighted_relu_sum
from ..core.config import FILTERS, NORMALIZATIONS, PRESETS, WEIGHTINGS, make_config
from ..core.pipeline import CFCAMPipeline, CFCAMResult
from ..images.viz import overlay, preprocess, to_rgb_array

LAYERS = ("layer1", "layer2", "layer3", "layer4[-1]")


# --------------------------------------------------------------------------------------------------------
# data and caches
# --------------------------------------------------------------------------------------------------------
class Session:
    """The model, the images (with lesion masks where known) and a cache of captures.

    model: a classifier, or a name for :func:`cfcam.load_model` such as ``"demo-shortcut"`` (default: the demo
    model); images: a list of uint8 RGB/grayscale arrays (default: the built-in examples,
    :func:`cfcam.load_examples`).
    """

    def __init__(self, model=None, images=None, masks=None, names=None, class_names=None) -> None:
        if model is None or isinstance(model, str):
            from ..world.models import load_model

            model, info = load_model(model or "demo")
            class_names = class_names or info["classes"]
        self.model = model  # left as given: each capture switches to eval mode and back
        if images is None:
            images, masks, names = _default_images()
        self.images = [to_rgb_array(np.asarray(im)) for im in images]
        self.masks = list(masks) if masks is not None else [None] * len(self.images)
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(self.images))]
        self.class_names = list(class_names) if class_names else [f"class {i}" for i in range(self._n_outputs())]
        self._inputs: dict[int, torch.Tensor] = {}
        self._captures: dict[tuple, Capture] = {}

    def _n_outputs(self) -> int:
        """How many classes the model has (one forward pass in eval mode; the modes are restored)."""
        with eval_mode(self.model), torch.no_grad():
            return int(self.model(preprocess(np.zeros((8, 8, 3), np.uint8))).shape[1])

    def image(self, i: int) -> np.ndarray:
        return self.images[i]

    def mask(self, i: int):
        return self.masks[i]

    def input(self, i: int) -> torch.Tensor:
        if i not in self._inputs:
            self._inputs[i] = preprocess(self.images[i])
        return self._inputs[i]

    def capture(self, i: int, layer: str, target: int | None = None) -> Capture:
        """Activations and gradients of image ``i`` at ``layer`` for ``target`` (top class if None), cached."""
        key = (i, layer, target)
        if key not in self._captures:
            with ActivationsAndGradients(self.model, layer) as grab:
                cap = grab(self.input(i), targets=target)
            self._captures[key] = cap
            self._captures[(i, layer, int(cap.targets[0]))] = cap
        return self._captures[key]


def _default_images():
    """The built-in examples (the same pixels as ``testimgs/``, from any install or folder)."""
    from ..world.examples import load_examples

    examples = load_examples()
    return ([np.asarray(e.image) for e in examples], [e.mask if e.has_lesion else None for e in examples],
            [f"{e.name} ({e.class_name})" for e in examples])


# --------------------------------------------------------------------------------------------------------
# drawing: RGB arrays, PNG at native size, HTML titles and colour bars
# --------------------------------------------------------------------------------------------------------
PANEL_PX = 224  # every picture is drawn at this size (the input size of the demo model): no browser resampling


def _png(rgb: np.ndarray) -> bytes:
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


class Panel:
    """One picture (or an HTML chart) with a title above and a colour bar or caption below."""

    def __init__(self) -> None:
        self.title = W.HTML()
        self.image = W.Image(format="png")
        self.image.add_class("cfcam-panel-image")
        self.body = W.HTML(layout=W.Layout(display="none"))
        self.foot = W.HTML()
        self.widget = W.VBox([self.title, self.image, self.body, self.foot],
                             layout=W.Layout(width=f"{PANEL_PX + 16}px", margin="0 4px"))
        self._rgb: np.ndarray | None = None
        self._html: str | None = None

    def show(self, title: str, rgb: np.ndarray | None = None, foot: str = "", body: str | None = None) -> bool:
        """Show a picture (or ``body`` HTML); True when what is drawn changed."""
        self.title.value = (f"<div style='font-size:12px;line-height:1.3;width:{PANEL_PX}px;min-height:4em'>"
                            f"{title}</div>")  # same height in every panel, so the pictures line up
        self.foot.value = foot
        if body is not None:
            changed = body != self._html
            self._html = body
            self.body.value = body
            self.body.layout.display, self.image.layout.display = "", "none"
            return changed
        changed = self._rgb is None or self._rgb.shape != rgb.shape or not np.array_equal(self._rgb, rgb)
        if changed:
            self._rgb = rgb
            self.image.value = _png(rgb)
            self.image.width, self.image.height = str(rgb.shape[1]), str(rgb.shape[0])  # native size
        self.body.layout.display, self.image.layout.display = "none", ""
        return changed


# --------------------------------------------------------------------------------------------------------
# the explorer shell
# --------------------------------------------------------------------------------------------------------
class Explorer:
    """Controls above a row of panels redrawn in place.

    ``compute(values) -> state`` is the method's work (timed as ``last_seconds``); ``draw(values, state)``
    returns one ``dict(title=..., rgb=... or body=..., foot=...)`` per panel. The status line reports the whole
    time of the move, and says "map unchanged" when no picture changed. ``start`` sets controls before the
    first drawing, so an explorer can open in the state the text before it describes.
    """

    def __init__(self, controls: dict[str, W.Widget], compute: Callable[[dict], object],
                 draw: Callable[[dict, object], Sequence[dict]], title: str = "", passive: tuple = (),
                 start: dict | None = None) -> None:
        self.controls = controls
        self._compute, self._draw = compute, draw
        self.panels: list[Panel] = []
        self.row = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.status = W.HTML()
        self.status.add_class("cfcam-explorer-status")
        self.last_seconds = 0.0
        self.last_total_seconds = 0.0
        self.updates = 0
        self.unchanged = False
        self.state = None
        self._suspended = False
        unknown = set(start or ()) - set(controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; controls: {list(controls)}")
        for name, value in (start or {}).items():
            controls[name].value = value
        boxes = [W.HTML(f"<b>{title}</b>")] if title else []
        items = list(controls.values())
        rows = [W.HBox(items[i:i + 3]) for i in range(0, len(items), 3)]
        self.widget = W.VBox(boxes + rows + [self.row, self.status])
        self.widget.add_class("cfcam-explorer")  # stable hooks for the browser test
        for name, c in controls.items():
            if name not in passive:  # a passive control acts through its own observer (e.g. a preset)
                c.observe(self._changed, names="value")
        self.update()

    @property
    def image(self) -> W.Image:
        """The last panel's picture: the map the explorer is about (tests and the browser test watch it)."""
        return self.panels[-1].image

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def set(self, **values) -> None:
        """Set several controls at once with a single recomputation."""
        self._suspended = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._suspended = False
        self.update()

    def _changed(self, change) -> None:
        if not self._suspended:
            self.update()

    def update(self) -> None:
        with one_thread():
            self._update()

    def _update(self) -> None:
        start = time.perf_counter()
        self._suspended = True  # compute may adjust a control's range (channel, cluster): no second update
        try:
            values = self.values()
            try:
                state = self._compute(values)
            except ValueError as err:  # a combination the method refuses: say so, keep the old pictures
                self.status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
                return
            self.state = state
            self.last_seconds = time.perf_counter() - start
            specs = list(self._draw(values, state))
            while len(self.panels) < len(specs):
                self.panels.append(Panel())
            if len(self.row.children) != len(specs):
                self.row.children = [p.widget for p in self.panels[:len(specs)]]
            changed = [p.show(**spec) for p, spec in zip(self.panels, specs)]
        finally:
            self._suspended = False
        self.updates += 1
        self.unchanged = self.updates > 1 and not any(changed)
        self.last_total_seconds = time.perf_counter() - start
        notes = getattr(state, "notes", None) or getattr(
            state.get("cf") if isinstance(state, dict) else None, "notes", ())
        said = ("<b>map unchanged</b>: these settings give the same result as before. "
                if self.unchanged else "")
        self.status.value = (f"<span class='cfcam-update' data-n='{self.updates}'>{said}updated in "
                             f"{1000 * self.last_total_seconds:.0f} ms (computation "
                             f"{1000 * self.last_seconds:.0f} ms, drawing "
                             f"{1000 * (self.last_total_seconds - self.last_seconds):.0f} ms)</span>"
                             + "".join(f"<br><i>{html.escape(n)}</i>" for n in notes))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class one_thread:
    """Run PyTorch on one thread inside the block (restored after).

    A move's work is many small tensor operations; with two threads on a busy two-core machine each of them
    waits for the other thread to be scheduled, which measured 10 to 40 times slower (a dashboard slider move:
    about 14 ms on one thread, 250-550 ms on two, at a load average of 7).
    """

    def __enter__(self):
        self._threads = torch.get_num_threads()
        if self._threads != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        return False


def _slider(value, lo, hi, step, description, integer=False):
    cls = W.IntSlider if integer else W.FloatSlider
    return cls(value=value, min=lo, max=hi, step=step, description=description, continuous_update=False,
               style={"description_width": "initial"})


def _dropdown(options, value, description):
    return W.Dropdown(options=options, value=value, description=description,
                      style={"description_width": "initial"})


def _image_control(session: Session) -> W.Dropdown:
    """The images by name, starting on the first one with a known lesion (the most telling to begin with)."""
    first = next((i for i, m in enumerate(session.masks) if m is not None), 0)
    return _dropdown([(n, i) for i, n in enumerate(session.names)], first, "image")


def _class_control(session: Session, with_top=True) -> W.Dropdown:
    # -1 stands for "the top class" (a Dropdown shows a None value as an empty selection)
    options = ([("top class", -1)] if with_top else []) + [(n, i) for i, n in enumerate(session.class_names)]
    return _dropdown(options, options[0][1], "class")


def _target(value):
    return None if value is None or value < 0 else int(value)


def _input_panel(session: Session, i: int, title: str = "") -> dict:
    return {"title": title or html.escape(session.names[i]), "rgb": outline(session.image(i), session.mask(i)),
            "foot": "white outline: the true lesion" if session.mask(i) is not None else "no lesion mask"}


def _map_panel(m, title: str, cmap: str = "viridis", signed: bool = False, limits=None) -> dict:
    """A small map enlarged cell by cell; signed maps get centred limits; always a colour bar."""
    m = np.asarray(m, dtype=np.float64)
    vmin, vmax = limits if limits is not None else (signed_limits(m) if signed else (float(m.min()), float(m.max())))
    return {"title": title, "rgb": _enlarge(colour_map(m, cmap, vmin, vmax)), "foot": colour_bar(cmap, vmin, vmax)}


def _heat_panel(session: Session, i: int, cam, title: str, mode: str = "minmax") -> dict:
    """The map upsampled to the image, scaled to [0, 1], JET over the image, the lesion outlined."""
    cam = torch.as_tensor(np.asarray(cam))
    h, w = session.image(i).shape[:2]
    heat = normalize(upsample(cam, (h, w)), mode).numpy()
    zero = not bool((cam > 0).any())
    title = title + ("<br><span style='color:#b00'>the map is zero everywhere: nothing to show</span>"
                     if zero else "")
    return {"title": title, "rgb": outline(overlay(heat, session.image(i)), session.mask(i)), "foot": HEAT_BAR}


# --------------------------------------------------------------------------------------------------------
# notebook 01: hooks and Grad-CAM
# --------------------------------------------------------------------------------------------------------
def hooks_explorer(session: Session | None = None, **start) -> Explorer:
    """Layer, class and channel -> that channel's activation map, its gradient map, and Grad-CAM.

    ``start`` sets controls before the first drawing (``image``, ``layer``, ``target``, ``channel``).
    """
    session = session or Session()
    controls = {"image": _image_control(session), "layer": _dropdown(list(LAYERS), "layer4[-1]", "layer"),
                "target": _class_control(session), "channel": _slider(0, 0, 511, 1, "channel", integer=True)}

    def compute(v):
        cap = session.capture(v["image"], v["layer"], _target(v["target"]))
        a, g = cap.activations[0], cap.gradients[0]
        controls["channel"].max = a.shape[0] - 1
        k = min(v["channel"], a.shape[0] - 1)
        cam = weighted_relu_sum(a, gradcam_weights(g))
        return {"a": a[k].numpy(), "g": g[k].numpy(), "cam": cam.numpy(), "k": k,
                "target": int(cap.targets[0]), "shape": tuple(a.shape)}

    def draw(v, s):
        g = s["g"]
        spread = float(g.max() - g.min())
        if spread <= 1e-6 * max(float(np.abs(g).max()), 1e-30):
            kind = f"constant in space: {float(g.mean()):+.2e} everywhere"
        else:
            kind = f"varies in space: {float(g.min()):+.1e} .. {float(g.max()):+.1e}"
        a = s["a"]
        name = html.escape(session.class_names[s["target"]])
        return [_input_panel(session, v["image"]),
                _map_panel(a, f"activation A[{s['k']}], {a.shape[0]}x{a.shape[1]}", "viridis",
                           limits=(0.0, max(float(a.max()), 1e-30))),
                _map_panel(g, f"gradient G[{s['k']}] for {name}<br>{kind}", "coolwarm", signed=True),
                _heat_panel(session, v["image"], s["cam"], f"Grad-CAM at {v['layer']}, class {name}")]

    return Explorer(controls, compute, draw, "Hooks: what the layer saw, and how the class score depends on it",
                    start=start)


# --------------------------------------------------------------------------------------------------------
# notebook 02: clustering
# --------------------------------------------------------------------------------------------------------
def _staged(session: Session, cache: dict, i: int, layer: str, target) -> CFCAMPipeline:
    key = (i, layer, target)
    if key not in cache:
        cap = session.capture(i, layer, target)
        cache[key] = CFCAMPipeline(cap.activations[0], cap.gradients[0])
    return cache[key]


def _projection(activations: torch.Tensor) -> np.ndarray:
    """2-D PCA of the flattened channel maps (for display only)."""
    x = activations.reshape(activations.shape[0], -1).double()
    x = x - x.mean(0)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    return (u[:, :2] * s[:2]).numpy()


NOISE_RGB, IMPORTANT_RGB = (190, 190, 190), (0, 0, 0)


def _label_rgb(labels: np.ndarray) -> np.ndarray:
    """One uint8 colour per channel: tab10 by cluster id, grey for noise, black for important."""
    tab = (np.asarray(colormaps["tab10"].colors) * 255).astype(np.uint8)
    out = tab[np.maximum(labels, 0) % 10].copy()
    out[labels == -1] = NOISE_RGB
    out[labels == -2] = IMPORTANT_RGB
    return out


def _scatter(xy: np.ndarray, labels: np.ndarray, size: int = PANEL_PX) -> np.ndarray:
    """The channels as small discs at their PCA positions: noise first, then clusters, important on top."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    pix = np.round(6 + (xy - xy.min(0)) / span * (size - 13)).astype(int)
    order = np.argsort(np.where(labels == -1, 0, np.where(labels == -2, 2, 1)), kind="stable")
    pix, colours = pix[order], _label_rgb(labels)[order]
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            if dy * dy + dx * dx <= 5:
                canvas[size - 1 - pix[:, 1] + dy, pix[:, 0] + dx] = colours
    return canvas


def _sizes_chart(r: CFCAMResult, top: int = 8) -> str:
    """Cluster sizes, noise and important channels as HTML bars (the largest ``top`` clusters)."""
    sizes = np.asarray(r.cluster_sizes)
    order = np.argsort(-sizes, kind="stable")[:top]
    tab = (np.asarray(colormaps["tab10"].colors) * 255).astype(int)
    rows = [(f"cluster {j}", int(sizes[j]), "rgb({},{},{})".format(*tab[j % 10])) for j in order]
    if len(sizes) > top:
        rows.append((f"{len(sizes) - top} more", int(sizes[np.argsort(-sizes)[top:]].sum()), "#999"))
    rows += [("noise", r.n_noise, "rgb({},{},{})".format(*NOISE_RGB)),
             ("important", r.n_important, "rgb({},{},{})".format(*IMPORTANT_RGB))]
    total = max(len(r.labels), 1)
    lines = "".join(
        f"<div style='display:flex;align-items:center;font-size:11px;height:16px'>"
        f"<span style='width:74px'>{name}</span><span style='background:{c};height:10px;"
        f"width:{max(1, round(110 * n / total))}px'></span><span style='margin-left:4px'>{n}</span></div>"
        for name, n, c in rows)
    return f"<div style='width:{PANEL_PX}px'>{lines}</div>"


def clustering_explorer(session: Session | None = None, **start) -> Explorer:
    """The important-channel split, eps as a percentile and min_samples -> DBSCAN's clusters and noise.

    The map on the right is CF-CAM with these clustering settings and the ``readme`` preset's other steps.
    ``start`` sets controls before the first drawing (e.g. ``important_fraction=0.25``, the reference split).
    """
    session = session or Session()
    cache: dict = {}
    projections: dict = {}
    controls = {"image": _image_control(session), "layer": _dropdown(list(LAYERS), "layer4[-1]", "layer"),
                "important_fraction": _slider(0.0, 0.0, 0.9, 0.05, "important fraction"),
                "eps_percentile": _slider(25.0, 1.0, 99.0, 1.0, "eps percentile"),
                "min_samples_fraction": _slider(0.05, 0.0, 0.5, 0.01, "min_samples fraction")}

    def compute(v):
        staged = _staged(session, cache, v["image"], v["layer"], None)
        config = make_config("readme", important_fraction=v["important_fraction"],
                             eps_percentile=v["eps_percentile"], min_samples_fraction=v["min_samples_fraction"])
        return staged.run(config)

    def draw(v, r: CFCAMResult):
        key = (v["image"], v["layer"])
        if key not in projections:
            projections[key] = _projection(_staged(session, cache, v["image"], v["layer"], None).activations)
        legend = "colour: cluster id, grey: noise, black: important"
        return [_input_panel(session, v["image"]),
                {"title": f"the {len(r.labels)} channels in 2-D (PCA)", "rgb": _scatter(projections[key], r.labels),
                 "foot": f"<span style='font-size:11px'>{legend}</span>"},
                {"title": f"eps = {r.eps:.3g}, min_samples = {r.min_samples}<br>{r.n_clusters} cluster(s)",
                 "body": _sizes_chart(r)},
                _heat_panel(session, v["image"], r.cam,
                            "CF-CAM: these clustering settings,<br>other steps as the readme preset",
                            r.config.normalize)]

    return Explorer(controls, compute, draw, "DBSCAN over channels", start=start)


# --------------------------------------------------------------------------------------------------------
# notebook 03: filtering
# --------------------------------------------------------------------------------------------------------
def filtering_explorer(session: Session | None = None, **start) -> Explorer:
    """A cluster's mean gradient before and after the chosen filter, at the chosen layer.

    ``start`` sets controls before the first drawing (``layer``, ``filter``, the sigmas, ``cluster``...).
    """
    session = session or Session()
    cache: dict = {}
    controls = {"image": _image_control(session), "layer": _dropdown(list(LAYERS), "layer3", "layer"),
                "filter": _dropdown(list(FILTERS), "bilateral", "filter"),
                "spatial_sigma": _slider(1.0, 0.25, 8.0, 0.25, "spatial sigma"),
                "range_sigma": _slider(0.2, 0.01, 1.0, 0.01, "range sigma"),
                "cluster": _slider(0, 0, 10, 1, "cluster", integer=True)}

    def compute(v):
        staged = _staged(session, cache, v["image"], v["layer"], None)
        config = make_config("readme", filter=v["filter"], spatial_sigma=v["spatial_sigma"],
                             range_sigma=v["range_sigma"])
        r = staged.run(config)
        controls["cluster"].max = max(r.n_clusters - 1, 0)
        return r

    def draw(v, r: CFCAMResult):
        heat = _heat_panel(session, v["image"], r.cam, f"CF-CAM ({v['filter']} filter, readme preset otherwise)",
                           r.config.normalize)
        if not r.n_clusters:
            empty = {"title": "no cluster at these settings", "body": "<i>every channel is noise</i>"}
            return [empty, dict(empty, title=""), dict(empty, title=""), heat]
        j = min(v["cluster"], r.n_clusters - 1)
        m, f = np.asarray(r.cluster_mean_gradients[j]), np.asarray(r.filtered_gradients[j])
        limits = signed_limits(np.concatenate([m.ravel(), f.ravel()]))
        ratio = float(f.mean() / m.mean()) if abs(m.mean()) > 0 else float("nan")
        return [_map_panel(m, f"cluster {j} ({int(r.cluster_sizes[j])} channels): mean gradient M", "coolwarm",
                           limits=limits),
                _map_panel(f, f"after '{v['filter']}': F (same colour scale)", "coolwarm", limits=limits),
                _map_panel(f - m, f"F - M (own scale); mean(F)/mean(M) = {ratio:.3f}", "coolwarm", signed=True),
                heat]

    return Explorer(controls, compute, draw, "Filtering a cluster's mean gradient", start=start)


# --------------------------------------------------------------------------------------------------------
# notebook 04: the dashboard
# --------------------------------------------------------------------------------------------------------
def dashboard(session: Session | None = None, **start) -> Explorer:
    """Every CF-CAM parameter, a preset to start from, image, layer and class -> CF-CAM next to Grad-CAM.

    ``start`` sets controls before the first drawing; ``preset=...`` there sets every parameter from it first.
    """
    session = session or Session()
    cache: dict = {}
    preset_name = start.get("preset", "readme")
    base = PRESETS[preset_name]
    controls = {
        "image": _image_control(session), "layer": _dropdown(list(LAYERS), "layer4[-1]", "layer"),
        "target": _class_control(session), "preset": _dropdown(list(PRESETS), preset_name, "preset"),
        "important_fraction": _slider(base.important_fraction, 0.0, 0.9, 0.05, "important fraction"),
        "eps_percentile": _slider(base.eps_percentile, 1.0, 99.0, 1.0, "eps percentile"),
        "min_samples_fraction": _slider(base.min_samples_fraction, 0.0, 0.5, 0.01, "min_samples fraction"),
        "filter": _dropdown(list(FILTERS), base.filter, "filter"),
        "spatial_sigma": _slider(base.spatial_sigma, 0.25, 8.0, 0.25, "spatial sigma"),
        "range_sigma": _slider(base.range_sigma, 0.01, 1.0, 0.01, "range sigma"),
        "weighting": _dropdown(list(WEIGHTINGS), base.weighting, "weighting"),
        "normalize": _dropdown(list(NORMALIZATIONS), base.normalize, "normalize"),
    }
    params = [k for k in controls if k not in ("image", "layer", "target", "preset")]
    explorer_ref: list[Explorer] = []

    def on_preset(change):
        if explorer_ref:
            preset = PRESETS[change["new"]]
            explorer_ref[0].set(**{k: getattr(preset, k) for k in params})

    def compute(v):
        target = _target(v["target"])
        staged = _staged(session, cache, v["image"], v["layer"], target)
        config = make_config("readme", **{k: v[k] for k in params})
        r = staged.run(config)
        cap = session.capture(v["image"], v["layer"], target)
        grad = weighted_relu_sum(cap.activations[0], gradcam_weights(cap.gradients[0]))
        return {"cf": r, "grad": grad.numpy(), "target": int(cap.targets[0]),
                "p": torch.softmax(cap.logits[0].float(), 0).numpy()}

    def matches_preset(v) -> str:
        """The preset's name when every parameter still equals it, else 'custom settings'."""
        preset = PRESETS[v["preset"]]
        same = all(getattr(preset, k) == v[k] for k in params)
        return f"{v['preset']} preset" if same else f"custom settings (started from {v['preset']})"

    def draw(v, s):
        r: CFCAMResult = s["cf"]
        i = v["image"]
        name = html.escape(session.class_names[s["target"]])
        probs = ", ".join(f"{html.escape(n)} {p:.2f}" for n, p in zip(session.class_names, s["p"]))
        extra = f"<br>fallback used: {r.fallback}" if r.fallback else ""
        return [_input_panel(session, i, f"{html.escape(session.names[i])}<br>p: {probs}"),
                _heat_panel(session, i, s["grad"], f"Grad-CAM at {v['layer']}, class {name}"),
                _heat_panel(session, i, r.cam, f"CF-CAM, {matches_preset(v)}, class {name}<br>{r.n_clusters} "
                            f"cluster{'' if r.n_clusters == 1 else 's'}, {r.n_noise} noise, {r.n_important} important{extra}", v["normalize"])]

    explorer = Explorer(controls, compute, draw, "CF-CAM dashboard (white outline: the true lesion)",
                        passive=("preset",), start={k: v for k, v in start.items() if k != "preset"})
    explorer_ref.append(explorer)
    controls["preset"].observe(on_preset, names="value")
    return explorer
