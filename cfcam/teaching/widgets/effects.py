"""Which controls can change the picture in an explorer's current state, and why not when one cannot.

A slider that moves nothing teaches nothing, or worse, that the parameter does not matter. Each rule here is
exact, not a guess from trying values: a control that cannot have an effect in the current state gets an
:class:`Advice` with ``disable=True`` and a one-line reason (the explorer disables it and shows the reason next
to it, and enables it again when the state changes); a hint (``disable=False``) says where a control starts to act.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import clustering as cl

__all__ = ["Advice", "cluster_advice", "constant_in_space", "min_samples_advice", "min_samples_advice_for",
           "sigma_advice"]


@dataclass(frozen=True)
class Advice:
    """What an explorer shows next to a control: ``text``; ``disable``: the control cannot act now."""

    text: str
    disable: bool = True


def constant_in_space(maps) -> bool:
    """True when every ``(h, w)`` map of ``maps`` ``(K, h, w)`` is constant (to 1e-6 of its largest value), as
    every gradient is at ``layer4[-1]`` of a ResNet (global average pooling follows it)."""
    m = np.asarray(maps, dtype=np.float64)
    if m.size == 0:
        return False
    flat = m.reshape(m.shape[0], -1)
    spread = flat.max(axis=1) - flat.min(axis=1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1e-30)
    return bool((spread <= 1e-6 * scale).all())


def sigma_advice(filter_name: str, mean_gradients, layer: str) -> dict[str, Advice]:
    """Why ``spatial_sigma`` and ``range_sigma`` cannot change the map with ``filter_name`` on these cluster
    mean gradients ``(K, h, w)``, if they cannot (see :mod:`cfcam.core.filtering`)."""
    out: dict[str, Advice] = {}
    if filter_name == "none":
        reason = Advice("no effect: the filter is 'none' (pick another filter)")
        return {"spatial_sigma": reason, "range_sigma": reason}
    if filter_name == "gaussian":
        out["range_sigma"] = Advice("no effect: the Gaussian filter has no range term (pick bilateral)")
    if np.asarray(mean_gradients).shape[0] == 0:
        reason = Advice("no effect: no cluster to filter at these settings")
        return {"spatial_sigma": reason, "range_sigma": reason}
    if constant_in_space(mean_gradients):
        if filter_name in ("bilateral", "gaussian"):
            out["spatial_sigma"] = Advice(f"no effect: the gradient is constant in space at {layer}, and this "
                                          "filter keeps a constant map as it is (try layer3)")
        out.setdefault("range_sigma", Advice(f"no effect: the gradient is constant in space at {layer}, so the "
                                             "range term compares equal values (try layer3)"))
    return out


def cluster_advice(n_clusters: int, layer: str) -> dict[str, Advice]:
    """Why a cluster chooser cannot move: fewer than two clusters."""
    if n_clusters >= 2:
        return {}
    if n_clusters == 1:
        text = f"one cluster holds every clustered channel of this image at {layer}: try other images"
    else:
        text = "no cluster at these settings: every channel is noise"
    return {"cluster": Advice(text)}


def min_samples_advice(labels, labels_for, n_clustered: int, slider, floor: int = 2) -> dict[str, Advice]:
    """Where the ``min_samples_fraction`` ``slider`` changes DBSCAN's clusters, found exactly: ``labels_for(m)``
    (DBSCAN at the same eps with ``min_samples = m``, on distances already computed: a few ms) for each
    ``min_samples`` the slider can give, compared with the current ``labels``. Disabled when no position
    changes them; a hint naming the fractions next to the current one that keep them, when there are some."""
    if n_clustered == 0:
        return {"min_samples_fraction": Advice("no effect: every channel is important, none is clustered")}
    steps = int(round((slider.max - slider.min) / slider.step))
    positions = np.round(slider.min + slider.step * np.arange(steps + 1), 10)
    m = [cl.min_samples_for(n_clustered, f, floor) for f in positions]
    same_for = {k: bool(np.array_equal(labels_for(k), labels)) for k in sorted(set(m))}
    same = np.array([same_for[k] for k in m])
    if same.all():
        return {"min_samples_fraction": Advice("no effect: every position of this slider gives the same clusters")}
    here = int(np.argmin(np.abs(positions - slider.value)))
    if not same[here]:
        return {}
    lo = hi = here
    while lo > 0 and same[lo - 1]:
        lo -= 1
    while hi < len(same) - 1 and same[hi + 1]:
        hi += 1
    if lo == hi:
        return {}
    return {"min_samples_fraction": Advice(
        f"same clusters for fractions {positions[lo]:.2f} to {positions[hi]:.2f} (min_samples {m[lo]} to "
        f"{m[hi]})", disable=False)}


def min_samples_advice_for(stage, slider, config) -> dict[str, Advice]:
    """:func:`min_samples_advice` for a pipeline's cluster stage (:meth:`CFCAMPipeline.last`) and its config."""
    return min_samples_advice(stage.dbscan.labels, lambda m: stage.distances.dbscan(stage.eps, m).labels,
                              len(stage.clustered), slider, config.min_samples_floor)
