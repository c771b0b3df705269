"""Notebook 02's explorer: the important split, eps and min_samples -> DBSCAN's clusters, noise and the map."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

from ...core.config import make_config
from ...core.pipeline import CFCAMResult
from .controls import LAYERS, dropdown, image_control, slider
from .drawing import PANEL_PX, heat_panel, input_panel
from .effects import min_samples_advice_for
from .explorer import Explorer
from .session import Session, staged_pipeline

__all__ = ["IMPORTANT_RGB", "NOISE_RGB", "clustering_explorer"]


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
    controls = {"image": image_control(session), "layer": dropdown(list(LAYERS), "layer4[-1]", "layer"),
                "important_fraction": slider(0.0, 0.0, 0.9, 0.05, "important fraction"),
                "eps_percentile": slider(25.0, 1.0, 99.0, 1.0, "eps percentile"),
                "min_samples_fraction": slider(0.05, 0.0, 0.5, 0.01, "min_samples fraction")}

    def compute(v):
        staged = staged_pipeline(session, cache, v["image"], v["layer"], None)
        config = make_config("readme", important_fraction=v["important_fraction"],
                             eps_percentile=v["eps_percentile"], min_samples_fraction=v["min_samples_fraction"])
        return staged.run(config)

    def draw(v, r: CFCAMResult):
        key = (v["image"], v["layer"])
        if key not in projections:
            projections[key] = _projection(staged_pipeline(session, cache, v["image"], v["layer"], None).activations)
        legend = "colour: cluster id, grey: noise, black: important"
        return [input_panel(session, v["image"]),
                {"title": f"the {len(r.labels)} channels in 2-D (PCA)", "rgb": _scatter(projections[key], r.labels),
                 "foot": f"<span style='font-size:11px'>{legend}</span>"},
                {"title": f"eps = {r.eps:.3g}, min_samples = {r.min_samples}<br>{r.n_clusters} cluster(s)",
                 "body": _sizes_chart(r)},
                heat_panel(session, v["image"], r.cam,
                            "CF-CAM: these clustering settings,<br>other steps as the readme preset",
                            r.config.normalize)]

    def advise(v, r: CFCAMResult):
        """Where min_samples stops changing the clusters (or cannot change them at all)."""
        stage = staged_pipeline(session, cache, v["image"], v["layer"], None).last("cluster")
        return min_samples_advice_for(stage, controls["min_samples_fraction"], r.config)

    return Explorer(controls, compute, draw, "DBSCAN over channels", start=start, advise=advise)
