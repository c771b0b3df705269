"""Interactive explorers for the notebooks, built here (not pasted into cells) so tests can drive them.

A :class:`Session` holds the model, the images and a cache of captures: the forward/backward pass runs once
per (image, layer, class). :class:`StagedCFCAM` recomputes only the CF-CAM stages after the parameter that
changed. Each explorer redraws one PNG image in place when a control is released
(``continuous_update=False``); figures are drawn with matplotlib's object API, never through pyplot, so the
notebook's own plotting backend is left alone and records the computation time (drawing excluded) in ``last_seconds``.
"""

from __future__ import annotations

import io
import time
from typing import Callable

import ipywidgets as W
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..core.capture import ActivationsAndGradients, Capture, eval_mode
from ..core.compose import gradcam_weights, normalize, upsample, weighted_relu_sum
from ..core.config import FILTERS, NORMALIZATIONS, PRESETS, WEIGHTINGS, CFCAMConfig, make_config
from ..core.pipeline import CFCAMResult, as_maps, assemble, cluster_stage, compose_stage, filter_stage
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


class StagedCFCAM:
    """CF-CAM for one captured image that recomputes only the stages after the parameter that changed.

    Clustering depends on the split, eps and min_samples parameters (the distance matrix only on which
    channels are clustered); filtering on the clusters and the filter parameters; composition on the
    filtered gradients and the weighting. Results are identical to :func:`cfcam.cluster_filter_cam`.
    """

    _CLUSTER = ("important_fraction", "eps_percentile", "eps_min", "min_samples_fraction", "min_samples_floor")
    _FILTER = ("filter", "spatial_sigma", "range_sigma")
    _COMPOSE = ("weighting", "fallback")

    def __init__(self, activations, gradients) -> None:
        self.a = as_maps(activations, "activations")
        self.g = as_maps(gradients, "gradients")
        self._distances: dict = {}
        self._stages: dict[str, tuple] = {}

    def _stage(self, name: str, key: tuple, make: Callable):
        cached = self._stages.get(name)
        if cached is None or cached[0] != key:
            self._stages[name] = (key, make())
        return self._stages[name][1]

    def run(self, config: CFCAMConfig) -> CFCAMResult:
        k1 = tuple(getattr(config, f) for f in self._CLUSTER)
        k2 = k1 + tuple(getattr(config, f) for f in self._FILTER)
        k3 = k2 + tuple(getattr(config, f) for f in self._COMPOSE)
        s1 = self._stage("cluster", k1, lambda: cluster_stage(self.a, config, self._distances))
        s2 = self._stage("filter", k2, lambda: filter_stage(self.g, s1.labels, config))
        s3 = self._stage("compose", k3, lambda: compose_stage(self.a, self.g, s1.labels,
                                                              s2.filtered_gradients, config))
        return assemble(self.a, s1, s2, s3, config)


# --------------------------------------------------------------------------------------------------------
# the explorer shell
# --------------------------------------------------------------------------------------------------------
class Explorer:
    """Controls above one image that is redrawn in place; ``compute`` is timed, ``draw`` is not."""

    def __init__(self, controls: dict[str, W.Widget], compute: Callable[[dict], object],
                 draw: Callable[[dict, object], Figure], title: str = "", passive: tuple = ()) -> None:
        self.controls = controls
        self._compute, self._draw = compute, draw
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.status = W.HTML()
        self.last_seconds = 0.0
        self.state = None
        self._suspended = False
        boxes = [W.HTML(f"<b>{title}</b>")] if title else []
        items = list(controls.values())
        rows = [W.HBox(items[i:i + 3]) for i in range(0, len(items), 3)]
        self.widget = W.VBox(boxes + rows + [self.image, self.status])
        self.widget.add_class("cfcam-explorer")  # stable hooks for the browser test
        self.image.add_class("cfcam-explorer-image")
        for name, c in controls.items():
            if name not in passive:  # a passive control acts through its own observer (e.g. a preset)
                c.observe(self._changed, names="value")
        self.update()

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
        values = self.values()
        start = time.perf_counter()
        try:
            self.state = self._compute(values)
        except ValueError as err:  # a parameter combination the method refuses: say so, keep the old image
            self.status.value = f"<span style='color:#b00'>{err}</span>"
            return
        self.last_seconds = time.perf_counter() - start
        fig = self._draw(values, self.state)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        self.image.value = buf.getvalue()
        notes = getattr(self.state, "notes", None) or getattr(
            self.state.get("cf") if isinstance(self.state, dict) else None, "notes", ())
        self.status.value = f"computed in {1000 * self.last_seconds:.0f} ms" + "".join(
            f"<br><i>{n}</i>" for n in notes)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


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


def _show(ax, img, title, cmap=None, **kw):
    ax.imshow(img, cmap=cmap, **kw)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _contour(ax, mask):
    if mask is not None:
        ax.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.0)


def _heat(session: Session, i: int, cam: np.ndarray, mode="minmax") -> np.ndarray:
    h, w = session.image(i).shape[:2]
    heat = normalize(upsample(torch.as_tensor(cam), (h, w)), mode).numpy()
    return overlay(heat, session.image(i))


# --------------------------------------------------------------------------------------------------------
# notebook 01: hooks and Grad-CAM
# --------------------------------------------------------------------------------------------------------
def hooks_explorer(session: Session | None = None) -> Explorer:
    """Layer, class and channel -> that channel's activation map, its gradient map, and Grad-CAM."""
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
        fig = Figure(figsize=(12, 3.2))
        axes = fig.subplots(1, 4)
        _show(axes[0], session.image(v["image"]), "input")
        _show(axes[1], s["a"], f"activation A[{s['k']}]  {s['shape'][1]}x{s['shape'][2]}", "viridis")
        g = s["g"]
        spread = float(g.max() - g.min())
        kind = "constant in space" if spread <= 1e-12 * max(abs(float(g.max())), 1e-30) else "varies in space"
        _show(axes[2], g, f"gradient G[{s['k']}] ({kind})", "coolwarm",
              vmin=-abs(g).max() - 1e-30, vmax=abs(g).max() + 1e-30)
        _show(axes[3], _heat(session, v["image"], s["cam"]),
              f"Grad-CAM, class {session.class_names[s['target']]}")
        _contour(axes[3], session.mask(v["image"]))
        return fig

    return Explorer(controls, compute, draw, "Hooks: what the layer saw, and how the class score depends on it")


# --------------------------------------------------------------------------------------------------------
# notebook 02: clustering
# --------------------------------------------------------------------------------------------------------
def _staged(session: Session, cache: dict, i: int, layer: str, target) -> StagedCFCAM:
    key = (i, layer, target)
    if key not in cache:
        cap = session.capture(i, layer, target)
        cache[key] = StagedCFCAM(cap.activations[0], cap.gradients[0])
    return cache[key]


def _projection(activations: torch.Tensor) -> np.ndarray:
    """2-D PCA of the flattened channel maps (for display only)."""
    x = activations.reshape(activations.shape[0], -1).double()
    x = x - x.mean(0)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    return (u[:, :2] * s[:2]).numpy()


def _label_colours(labels: np.ndarray) -> np.ndarray:
    cmap = colormaps.get_cmap("tab10")
    colours = np.array([cmap(int(k) % 10) if k >= 0 else ((0.75, 0.75, 0.75, 1) if k == -1 else (0, 0, 0, 1))
                        for k in labels])
    return colours


def clustering_explorer(session: Session | None = None) -> Explorer:
    """The important-channel split, eps as a percentile and min_samples -> DBSCAN's clusters and noise."""
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
            projections[key] = _projection(_staged(session, cache, v["image"], v["layer"], None).a)
        xy = projections[key]
        fig = Figure(figsize=(12, 3.4))
        axes = fig.subplots(1, 3)
        axes[0].scatter(xy[:, 0], xy[:, 1], c=_label_colours(r.labels), s=8)
        axes[0].set_title("channels (PCA): colour = cluster, grey = noise, black = important", fontsize=8)
        axes[0].set_xticks([]), axes[0].set_yticks([])
        sizes = list(r.cluster_sizes)
        axes[1].bar(range(len(sizes)), sizes, color=[colormaps.get_cmap("tab10")(k % 10) for k in range(len(sizes))])
        axes[1].bar([len(sizes)], [r.n_noise], color="0.75")
        axes[1].bar([len(sizes) + 1], [r.n_important], color="black")
        axes[1].set_xticks(range(len(sizes) + 2), [str(k) for k in range(len(sizes))] + ["noise", "imp."],
                           fontsize=7)
        axes[1].set_title(f"eps = {r.eps:.3g}, min_samples = {r.min_samples}: {r.n_clusters} clusters",
                          fontsize=9)
        _show(axes[2], _heat(session, v["image"], r.cam, r.config.normalize), "CF-CAM (readme preset)")
        _contour(axes[2], session.mask(v["image"]))
        return fig

    return Explorer(controls, compute, draw, "DBSCAN over channels")


# --------------------------------------------------------------------------------------------------------
# notebook 03: filtering
# --------------------------------------------------------------------------------------------------------
def filtering_explorer(session: Session | None = None) -> Explorer:
    """A cluster's mean gradient before and after the chosen filter, at the chosen layer."""
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
        fig = Figure(figsize=(12, 3.2))
        axes = fig.subplots(1, 4)
        if r.n_clusters:
            j = min(v["cluster"], r.n_clusters - 1)
            m, f = r.cluster_mean_gradients[j], r.filtered_gradients[j]
            lim = max(abs(m).max(), abs(f).max(), 1e-30)
            _show(axes[0], m, f"cluster {j}: mean gradient", "coolwarm", vmin=-lim, vmax=lim)
            _show(axes[1], f, f"after '{v['filter']}'", "coolwarm", vmin=-lim, vmax=lim)
            ratio = float(f.mean() / m.mean()) if abs(m.mean()) > 0 else float("nan")
            _show(axes[2], f - m, f"difference (mean ratio {ratio:.2f})", "coolwarm")
        else:
            for ax in axes[:3]:
                ax.axis("off")
            axes[0].set_title("no cluster at these settings", fontsize=9)
        _show(axes[3], _heat(session, v["image"], r.cam, r.config.normalize), "CF-CAM")
        _contour(axes[3], session.mask(v["image"]))
        return fig

    return Explorer(controls, compute, draw, "Filtering a cluster's mean gradient")


# --------------------------------------------------------------------------------------------------------
# notebook 04: the dashboard
# --------------------------------------------------------------------------------------------------------
def dashboard(session: Session | None = None) -> Explorer:
    """Every CF-CAM parameter, a preset to start from, image, layer and class -> CF-CAM next to Grad-CAM."""
    session = session or Session()
    cache: dict = {}
    base = PRESETS["readme"]
    controls = {
        "image": _image_control(session), "layer": _dropdown(list(LAYERS), "layer4[-1]", "layer"),
        "target": _class_control(session), "preset": _dropdown(list(PRESETS), "readme", "preset"),
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

    def draw(v, s):
        r: CFCAMResult = s["cf"]
        fig = Figure(figsize=(12, 4))
        axes = fig.subplots(1, 3)
        i = v["image"]
        probs = ", ".join(f"{n} {p:.2f}" for n, p in zip(session.class_names, s["p"]))
        _show(axes[0], session.image(i), f"input ({probs})")
        _contour(axes[0], session.mask(i))
        _show(axes[1], _heat(session, i, s["grad"]), f"Grad-CAM, class {session.class_names[s['target']]}")
        _contour(axes[1], session.mask(i))
        extra = f", fallback: {r.fallback}" if r.fallback else ""
        _show(axes[2], _heat(session, i, r.cam, v["normalize"]),
              f"CF-CAM: {r.n_clusters} clusters, {r.n_noise} noise, {r.n_important} important{extra}")
        _contour(axes[2], session.mask(i))
        return fig

    explorer = Explorer(controls, compute, draw, "CF-CAM dashboard (white outline: the true lesion)",
                        passive=("preset",))
    explorer_ref.append(explorer)
    controls["preset"].observe(on_preset, names="value")
    return explorer
