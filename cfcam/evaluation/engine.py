"""The evaluation engine: every registered method on the same images, every registered metric, one long table.

A row is ``(method, image, metric, value, note)``, with the class it scored beside it (``MethodRun.targets``,
the ``target`` column of ``per_image.csv``); ``value`` is NaN where the metric is undefined for that map, and
``note`` then says why. Nothing is dropped: localisation counts an all-zero map as a miss (and reports the rate
in ``zero_maps_localised``), the others count defined values in ``n``.

The metrics, their directions, what they need and cost live in :mod:`cfcam.evaluation.registry` (adding one is
one entry); :class:`~cfcam.evaluation.context.MethodContext` computes what they share once. Localisation
scores the class the mask marks (the lesion), on every image, for every method; the other metrics follow the
explained class (the data's target, else the top class). The metrics that average random re-initialisations
keep their per-draw values (``MethodRun.draws``) for intervals over images *and* draws.

Per-model extra metrics plug in through :func:`register_model_metrics`: a function
``fn(maps, data, targets) -> {metric: per-image values}`` run for every method on that model's data.

Costs (the demo ResNet-10 on 2 CPU cores, see ``benchmarks/bench_evaluate.py``): a gradient method's map costs
one forward and one partial backward pass; Score-CAM and Ablation-CAM one forward pass per channel (512) and
image, so they run on the first ``slow_n`` images only, without the cascade, class-sensitivity and noise
checks (their rows say so). The classifier check runs ``randomisation_seeds`` draws on the first
``randomisation_n`` images; deletion/insertion, ROAD (two sparse solves per percentile and image: the largest
cost), the cascades and the noise checks run on the first ``subset`` images. The run uses
:func:`choose_threads` torch threads (one on a busy machine) and checks ``should_stop`` between batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import nn

from ..core.engine.threads import torch_threads
from ..methods.registry import create, method_names
from ..methods.runner import run_batch
from . import faithfulness as fa
from . import registry
from . import robustness as rb
from . import sanity as sa
from .captures import SharedCaptures
from .context import MethodContext
from .localisation import energy_in_mask, pointing_game_scores

ExtraMetric = Callable[[np.ndarray, "EvalData", np.ndarray], Mapping[str, np.ndarray]]
MODEL_METRICS: dict[str, list[ExtraMetric]] = {}
#: model name -> ``fn(n, seed) -> EvalData``: the images ``cfcam evaluate --model NAME`` is run on
MODEL_DATA: dict[str, Callable[[int, int], EvalData]] = {}


def register_model_metrics(model_name: str, fn: ExtraMetric) -> None:
    """Run ``fn`` for every method when evaluating ``model_name`` (e.g. ``"demo-shortcut"``)."""
    MODEL_METRICS.setdefault(model_name, []).append(fn)


def register_model_data(model_name: str, fn: Callable[[int, int], EvalData]) -> None:
    """Evaluate ``model_name`` on ``fn(n, seed)`` (its :class:`EvalData` may carry ``extras`` for its metrics)."""
    MODEL_DATA[model_name] = fn


@dataclass
class EvalData:
    """The images to evaluate on: normalised inputs ``(N, 3, H, W)``, lesion masks ``(N, H, W)`` (or None; an
    all-zero mask means "no mask": NaN localisation values with a note), labels, per-model extras (e.g. shortcut
    masks) for extra metrics, and the classes to explain (``targets``; None, or -1 for an image: its top class)."""

    inputs: torch.Tensor
    masks: np.ndarray | None
    labels: np.ndarray
    name: str
    extras: dict = field(default_factory=dict)
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.inputs)


def demo_world_data(n: int, seed: int) -> EvalData:
    """``n`` fresh lesion images of the synthetic world from ``seed`` (every one has a mask to point at)."""
    from ..images.preprocess import to_input
    from ..world.synthetic import make_dataset

    images, labels, masks = make_dataset(n, seed, balance=1.0)
    return EvalData(to_input(images), masks, labels, f"demo world, {n} lesion images, seed {seed}")


def shortcut_data(n: int, seed: int) -> EvalData:
    """``n`` lesion images that all carry the shortcut marker (both truths in every image), for demo-shortcut."""
    from ..images.preprocess import to_input
    from .shortcut import shortcut_evaluation_set

    data = shortcut_evaluation_set(n, seed)
    return EvalData(to_input(data.images), data.masks, data.labels,
                    f"demo world with the marker, {n} lesion images, seed {seed}",
                    {"shortcut_masks": data.marker_masks})


def shortcut_localisation(maps, data: EvalData, targets) -> dict[str, np.ndarray]:
    """The localisation metrics against the marker, next to those against the lesion: which truth does the
    map point at?"""
    marks = data.extras["shortcut_masks"]
    return {"pointing_game_shortcut": pointing_game_scores(maps, marks),
            "energy_in_shortcut": energy_in_mask(maps, marks)}


register_model_data("demo", demo_world_data)
register_model_data("demo-shortcut", shortcut_data)
# demo-shortcut's metrics (pointing_game_shortcut, energy_in_shortcut) are registry entries that need the
# extras' "shortcut_masks": shortcut_localisation stays for callers that register it themselves.


@dataclass
class EvalSettings:
    """What to compute and on how many images (see the module docstring for the costs)."""

    layer: str = "layer4[-1]"
    batch_size: int = 16
    subset: int = 10
    slow_n: int = 1
    steps: int = 11
    substrate: str = "blur"
    #: ROADCombined's percentiles, averaged (pytorch-grad-cam's default is 10..90: each costs two sparse
    #: linear solves per image, the evaluation's largest cost, so three)
    road_percentiles: tuple = (20, 50, 80)
    published_sigmas: tuple = rb.PUBLISHED_SIGMAS
    fair_sigmas: tuple = rb.FAIR_SIGMAS
    input_noise: float = 0.1
    seed: int = 0
    #: classifier re-initialisations per image (seeds ``seed .. seed + K - 1``), values averaged per image: one
    #: draw of a two-class classifier's weights decides, for every image at once, e.g. whether a map is all zero
    randomisation_seeds: int = 20
    #: images of the classifier check (the first ones): one draw moves every image at once, so draws, not
    #: images, decide its uncertainty, and 20 draws on 50 images cost what 10 on 100 did
    randomisation_n: int = 50
    #: draws for the methods that cost one forward pass per channel (their check rests on slow_n images anyway)
    slow_randomisation_seeds: int = 3
    #: draws of each cascade step (at most ``randomisation_seeds``: the first ones, shared with the classifier check)
    cascade_seeds: int = 3
    cascade: bool = True
    #: torch threads for the run (for each worker process); None: :func:`choose_threads` (one on a busy machine)
    threads: int | None = None
    #: worker processes, each taking the next method (:mod:`cfcam.evaluation.workers`: the same rows); 1: all in
    #: this process; None: one per idle CPU, each on one thread, when the run's work is large (the command line)
    workers: int | None = 1
    #: share one model pass among the methods, and run only the head after a classifier re-initialisation
    #: (:mod:`cfcam.evaluation.captures`: the same maps, faster); False: every method takes its own passes
    share_passes: bool = True
    #: score the confidence metrics' passes on a channels-last copy of a CNN (:mod:`cfcam.evaluation.scoring`:
    #: the same probabilities to float32 rounding, faster on the CPU); False: on the model itself
    channels_last: bool = True
    #: how to read the layer's output as (N, C, h, w) maps: None, "vit", "swin" or a callable (see cfcam.core.layouts)
    reshape: object = None
    #: extra named methods: name -> {"method": registered name, "layer": ..., "options": {...}} (the ablation)
    variants: dict = field(default_factory=dict)


@dataclass
class MethodRun:
    """What one method produced: its rows, mean deletion/insertion curves and cascade means (for the plots),
    each row's class (``targets``, parallel to ``rows``) and the per-draw values of the metrics that average
    random draws (``draws``: row metric -> ``(K, n)``), which the report's intervals resample."""

    method: str
    rows: list
    curves: dict
    cascade: dict
    targets: list = field(default_factory=list)
    draws: dict = field(default_factory=dict)
    #: wall seconds this method's metrics took (in its worker process, when there are several)
    seconds: float = 0.0


NO_MASK = registry.NO_MASK


class EvaluationStopped(KeyboardInterrupt):
    """``should_stop()`` said stop: raised between batches (a KeyboardInterrupt, so Ctrl-C handlers catch it)."""


class Evaluation:
    """Runs the registry's metrics for each method.

    ``progress`` (a callable ``(done, total, label)``) reports the work done in map-equivalents (one explainer
    call on one image), so that a progress bar's estimate weighs the costly metrics as they cost;
    ``should_stop`` (a callable, e.g. reading a flag a SIGINT handler sets) is checked between batches and
    metrics, and stops the run with :class:`EvaluationStopped` within a batch's time.
    """

    def __init__(self, model: nn.Module, data: EvalData, settings: EvalSettings | None = None,
                 model_name: str = "", extra_metrics: Iterable[ExtraMetric] | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.model = model.eval()
        self.data = data
        self.settings = settings or EvalSettings()
        for option in ("randomisation_seeds", "cascade_seeds", "randomisation_n", "slow_randomisation_seeds"):
            value = getattr(self.settings, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} must be an integer >= 1, got {value!r}")
        threads = self.settings.threads
        for option in ("threads", "workers"):
            value = getattr(self.settings, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{option} must be None (automatic) or an integer >= 1, got {value!r}")
        self.extra_metrics = list(MODEL_METRICS.get(model_name, [])) + list(extra_metrics or [])
        self.progress = progress or (lambda done, total, label: None)
        self.should_stop = should_stop or (lambda: False)
        #: methods that could not run on this model (name -> why), e.g. Ablation-CAM on a ViT layer
        self.failed: dict[str, str] = {}
        self.size = tuple(data.inputs.shape[-2:])
        self._done = 0.0
        self._total = 1.0
        self._partial = self._budget = 0.0
        self._map_cost, self._label = 1.0, ""
        #: CPU seconds of this process per metric (and "maps": the explained maps), summed over methods:
        #: where the time goes, whatever the machine's load
        self.cpu_seconds: dict[str, float] = {}
        #: torch threads the run used, per process (see :func:`choose_threads`)
        self.threads = threads or choose_threads()
        #: processes the run used (decided in :meth:`run`, see :mod:`cfcam.evaluation.workers`)
        self.workers = 1

    # -- helpers ----------------------------------------------------------------------------------------
    def _base(self):
        """Logits, targets (the data's, else the top class), ``p_c`` and the published baseline's ``p_c``,
        computed once per run."""
        if not hasattr(self, "_base_cache"):
            x, bs = self.data.inputs, self.settings.batch_size
            with torch.no_grad():
                logits = torch.cat([self.model(x[i:i + bs]) for i in range(0, len(x), bs)])
            targets = logits.argmax(1).numpy()
            if self.data.targets is not None:
                targets = np.where(np.asarray(self.data.targets) >= 0, self.data.targets, targets)
            self._base_cache = (logits, targets, fa.class_probability(self.scorer, x, targets, bs),
                                fa.class_probability(self.scorer, fa.mean_value_baseline(x), targets, bs))
        return self._base_cache

    @cached_property
    def scorer(self) -> nn.Module:
        """The model the confidence metrics score with (:mod:`cfcam.evaluation.scoring`), made on first use."""
        if not self.settings.channels_last:
            return self.model
        from .scoring import scoring_model

        return scoring_model(self.model, self.data.inputs[:self.settings.batch_size])

    def _model(self, layers: tuple, draw: int = 0) -> nn.Module:
        """The model with ``layers`` re-initialised from seed ``settings.seed + draw``: a fresh copy each time
        (the same weights for every method; memory stays at one copy, whatever the model's size)."""
        if not layers:
            return self.model
        return sa.randomised(self.model, layers, self.settings.seed + draw)

    def _layer(self, name: str) -> str:
        return self.settings.variants.get(name, {}).get("layer", self.settings.layer)

    def _explainer(self, name: str, model: nn.Module):
        variant = self.settings.variants.get(name, {})
        return create(variant.get("method", name), model, self._layer(name), reshape_transform=self.settings.reshape,
                      **variant.get("options", {}))

    def _maps(self, name, model, inputs, targets, timed=False, draw=None, model_key=None):
        """Maps, per-image notes, and seconds per image when ``timed`` (then always the method's own pass).

        ``draw``: explain with the classifier re-initialised from seed ``settings.seed + draw`` (``model`` is not
        used). ``model_key``: a name for ``model``'s state that every method's call shares (a cascade step). The
        captures come from the run's shared passes where the method allows (:mod:`cfcam.evaluation.captures`):
        the same maps, without a model pass per method.
        """
        maps, notes, seconds = [], [], 0.0
        bs = self.settings.batch_size
        key = model_key or ("model" if draw is None else ("classifier", draw))
        if timed or (draw is None and model_key is None and model is not self.model):
            shared = None
        else:
            shared = self._shared(name, key)
        if shared is not None and model_key is None:
            model = self.model
        elif shared is None and draw is not None:
            model = self._model((sa.classifier_layer(self.model),), draw)
        with self._explainer(name, model) as explainer:
            for i in range(0, len(inputs), bs):
                self._check_stop()
                t0 = time.perf_counter()
                batch, batch_targets = inputs[i:i + bs], [int(t) for t in targets[i:i + bs]]
                capture = shared.get(explainer, key, batch, batch_targets) if shared is not None else None
                if capture is None:
                    done = run_batch(explainer, batch, batch_targets)
                else:
                    done = explainer.explain_capture(capture, batch)
                seconds += time.perf_counter() - t0
                self._tick(len(batch))
                maps.append(done.maps)
                notes += ["; ".join(r.notes) for r in done.results]
        return np.concatenate(maps), notes, seconds / max(len(inputs), 1)

    def _shared(self, name: str, key) -> SharedCaptures | None:
        """The run's shared captures if method ``name`` can use them for model state ``key``, else None."""
        if not self.settings.share_passes:
            return None
        serves = self.__dict__.setdefault("_serves", {})
        if name not in serves:
            probe = self._explainer(name, self.model)
            probe.remove()
            if "_captures" not in self.__dict__:
                self._captures = SharedCaptures(self.model, probe.layer_name)
            serves[name] = self._captures.serves(probe)
        if not serves[name]:
            return None
        if key != "model" and key[0] == "classifier":
            if not self._captures.can_redraw_classifier:
                return None
            self._captures.head_of(key, lambda: self._model((sa.classifier_layer(self.model),), key[1]))
        return self._captures

    def _check_stop(self) -> None:
        if self.should_stop():
            raise EvaluationStopped("the evaluation was asked to stop")

    def _spent(self, key: str, since: float) -> None:
        self.cpu_seconds[key] = self.cpu_seconds.get(key, 0.0) + time.process_time() - since

    def _advance(self, units: float, label: str) -> None:
        self._done += units
        self._partial, self._budget = 0.0, 0.0
        self.progress(int(round(self._done)), int(round(self._total)), label)

    def _tick(self, images: int) -> None:
        """Within a metric: ``images`` maps done, shown up to the metric's estimated work (a long metric, such
        as 20 draws of the classifier check, moves the bar as it goes)."""
        if self._budget <= 0:
            return
        self._partial += images * self._map_cost
        done = self._done + min(self._partial, self._budget)
        self.progress(int(round(done)), int(round(self._total)), self._label)

    def work(self, methods) -> float:
        """The run's estimated cost in map-equivalents (one gradient map of one image), from the registry's ``work``."""
        s = self.settings
        total = 0.0
        for name in methods:
            slow = self._is_slow(name)
            n = min(len(self.data), s.slow_n) if slow else len(self.data)
            for m in registry.METRICS.values():
                if not registry.applies(m, self.data, s) or (slow and (not m.slow or "gradients" in m.needs)):
                    continue
                counts = {"subset": min(n, s.subset), "random": min(n, max(s.randomisation_n, s.subset))}
                images = counts.get(m.images, n)
                total += images * m.work(s, slow)
        return max(total, 1.0)

    def _is_slow(self, name: str) -> bool:
        probe = self._explainer(name, self.model)
        probe.remove()
        return not rb.reads_captured_gradient(probe)

    # -- one method -------------------------------------------------------------------------------------
    def run_method(self, name: str, index: int = 0, total: int = 1) -> MethodRun:
        """Every registered metric that applies, for method ``name`` (``index``/``total``: its place in the run)."""
        self._check_stop()
        started = time.perf_counter()
        t0 = time.process_time()
        ctx = MethodContext(self, name)
        self._spent("maps", t0)
        s = self.settings
        rows, targets, draws = [], [], {}

        def add(metric, values, notes, default_note, row_target):
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            for i, v in enumerate(values):
                note = ""
                if not np.isfinite(v):
                    note = (notes[i] if notes is not None and notes[i] else "") or default_note
                rows.append((name, i, metric, float(v), note))
                targets.append(row_target[i] if i < len(row_target) else "")

        for metric in registry.METRICS.values():
            if not registry.applies(metric, self.data, s):
                continue
            self._check_stop()
            images = {"subset": ctx.sub, "random": ctx.random_n}.get(metric.images, ctx.n)
            why = registry.skip_reason(metric, ctx)
            row_target = ctx.row_target(metric.follows)
            if why:
                names = [f"{metric.name}@{x}" for x in metric.suffixes(ctx)] if metric.family else [metric.name]
                for row_name in names:
                    add(row_name, np.full(images, np.nan), None, why, row_target)
                continue
            t0 = time.process_time()
            self._budget = images * metric.work(s, ctx.slow)
            self._map_cost, self._label = (registry.SLOW_FACTOR if ctx.slow else 1.0), f"{name}: {metric.name}"
            self.progress(int(round(self._done)), int(round(self._total)), self._label)  # what runs now
            result = metric.compute(ctx)
            self._spent(metric.name, t0)
            parts = result.items() if metric.family else [(None, result)]
            for suffix, part in parts:
                row_name = metric.name if suffix is None else f"{metric.name}@{suffix}"
                part = part if isinstance(part, registry.Values) else registry.Values(np.asarray(part, float))
                if len(part.values) != images:
                    raise RuntimeError(f"metric {row_name} gave {len(part.values)} values for {images} images")
                add(row_name, part.values, part.notes, metric.undefined, row_target)
                if part.draws is not None:
                    draws[row_name] = np.asarray(part.draws, dtype=np.float64)
            self._advance(images * metric.work(s, ctx.slow), f"{name}: {metric.name}")
        for fn in self.extra_metrics:
            for metric, values in fn(ctx.mask_maps[0] if self.data.masks is not None else ctx.maps, self.data,
                                     ctx.targets).items():
                add(metric, values, ctx.zero_note, "undefined", ctx.row_target("mask"))
        curves = {}
        if "deletion_auc" in registry.METRICS and "curves" in ctx.__dict__:
            curves = {"deletion": _nanmean_rows(ctx.curves[0]), "insertion": _nanmean_rows(ctx.curves[1])}
        cascade = {}
        for row_name, per_draw in draws.items():
            if row_name.startswith("cascade_spearman@"):
                values = registry._mean_of_defined(per_draw)
                cascade[row_name.split("@", 1)[1]] = float(np.nanmean(values)) if np.isfinite(values).any() \
                    else float("nan")
        return MethodRun(name, rows, curves, cascade, targets, draws, time.perf_counter() - started)

    def run(self, methods: Iterable[str] | None = None) -> list[MethodRun]:
        """Every method in turn on ``self.threads`` torch threads; a method that cannot explain the layer is
        named in ``self.failed`` (not dropped silently)."""
        methods = list(methods or method_names())
        runs = []
        self._done, self._total = 0.0, self.work([m for m in methods if self._probe_ok(m)])
        self.workers = self._plan_workers(methods)
        self.progress(0, int(round(self._total)), "starting")
        if self.workers > 1:
            from .workers import run_in_workers

            runs = run_in_workers(self, methods, self.workers)
        else:
            with torch_threads(self.threads):
                for i, name in enumerate(methods):
                    try:
                        runs.append(self.run_method(name, i, len(methods)))
                    except ValueError as exc:
                        self.failed[name] = str(exc)
        self.progress(int(round(self._total)), int(round(self._total)), "done")
        return runs

    def _plan_workers(self, methods: list[str]) -> int:
        """Worker processes for ``methods`` (``settings.workers``; None: one per CPU :func:`choose_threads` found
        idle, when the work is large), each thread count cut to share those CPUs when it was chosen here."""
        import os

        from ..core.engine.threads import MODEL_THREADS_ENV
        from .workers import PARALLEL_MIN_WORK, picklable, warn_in_process

        s = self.settings
        auto_threads = s.threads is None and not os.environ.get(MODEL_THREADS_ENV)
        workers = s.workers
        if workers is None:
            workers = self.threads if auto_threads and self._total >= PARALLEL_MIN_WORK else 1
        workers = max(1, min(workers, len(methods)))
        if workers > 1 and not picklable(self.model, self.data, s, self.extra_metrics):
            if s.workers is not None:
                warn_in_process("the model, the images or a metric cannot be pickled for a worker process")
            return 1
        if workers > 1 and auto_threads:
            self.threads = max(1, self.threads // workers)
        return workers

    def _probe_ok(self, name: str) -> bool:
        try:
            self._is_slow(name)
            return True
        except ValueError:
            return False


def choose_threads() -> int:
    """Torch threads for the evaluation: ``CFCAM_THREADS`` if set, else the CPUs this process may use that are idle
    now (at least 1): its many small operations gain little from a second thread on an idle machine and lose
    much to one on a busy machine (2.3x slower with two threads while another process ran). Where the idle CPUs
    cannot be read, the load average stands in for them."""
    import os

    from ..core.engine.threads import available_cpus, cpus_idle_now, model_thread_count

    if os.environ.get("CFCAM_THREADS"):
        return model_thread_count()
    cpus = available_cpus()
    idle = cpus_idle_now()
    if idle is None:
        try:
            idle = cpus - os.getloadavg()[0]
        except OSError:  # no load average on this system either
            idle = float(cpus)
    return max(1, min(cpus, int(idle + 0.5)))


def _nanmean_rows(curves: np.ndarray) -> np.ndarray:
    ok = np.isfinite(curves).all(axis=1)
    return curves[ok].mean(axis=0) if ok.any() else np.full(curves.shape[1], np.nan)
