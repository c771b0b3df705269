"""Notebook 04's dashboard: every CF-CAM parameter and a preset to start from -> CF-CAM next to Grad-CAM."""

from __future__ import annotations

import html

import torch

from ...core.compose import gradcam_map
from ...core.config import FILTERS, NORMALIZATIONS, PRESETS, WEIGHTINGS, make_config
from ...core.pipeline import CFCAMResult
from .controls import LAYERS, class_control, dropdown, image_control, slider, target_class
from .drawing import heat_panel, input_panel
from .effects import min_samples_advice_for, sigma_advice
from .explorer import Explorer
from .session import Session, staged_pipeline

__all__ = ["dashboard"]


def dashboard(session: Session | None = None, **start) -> Explorer:
    """Every CF-CAM parameter, a preset to start from, image, layer and class -> CF-CAM next to Grad-CAM.

    ``start`` sets controls before the first drawing; ``preset=...`` there sets every parameter from it first.
    """
    session = session or Session()
    cache: dict = {}
    preset_name = start.get("preset", "readme")
    base = PRESETS[preset_name]
    controls = {
        "image": image_control(session), "layer": dropdown(list(LAYERS), "layer4[-1]", "layer"),
        "target": class_control(session), "preset": dropdown(list(PRESETS), preset_name, "preset"),
        "important_fraction": slider(base.important_fraction, 0.0, 0.9, 0.05, "important fraction"),
        "eps_percentile": slider(base.eps_percentile, 1.0, 99.0, 1.0, "eps percentile"),
        "min_samples_fraction": slider(base.min_samples_fraction, 0.0, 0.5, 0.01, "min_samples fraction"),
        "filter": dropdown(list(FILTERS), base.filter, "filter"),
        "spatial_sigma": slider(base.spatial_sigma, 0.25, 8.0, 0.25, "spatial sigma"),
        "range_sigma": slider(base.range_sigma, 0.01, 1.0, 0.01, "range sigma"),
        "weighting": dropdown(list(WEIGHTINGS), base.weighting, "weighting"),
        "normalize": dropdown(list(NORMALIZATIONS), base.normalize, "normalize"),
    }
    params = [k for k in controls if k not in ("image", "layer", "target", "preset")]
    explorer_ref: list[Explorer] = []

    def on_preset(change):
        if explorer_ref:
            preset = PRESETS[change["new"]]
            explorer_ref[0].set(**{k: getattr(preset, k) for k in params})

    def compute(v):
        target = target_class(v["target"])
        staged = staged_pipeline(session, cache, v["image"], v["layer"], target)
        config = make_config("readme", **{k: v[k] for k in params})
        r = staged.run(config)
        cap = session.capture(v["image"], v["layer"], target)
        grad = gradcam_map(cap.activations[0], cap.gradients[0])
        return {"cf": r, "grad": grad.numpy(), "target": int(cap.targets[0]),
                "p": torch.softmax(cap.logits[0].float(), 0).numpy(),
                "clustering": staged.last("cluster")}

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
        return [input_panel(session, i, f"{html.escape(session.names[i])}<br>p: {probs}"),
                heat_panel(session, i, s["grad"], f"Grad-CAM at {v['layer']}, class {name}"),
                heat_panel(session, i, r.cam, f"CF-CAM, {matches_preset(v)}, class {name}<br>{r.n_clusters} "
                           f"cluster{'' if r.n_clusters == 1 else 's'}, {r.n_noise} noise, "
                           f"{r.n_important} important{extra}", v["normalize"])]

    def advise(v, s):
        """min_samples where it cannot change the clusters; the sigmas where the filter cannot use them."""
        r: CFCAMResult = s["cf"]
        return {**min_samples_advice_for(s["clustering"], controls["min_samples_fraction"], r.config),
                **sigma_advice(v["filter"], r.cluster_mean_gradients, v["layer"])}

    explorer = Explorer(controls, compute, draw, "CF-CAM dashboard (white outline: the true lesion)",
                        passive=("preset",), start={k: v for k, v in start.items() if k != "preset"},
                        advise=advise)
    explorer_ref.append(explorer)
    controls["preset"].observe(on_preset, names="value")
    return explorer
