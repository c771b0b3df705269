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

    def compute(v):
        cap = session.capture(v["image"], v["layer"], target_class(v["target"]))
        a, g = cap.activations[0], cap.gradients[0]
        controls["channel"].max = a.shape[0] - 1
        k = min(v["channel"], a.shape[0] - 1)
        cam = gradcam_map(a, g)
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
        return [input_panel(session, v["image"]),
                map_panel(a, f"activation A[{s['k']}], {a.shape[0]}x{a.shape[1]}", "viridis",
                           limits=(0.0, max(float(a.max()), 1e-30))),
                map_panel(g, f"gradient G[{s['k']}] for {name}<br>{kind}", "coolwarm", signed=True),
                heat_panel(session, v["image"], s["cam"], f"Grad-CAM at {v['layer']}, class {name}")]

    return Explorer(controls, compute, draw, "Hooks: what the layer saw, and how the class score depends on it",
                    start=start)
