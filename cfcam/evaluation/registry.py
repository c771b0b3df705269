"""Every metric of ``cfcam evaluate`` in one place: its name, category, direction, needs, cost and computation.

The engine runs the entries in order, the report reads their directions and flags, notebook 06 can list them.
Adding a metric is one :func:`register` call: a function of a
:class:`~cfcam.evaluation.context.MethodContext` returning per-image values (or :class:`Values`, or, for a
family like ``cascade_spearman@<layer>``, a dict ``suffix -> Values``).

* ``category``: localisation, faithfulness, sanity, robustness, complexity, cost (or model: facts about the
  model's predictions that the report splits by).
* ``direction``: "higher" or "lower" is better, "" for neither (a count to read, not a score to rank).
* ``needs``: what must be there: ``mask`` (ground truth; no rows without one), ``gradients`` (a method that
  reads captured gradients; NaN rows with a note for the others), ``model``; an extras key (e.g.
  ``shortcut_masks``) needs that key in the data's extras.
* ``images``: "all", "subset" (the first ``settings.subset`` images) or "random" (the first
  ``settings.randomisation_n``, the classifier check's); ``slow``: whether it runs for the
  methods that cost one forward pass per channel (Score-CAM, Ablation-CAM).
* ``follows``: the class it scores: "mask" (the class the mask marks), "explained" (the data's target, else the
  top class), "both" (the explained class against the runner-up), "" (none); written in ``per_image.csv``.
* ``work``: the cost in map-equivalents per image (one explainer call on one image), measured with cProfile
  on the demo model (a ROAD percentile costs about 17: two sparse solves), which the engine's progress uses
  to estimate the time left.
* ``check_discriminates``: the report compares every method's values with the random map's, image by image,
  and says so when the metric cannot tell them apart on this model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import faithfulness as fa
from . import sanity as sa
from .complexity import gini
from .context import SKIP_GRADIENT, SKIP_SLOW, MethodContext
from .localisation import energy_in_mask, is_zero_map, pointing_game_scores
from .similarity import mse, pearson, ssim

#: a map of a method computed by one forward pass per channel (Score-CAM, Ablation-CAM: 512 channels) costs
#: about this many gradient maps (9.6 s against 16 ms per image on 2 idle cores)
SLOW_FACTOR = 600.0


def maps(count: float):
    """``work`` of a metric that computes ``count`` maps per image (scaled for the per-channel methods)."""
    return lambda s, slow: count * (SLOW_FACTOR if slow else 1.0)


CATEGORIES = ("localisation", "faithfulness", "sanity", "robustness", "complexity", "cost", "model")
DIRECTIONS = ("higher", "lower", "")
FOLLOWS = ("mask", "explained", "both", "")


@dataclass
class Values:
    """A metric's per-image ``values``, ``notes`` for the undefined ones, and per-draw values ``(K, n)``
    where the value is a mean over random draws (the report's interval then resamples draws too)."""

    values: np.ndarray
    notes: list | None = None
    draws: np.ndarray | None = None


@dataclass(frozen=True)
class Metric:
    """One registered metric (see the module docstring for the fields)."""

    name: str
    category: str
    direction: str
    compute: Callable[[MethodContext], object] = field(repr=False)
    needs: frozenset = frozenset()
    images: str = "all"
    slow: bool = True
    follows: str = "explained"
    cost: str = ""
    work: Callable[[object, bool], float] = field(default=lambda s, slow: 0.0, repr=False)
    undefined: str = "undefined"
    family: bool = False
    #: a column of the table (for a family: the suffix of its column, e.g. "0.1")
    headline: object = False
    check_discriminates: bool = False
    #: a family's row suffixes (needed for its NaN rows when it is skipped)
    suffixes: Callable[[MethodContext], list] = field(default=lambda ctx: [], repr=False)
    #: whether the settings ask for it at all (e.g. ``settings.cascade``)
    when: Callable[[object], bool] = field(default=lambda s: True, repr=False)
    doc: str = ""


METRICS: dict[str, Metric] = {}


def register(name: str, category: str, direction: str, compute, **kw) -> Metric:
    """Add a metric (its ``name`` unique; a family's rows are ``name@suffix``)."""
    if name in METRICS:
        raise ValueError(f"metric {name!r} is registered already")
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {list(CATEGORIES)}, got {category!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    if kw.get("follows", "explained") not in FOLLOWS:
        raise ValueError(f"follows must be one of {list(FOLLOWS)}, got {kw['follows']!r}")
    kw["needs"] = frozenset(kw.get("needs", ()))
    METRICS[name] = metric = Metric(name, category, direction, compute, **kw)
    return metric


def get(row_metric: str) -> Metric | None:
    """The entry of a row's metric name (``cascade_spearman@fc`` -> ``cascade_spearman``); None if unknown."""
    return METRICS.get(row_metric) or METRICS.get(row_metric.split("@", 1)[0])


def direction(row_metric: str) -> str:
    """"higher", "lower" or "" (unknown metrics, e.g. a caller's extra ones, have none)."""
    entry = get(row_metric)
    return entry.direction if entry else ""


def headline() -> list[str]:
    """The row names of the table's columns, in the registry's order."""
    return [f"{m.name}@{m.headline}" if m.family else m.name for m in METRICS.values() if m.headline]


# -- localisation (the class the mask marks; a zero map is a miss) ------------------------------------------
def _loc(fn, key="masks"):
    def compute(ctx: MethodContext):
        maps, notes = ctx.mask_maps
        masks = ctx.masks if key == "masks" else np.asarray(ctx.data.extras[key][:ctx.n], dtype=bool)
        given = masks.reshape(ctx.n, -1).any(axis=1)
        out = np.full(ctx.n, np.nan)
        if given.any():
            out[given] = fn(maps[given], masks[given])
        return Values(out, [nt if ok else NO_MASK for nt, ok in zip(notes, given)])
    return compute


NO_MASK = "no mask for this image (none given, or no non-zero pixel): nothing to point at"
LOC = dict(needs={"mask"}, follows="mask", work=maps(0.05))
register("pointing_game", "localisation", "higher", _loc(pointing_game_scores), headline=True, **LOC,
         cost="free", doc="the map's maximum within 15 px of the mask; an all-zero map is a miss")
register("energy_in_mask", "localisation", "higher", _loc(energy_in_mask), headline=True, **LOC, cost="free",
         doc="share of the map's mass inside the mask; an all-zero map scores 0")
register("zero_maps_localised", "localisation", "lower",
         lambda ctx: is_zero_map(ctx.mask_maps[0]).astype(float), headline=True, **LOC, cost="free",
         doc="maps of the mask class that are zero everywhere (counted as misses above)")
register("pointing_game_shortcut", "localisation", "", _loc(pointing_game_scores, "shortcut_masks"),
         needs={"mask", "shortcut_masks"}, follows="mask", cost="free",
         doc="the pointing game against the shortcut marker: pointing at the marker, not the lesion")
register("energy_in_shortcut", "localisation", "", _loc(energy_in_mask, "shortcut_masks"),
         needs={"mask", "shortcut_masks"}, follows="mask", cost="free", doc="energy on the shortcut marker")
register("mispredicted", "model", "", lambda ctx: ctx.mispredicted, follows="", cost="free",
         doc="1 where the model's top class is not the label: the report splits the scores by it")

# -- faithfulness (the explained class) ---------------------------------------------------------------------
register("deletion_auc", "faithfulness", "lower", lambda ctx: Values(fa.auc(ctx.curves[0]), ctx.zero_note),
         images="subset", headline=True, cost="2 * steps forward passes per image (with insertion)",
         work=lambda s, slow: 1.6 * s.steps, doc="RISE deletion over the substrate")
register("insertion_auc", "faithfulness", "higher", lambda ctx: Values(fa.auc(ctx.curves[1]), ctx.zero_note),
         images="subset", headline=True, cost="shared with deletion_auc", doc="RISE insertion")
register("road", "faithfulness", "higher",
         lambda ctx: Values(fa.road(ctx.ev.scorer, ctx.x[:ctx.sub], ctx.maps[:ctx.sub], ctx.targets[:ctx.sub],
                                    ctx.settings.road_percentiles, ctx.settings.seed), ctx.zero_note),
         images="subset", headline=True, cost="2 imputations and forward passes per percentile and image",
         work=lambda s, slow: 17 * len(s.road_percentiles), doc="pytorch-grad-cam ROADCombined over the percentiles")
register("average_drop", "faithfulness", "lower", lambda ctx: ctx.chattopadhay[0], headline=True,
         cost="1 forward pass", work=lambda s, slow: 0.75, doc="Chattopadhay et al., clipped at 0")
register("increase_in_confidence", "faithfulness", "higher", lambda ctx: ctx.chattopadhay[1], headline=True,
         cost="shared with average_drop", doc="Chattopadhay et al.: share of images whose p_c rises")
register("average_drop_published", "faithfulness", "lower",
         lambda ctx: fa.average_drop_published(ctx.ev.scorer, ctx.x, ctx.maps, ctx.targets, ctx.p_orig,
                                               ctx.settings.batch_size),
         headline=True, check_discriminates=True, cost="1 forward pass", work=lambda s, slow: 0.75,
         doc="the published script: map > 0.5 kept, black elsewhere, not clipped")
register("average_increase_published", "faithfulness", "higher",
         lambda ctx: fa.average_increase_published(ctx.ev.scorer, ctx.x, ctx.maps, ctx.targets, ctx.p_base,
                                                   ctx.settings.batch_size),
         headline=True, check_discriminates=True, cost="1 forward pass", work=lambda s, slow: 0.75,
         doc="the published script: p_c(map > 0.3 inserted into the mean-value baseline) - p_c(baseline)")


# -- sanity -------------------------------------------------------------------------------------------------
def _draws(key, note=None):
    def compute(ctx: MethodContext):
        per_draw = ctx.draws[key]
        return Values(_mean_of_defined(per_draw), ctx.draws["notes"] if note else None, per_draw)
    return compute


def _cascade(order):
    def compute(ctx: MethodContext):
        return {layer: Values(_mean_of_defined(d), notes, d) for layer, (d, notes) in ctx.cascade(order).items()}
    return compute


RANDOM = dict(images="random", cost="one map per draw and image",
              work=lambda s, slow: SLOW_FACTOR * min(s.randomisation_seeds, s.slow_randomisation_seeds) if slow
              else s.randomisation_seeds)
register("randomisation_spearman", "sanity", "lower", _draws("spearman", True), headline=True, **RANDOM,
         undefined="undefined: a constant map has no ranks",
         doc="Spearman with the map after re-initialising the classifier, mean over the draws")
register("randomisation_ssim", "sanity", "lower", _draws("ssim"), headline=True, cost="shared", images="random",
         doc="SSIM with the map after re-initialising the classifier")
register("zero_maps_randomised", "sanity", "", _draws("zero"), cost="shared", images="random",
         doc="share of the re-initialised classifier's maps that are zero everywhere")
CASCADE = dict(family=True, images="subset", slow=False, undefined="undefined: a constant map has no ranks",
               when=lambda s: s.cascade)
register("cascade_spearman", "sanity", "lower", _cascade("top_down"), **CASCADE,
         suffixes=lambda ctx: sa.cascade_layers(ctx.ev.model, "top_down"),
         cost="one map per layer, draw and image", work=lambda s, slow: 7 * min(s.cascade_seeds, s.randomisation_seeds),
         doc="cumulative re-initialisation from the output (Adebayo et al.)")
register("cascade_bottom_up_spearman", "sanity", "lower", _cascade("bottom_up"), **CASCADE,
         suffixes=lambda ctx: sa.cascade_layers(ctx.ev.model, "bottom_up"),
         cost="one map per layer, draw and image", work=lambda s, slow: 7 * min(s.cascade_seeds, s.randomisation_seeds),
         doc="cumulative re-initialisation from the input (Quantus' MPRT layer_order='bottom_up')")
register("class_correlation", "sanity", "lower",
         lambda ctx: Values(np.array([pearson(a, b) for a, b in zip(ctx.maps, ctx.runner_up[0])]), ctx.runner_up[1]),
         headline=True, slow=False, follows="both", undefined="undefined: a constant map", cost="one map per image",
         work=maps(1.0), doc="Pearson between the maps of the explained class and the runner-up")
register("zero_maps_runner_up", "sanity", "lower", lambda ctx: is_zero_map(ctx.runner_up[0]).astype(float),
         headline=True, slow=False, cost="shared", doc="runner-up maps that are zero everywhere")


# -- robustness ---------------------------------------------------------------------------------------------
def _sigmas(protocol):
    return lambda ctx: [f"{v:g}" for v in (ctx.settings.published_sigmas if protocol == "published"
                                          else ctx.settings.fair_sigmas)]


def _noise(protocol, similarity):
    def compute(ctx: MethodContext):
        sigmas = ctx.settings.published_sigmas if protocol == "published" else ctx.settings.fair_sigmas
        clean = ctx.gradient_noise[("clean", 0.0)]
        return {f"{v:g}": [similarity(a, b) for a, b in zip(clean, ctx.gradient_noise[(protocol, v)])]
                for v in sigmas}
    return compute


NOISE = dict(family=True, images="subset", needs={"gradients"}, cost="one capture, then the maps only")
register("robustness_published_ssim", "robustness", "higher", _noise("published", ssim), headline="0.1", **NOISE,
         suffixes=_sigmas("published"),
         work=lambda s, slow: 1.5, doc="the published script's absolute gradient noise (CF-CAM immune by construction)")
register("robustness_published_mse", "robustness", "lower", _noise("published", mse), **NOISE,
         suffixes=_sigmas("published"))
register("robustness_fair_ssim", "robustness", "higher", _noise("fair", ssim), headline="0.1", **NOISE,
         suffixes=_sigmas("fair"),
         doc="gradient noise relative to each image's gradient scale, before any method's step")
register("input_noise_ssim", "robustness", "higher",
         lambda ctx: [ssim(a, b) for a, b in zip(ctx.maps[:ctx.sub], ctx.input_noise)], headline=True,
         images="subset", slow=False, cost="one map per image", work=maps(1.0),
         doc="SSIM between the maps of the image and of the image plus Gaussian noise")

# -- complexity and cost ------------------------------------------------------------------------------------
register("sparseness", "complexity", "higher", lambda ctx: gini(ctx.maps), headline=True, cost="free",
         doc="Gini index of the map (Quantus Sparseness): concentrated, not necessarily right")
register("zero_maps", "cost", "lower", lambda ctx: ctx.zero.astype(float), headline=True, cost="free",
         doc="maps of the explained class that are zero everywhere")
register("ms_per_image", "cost", "lower", lambda ctx: np.full(ctx.n, ctx.seconds * 1000.0), headline=True,
         cost="free", work=maps(1.0), doc="milliseconds per map (one batch call divided by its images)")


def _mean_of_defined(draws) -> np.ndarray:
    """Per image, the mean over draws ``(K, n)`` of the defined values; NaN where no draw is defined."""
    values = np.asarray(draws, dtype=np.float64)
    defined = np.isfinite(values)
    counts = defined.sum(axis=0)
    sums = np.where(defined, values, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(values.shape[1], np.nan), where=counts > 0)


def skip_reason(metric: Metric, ctx: MethodContext) -> str | None:
    """Why ``metric`` gives NaN rows for this method (None: it runs)."""
    if ctx.slow and not metric.slow:
        return SKIP_SLOW
    if ctx.slow and "gradients" in metric.needs:
        return SKIP_GRADIENT
    return None


def applies(metric: Metric, data, settings) -> bool:
    """Whether ``metric`` has rows at all on ``data`` (its mask and extras are there) under ``settings``."""
    if not metric.when(settings):
        return False
    for need in metric.needs - {"gradients", "model"}:
        if need == "mask":
            if data.masks is None:
                return False
        elif need not in data.extras:
            return False
    return True
