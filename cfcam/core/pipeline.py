"""The pure CF-CAM core: one image's activations and gradients ``(C, h, w)`` plus a config -> a result.

No hooks, no model, no hidden state. The pipeline is split into stages (clustering, filtering, composition),
each a plain function of the previous stages' outputs; :class:`CFCAMPipeline` is the one orchestrator that
runs them, recomputing only the stages after the parameter that changed (the widgets rely on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from . import clustering as cl
from .compose import cfcam_weights, coefficients, gradcam_weights, kept_channels, weighted_relu_sum
from .config import STAGES, CFCAMConfig, make_config, stage_fields
from .engine import channel_distances, single_threaded
from .filtering import filter_maps


def as_maps(x, name: str) -> torch.Tensor:
    """``x`` (tensor or array) as a finite float64 CPU tensor ``(C, h, w)``; ``ValueError`` naming ``name``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor or numpy array of shape (C, h, w), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{name} must have shape (C, h, w) (one image), got shape {tuple(x.shape)}")
    if min(x.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.detach().cpu()
    low, high = (float(v) for v in torch.aminmax(x))  # NaN when any value is NaN, +-inf when any is infinite
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); CF-CAM needs finite inputs")
    # Channel distances are float32 (as in the published code): the squared difference of two channels must
    # stay under float32's maximum (3.4e38), or eps becomes NaN and every channel DBSCAN noise.
    limit = _FLOAT32_SAFE_MAX ** 0.5 / (2 * (x.shape[1] * x.shape[2]) ** 0.5)
    peak = max(-low, high)
    if peak >= limit:
        raise ValueError(f"{name} holds values up to {peak:.3g}, too large for CF-CAM's float32 channel "
                         f"distances (they would overflow and make eps NaN); expected |values| < {limit:.3g} "
                         f"for maps of {x.shape[1]}x{x.shape[2]}: divide {name} by a constant (the clusters "
                         "and the normalised map do not change)")
    return x.to(dtype=torch.float64)


_FLOAT32_SAFE_MAX = 3.0e38  # a little under float32's largest value, 3.4e38


@dataclass(frozen=True)
class ClusterStage:
    """The important-channel split and DBSCAN over the remaining channels."""

    split: cl.Split
    clustered: np.ndarray  # indices of the channels given to DBSCAN
    eps: float
    min_samples: int
    dbscan: cl.DBSCANResult
    labels: np.ndarray  # (C,) -2 important, -1 noise, k >= 0 cluster
    distances: object  # the channel distances (cl.ChannelDistances, or the engine's equivalent)


def cluster_stage(activations: torch.Tensor, config: CFCAMConfig,
                  cache: dict | None = None) -> ClusterStage:
    """Split off important channels, then DBSCAN the rest with the percentile ``eps``.

    ``cache`` (a dict the caller keeps for one image) holds the distance matrices already computed, keyed by
    the set of clustered channels, so that moving ``eps`` or ``min_samples`` does not recompute them.
    """
    c = activations.shape[0]
    flat = activations.reshape(c, -1)
    split = cl.split_important(flat.numpy(), config.important_fraction)
    clustered = np.flatnonzero(~split.important)
    key = clustered.tobytes()
    distances = cache.get(key) if cache is not None else None
    if distances is None:
        distances = channel_distances(flat if clustered.size == c else flat[torch.from_numpy(clustered)])
        if cache is not None:
            cache[key] = distances
    eps = distances.eps(config.eps_percentile, config.eps_min)
    min_samples = cl.min_samples_for(clustered.size, config.min_samples_fraction, config.min_samples_floor)
    db = distances.dbscan(eps, min_samples)
    labels = np.full(c, cl.IMPORTANT, dtype=np.int64)
    labels[clustered] = db.labels
    return ClusterStage(split, clustered, eps, min_samples, db, labels, distances)


@dataclass(frozen=True)
class FilterStage:
    """Each cluster's mean gradient map and its filtered version, ``(K, h, w)``."""

    mean_gradients: torch.Tensor
    filtered_gradients: torch.Tensor


def cluster_mean_gradients(gradients: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """``M_j``: the mean gradient map over the channels of each cluster ``j``, ``(K, h, w)``."""
    labels = np.asarray(labels)
    c, h, w = gradients.shape
    k = int(labels.max()) + 1 if labels.size else 0
    if k <= 0:
        return gradients.new_zeros((0, h, w))
    slot = np.where(labels >= 0, labels, k)  # noise and important channels add into a spare row
    sums = gradients.new_zeros((k + 1, h * w)).index_add_(0, torch.from_numpy(slot), gradients.reshape(c, h * w))
    counts = torch.from_numpy(np.bincount(slot, minlength=k + 1)[:k].astype(np.float64)).to(gradients.dtype)
    return (sums[:k] / counts[:, None]).reshape(k, h, w)


def filter_stage(gradients: torch.Tensor, labels: np.ndarray, config: CFCAMConfig) -> FilterStage:
    means = cluster_mean_gradients(gradients, labels)
    return FilterStage(means, filter_maps(means, config))


@dataclass(frozen=True)
class ComposeStage:
    weights: torch.Tensor  # (C,) pre-normalisation weights, 0 for dropped channels
    alphas: torch.Tensor  # (C,) coefficients of the sum
    kept: np.ndarray  # (C,) bool
    cam: torch.Tensor  # (h, w) after ReLU
    fallback: str | None
    notes: tuple[str, ...]


def compose_stage(activations: torch.Tensor, gradients: torch.Tensor, labels: np.ndarray,
                  filtered: torch.Tensor, config: CFCAMConfig) -> ComposeStage:
    """Weights, coefficients and the map; falls back as ``config.fallback`` says when nothing is kept."""
    kept = kept_channels(labels)
    notes: list[str] = []
    fallback = None
    if kept.any():
        weights = cfcam_weights(gradients, labels, filtered)
        alphas = coefficients(weights, torch.from_numpy(kept), config.weighting)
    else:
        fallback = config.fallback
        notes.append("no important channel and no cluster (every channel is DBSCAN noise)")
        if fallback == "gradcam":
            notes.append("fallback: Grad-CAM weights (mean gradient) over all channels")
            kept = np.ones_like(kept)
            weights = gradcam_weights(gradients)
            alphas = weights.clone()
        else:
            notes.append("fallback: an all-zero map")
            weights = torch.zeros(gradients.shape[0], dtype=gradients.dtype)
            alphas = weights.clone()
    cam = weighted_relu_sum(activations, alphas)
    if not bool((cam > 0).any()):
        notes.append("the map is zero everywhere: the weighted sum is <= 0 at every position")
    return ComposeStage(weights, alphas, kept, cam, fallback, tuple(notes))


@dataclass(frozen=True)
class CFCAMResult:
    """Everything CF-CAM computed for one image, so that each step can be shown.

    ``cam`` is the ``(h, w)`` map after ReLU, before upsampling and normalisation. ``labels`` per channel:
    -2 important, -1 noise (dropped), k >= 0 cluster. ``weights`` are the pre-normalisation weights ``w_k``
    (0 for dropped channels), ``alphas`` the coefficients actually summed. ``fallback`` names what was used
    when no channel survived (None otherwise); ``notes`` says, in words, anything unusual.
    """

    cam: np.ndarray
    labels: np.ndarray
    eps: float
    min_samples: int
    weights: np.ndarray
    alphas: np.ndarray
    kept: np.ndarray
    norms: np.ndarray
    important_threshold: float | None
    core: np.ndarray  # (C,) bool, DBSCAN core channels (False for important channels)
    cluster_mean_gradients: np.ndarray  # (K, h, w)
    filtered_gradients: np.ndarray  # (K, h, w)
    fallback: str | None
    notes: tuple[str, ...]
    config: CFCAMConfig
    distances: np.ndarray | None = field(default=None, repr=False)  # (n, n) for the clustered channels
    clustered_channels: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size and self.labels.max() >= 0 else 0

    @property
    def n_noise(self) -> int:
        return int((self.labels == cl.NOISE).sum())

    @property
    def n_important(self) -> int:
        return int((self.labels == cl.IMPORTANT).sum())

    @property
    def cluster_sizes(self) -> np.ndarray:
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_clusters)


def assemble(activations: torch.Tensor, stage1: ClusterStage, stage2: FilterStage, stage3: ComposeStage,
             config: CFCAMConfig, return_distances: bool = False) -> CFCAMResult:
    """Collect the stages into a :class:`CFCAMResult` of numpy arrays."""
    core = np.zeros(activations.shape[0], dtype=bool)
    core[stage1.clustered] = stage1.dbscan.core
    return CFCAMResult(
        cam=stage3.cam.float().numpy(),
        labels=stage1.labels,
        eps=float(stage1.eps),
        min_samples=int(stage1.min_samples),
        weights=stage3.weights.numpy(),
        alphas=stage3.alphas.numpy(),
        kept=stage3.kept,
        norms=stage1.split.norms,
        important_threshold=stage1.split.threshold,
        core=core,
        cluster_mean_gradients=stage2.mean_gradients.float().numpy(),
        filtered_gradients=stage2.filtered_gradients.float().numpy(),
        fallback=stage3.fallback,
        notes=stage3.notes,
        config=config,
        distances=stage1.distances.matrix if return_distances and stage1.distances is not None else None,
        clustered_channels=stage1.clustered,
    )


class CFCAMPipeline:
    """The one orchestrator of CF-CAM's stages for one image's activations and gradients ``(C, h, w)``.

    ``run(config)`` recomputes only the stages whose parameters changed since the last run (which field
    belongs to which stage is declared next to the field in :class:`~cfcam.core.config.CFCAMConfig`), so a
    notebook slider costs only what it changes. The pipeline owns its caches (the distance matrices, keyed by
    the set of clustered channels, and each stage's last result); stage results are never modified.
    ``recomputed`` names the stages the last run computed.
    """

    _STAGES = STAGES[:-1]  # "output" (normalisation) happens after upsampling, outside the core

    @single_threaded
    def __init__(self, activations, gradients) -> None:
        self.activations = as_maps(activations, "activations")
        self.gradients = as_maps(gradients, "gradients")
        if self.activations.shape != self.gradients.shape:
            raise ValueError(f"activations and gradients must have the same shape, got "
                             f"{tuple(self.activations.shape)} and {tuple(self.gradients.shape)}")
        self._distances: dict = {}
        self._last: dict[str, tuple[tuple, object]] = {}
        self.recomputed: tuple[str, ...] = ()

    def _compute(self, stage: str, config: CFCAMConfig, before: dict):
        if stage == "cluster":
            return cluster_stage(self.activations, config, self._distances)
        if stage == "filter":
            return filter_stage(self.gradients, before["cluster"].labels, config)
        return compose_stage(self.activations, self.gradients, before["cluster"].labels,
                             before["filter"].filtered_gradients, config)

    def last(self, stage: str):
        """The last result of ``stage`` (``"cluster"``, ``"filter"`` or ``"compose"``), None before the first run
        (the explorers read the cluster stage's neighbour counts from it)."""
        entry = self._last.get(stage)
        return None if entry is None else entry[1]

    @single_threaded
    def run(self, preset: str | CFCAMConfig = "readme", *, return_distances: bool = False,
            **overrides) -> CFCAMResult:
        """The result for ``preset`` with ``overrides`` (see :func:`cfcam.make_config`)."""
        config = make_config(preset, **overrides)
        key: tuple = ()
        done: dict = {}
        recomputed = []
        for stage in self._STAGES:
            key += tuple(getattr(config, name) for name in stage_fields(stage))
            last = self._last.get(stage)
            if last is None or last[0] != key or recomputed:
                self._last[stage] = (key, self._compute(stage, config, done))
                recomputed.append(stage)
            done[stage] = self._last[stage][1]
        self.recomputed = tuple(recomputed)
        return assemble(self.activations, done["cluster"], done["filter"], done["compose"], config,
                        return_distances)


def cluster_filter_cam(activations, gradients, preset: str | CFCAMConfig = "readme", *,
                       return_distances: bool = False, **overrides) -> CFCAMResult:
    """CF-CAM for one image.

    activations, gradients: ``(C, h, w)`` tensors or arrays of the hooked layer (``G = d y_c / d A``).
    preset: ``"readme"`` (default, the README's workflow), ``"reference"`` (the published code), or a
        :class:`CFCAMConfig`; ``overrides`` change single parameters (see :class:`CFCAMConfig`).
    return_distances: keep the ``(n, n)`` distance matrix of the clustered channels in the result.
    """
    config = make_config(preset, **overrides)  # validate the parameters before the inputs
    return CFCAMPipeline(activations, gradients).run(config, return_distances=return_distances)
