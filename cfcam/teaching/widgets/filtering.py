"""Notebook 03's explorer: a cluster's mean gradient before and after the chosen filter."""

from __future__ import annotations

import numpy as np

from ...core.config import FILTERS, make_config
from ...core.pipeline import CFCAMResult
from .controls import LAYERS, dropdown, image_control, slider
from .drawing import heat_panel, map_panel, signed_limits
from .effects import cluster_advice, sigma_advice
from .explorer import Explorer
from .session import Session, staged_pipeline

__all__ = ["filtering_explorer"]


def filtering_explorer(session: Session | None = None, **start) -> Explorer:
    """A cluster's mean gradient before and after the chosen filter, at the chosen layer.

    ``start`` sets controls before the first drawing (``layer``, ``filter``, the sigmas, ``cluster``...).
    """
    session = session or Session()
    cache: dict = {}
    controls = {"image": image_control(session), "layer": dropdown(list(LAYERS), "layer3", "layer"),
                "filter": dropdown(list(FILTERS), "bilateral", "filter"),
                "spatial_sigma": slider(1.0, 0.25, 8.0, 0.25, "spatial sigma"),
                "range_sigma": slider(0.2, 0.01, 1.0, 0.01, "range sigma"),
                "cluster": slider(0, 0, 10, 1, "cluster", integer=True)}

    def compute(v):
        staged = staged_pipeline(session, cache, v["image"], v["layer"], None)
        config = make_config("readme", filter=v["filter"], spatial_sigma=v["spatial_sigma"],
                             range_sigma=v["range_sigma"])
        r = staged.run(config)
        controls["cluster"].max = max(r.n_clusters - 1, 0)
        return r

    def draw(v, r: CFCAMResult):
        heat = heat_panel(session, v["image"], r.cam, f"CF-CAM ({v['filter']} filter, readme preset otherwise)",
                           r.config.normalize)
        if not r.n_clusters:
            empty = {"title": "no cluster at these settings", "body": "<i>every channel is noise</i>"}
            return [empty, dict(empty, title=""), dict(empty, title=""), heat]
        j = min(v["cluster"], r.n_clusters - 1)
        m, f = np.asarray(r.cluster_mean_gradients[j]), np.asarray(r.filtered_gradients[j])
        limits = signed_limits(np.concatenate([m.ravel(), f.ravel()]))
        ratio = float(f.mean() / m.mean()) if abs(m.mean()) > 0 else float("nan")
        return [map_panel(m, f"cluster {j} ({int(r.cluster_sizes[j])} channels): mean gradient M", "coolwarm",
                           limits=limits),
                map_panel(f, f"after '{v['filter']}': F (same colour scale)", "coolwarm", limits=limits),
                map_panel(f - m, f"F - M (own scale); mean(F)/mean(M) = {ratio:.3f}", "coolwarm", signed=True),
                heat]

    def advise(v, r: CFCAMResult):
        """The cluster chooser needs two clusters; the sigmas need a filter that uses them and a map that varies."""
        return {**cluster_advice(r.n_clusters, v["layer"]),
                **sigma_advice(v["filter"], r.cluster_mean_gradients, v["layer"])}

    return Explorer(controls, compute, draw, "Filtering a cluster's mean gradient", start=start, advise=advise)
