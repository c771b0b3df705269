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

__all__ = ["Advice", "cluster_advice", "constant_in_space", "min_samples_advice", "sigma_advice"]


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
        text = f"one cluster holds every clustered channel of this image at {layer}: another image or layer has several"
    else:
        text = "no cluster at these settings: every channel is noise"
    return {"cluster": Advice(text)}


def _same_core_range(n_neighbors: np.ndarray, min_samples: int) -> tuple[int, int]:
    """The ``min_samples`` values ``[lo, hi]`` that make the same channels core points as ``min_samples`` (a
    core point has at least ``min_samples`` neighbours within eps, itself included); DBSCAN's clusters depend
    only on which points are core, so every value in the range gives the same clusters."""
    counts = np.asarray(n_neighbors)
    below, above = counts[counts < min_samples], counts[counts >= min_samples]
    lo = int(below.max()) + 1 if below.size else 1
    hi = int(above.min()) if above.size else np.iinfo(np.int64).max
    return lo, hi


def min_samples_advice(n_neighbors, n_clustered: int, min_samples: int, slider, floor: int = 2) -> dict[str, Advice]:
    """Where the ``min_samples_fraction`` ``slider`` stops changing the clusters: disabled when no position of
    the slider changes them, else a hint naming the range of fractions that keeps these clusters."""
    counts = np.asarray(n_neighbors)
    if counts.size == 0:
        return {"min_samples_fraction": Advice("no effect: every channel is important, none is clustered")}
    lo, hi = _same_core_range(counts, min_samples)
    steps = int(round((slider.max - slider.min) / slider.step))
    positions = np.round(slider.min + slider.step * np.arange(steps + 1), 10)
    same = [lo <= cl.min_samples_for(n_clustered, f, floor) <= hi for f in positions]
    if all(same):
        return {"min_samples_fraction": Advice(
            f"no effect: every position gives the same clusters (each channel has {int(counts.min())} to "
            f"{int(counts.max())} neighbours within eps)")}
    inside = positions[np.asarray(same)]
    if inside.size <= 1:
        return {}
    return {"min_samples_fraction": Advice(
        f"same clusters for fractions {inside.min():.2f} to {inside.max():.2f} (min_samples {lo} to "
        f"{min(hi, n_clustered)})", disable=False)}
