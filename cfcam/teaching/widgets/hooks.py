"""Notebook 01's explorer: a channel's activation and gradient maps, and Grad-CAM, by layer and class."""

from __future__ import annotations

import html

import numpy as np

from ...core.compose import gradcam_map
from .controls import LAYERS, class_control, dropdown, image_control, slider, target_class
from .drawing import heat_panel, input_panel, map_panel
from .explorer import Explorer
from .session import Session

__all__ = ["hooks_explorer"]


def hooks_explorer(session: Session | None = None, **start) -> Explorer:
    """Layer, class and channel -> that channel's activation map, its gradient map, and Grad-CAM.

    ``start`` sets controls before the first drawing (``image``, ``layer``, ``target``, ``channel``).
    """
    session = session or Session()
    controls = {"image": image_control(session), "layer": dropdown(list(LAYERS), "layer4[-1]", "layer"),
                "target": class_control(session), "channel": slider(0, 0, 511, 1, "channel", integer=True)}
    # The channel the learner chose last: a layer with fewer channels shows its last one (and says so), and a
    # layer with enough channels shows the chosen one again, so the channel the text points at is never lost.
    chosen = {"channel": controls["channel"].value, "adjusting": False}

    def on_channel(change):
        if not chosen["adjusting"]:
            chosen["channel"] = int(change["new"])

    controls["channel"].observe(on_channel, names="value")

    def compute(v):
        cap = session.capture(v["image"], v["layer"], target_class(v["target"]))
        a, g = cap.activations[0], cap.gradients[0]
        n = a.shape[0]
        k = min(chosen["channel"], n - 1)
        chosen["adjusting"] = True
        try:
            if n - 1 > controls["channel"].max:  # raise the limit before the value, lower it after
                controls["channel"].max = n - 1
                controls["channel"].value = k
            else:
                controls["channel"].value = k
                controls["channel"].max = n - 1
        finally:
            chosen["adjusting"] = False
        notes = [] if k == chosen["channel"] else [
            f"channel {chosen['channel']} does not exist at {v['layer']} ({n} channels, 0 to {n - 1}): showing "
            f"channel {k}; a layer with more channels shows channel {chosen['channel']} again"]
        cam = gradcam_map(a, g)
        return {"a": a[k].numpy(), "g": g[k].numpy(), "cam": cam.numpy(), "k": k,
                "target": int(cap.targets[0]), "shape": tuple(a.shape), "notes": tuple(notes)}

    def draw(v, s):
        g = s["g"]
        spread = float(g.max() - g.min())
        if spread <= 1e-6 * max(float(np.abs(g).max()), 1e-30):
            kind = f"constant in space: {float(g.mean()):+.2e} everywhere"
        else:
            kind = f"varies in space: {float(g.min()):+.1e} .. {float(g.max()):+.1e}"
        a = s["a"]
        name = html.escape(session.class_names[s["target"]])
        return [input_panel(session, v["image"]),
                map_panel(a, f"activation A[{s['k']}], {a.shape[0]}x{a.shape[1]}", "viridis",
                           limits=(0.0, max(float(a.max()), 1e-30))),
                map_panel(g, f"gradient G[{s['k']}] for {name}<br>{kind}", "coolwarm", signed=True),
                heat_panel(session, v["image"], s["cam"], f"Grad-CAM at {v['layer']}, class {name}")]

    return Explorer(controls, compute, draw, "Hooks: what the layer saw, and how the class score depends on it",
                    start=start)
