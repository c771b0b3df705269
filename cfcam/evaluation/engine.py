"""The evaluation engine: every registered method on the same images, every metric, one long table of rows.

A row is ``(method, image, metric, value, note)``; ``value`` is NaN where the metric is undefined for that
map, and ``note`` then says why (usually: the map is zero everywhere). Nothing is dropped: the summary
counts defined values in ``n`` and all-zero maps in their own metric, ``zero_maps``.

Per-model extra metrics plug in through :func:`register_model_metrics`: a function
``fn(maps, data, targets) -> {metric: per-image values}`` run for every method on that model's data (for
example shortcut-localisation metrics of a model trained with a shortcut, whose :class:`EvalData` carries the
shortcut masks in ``extras``).

Costs (the demo ResNet-10 on 2 CPU cores): a gradient method's map costs one forward and one partial
backward pass; Score-CAM and Ablation-CAM cost one forward pass per channel (512) and image, so they run on
the first ``slow_n`` images only, and without the cascade, class-sensitivity and noise checks (their rows
say so); deletion/insertion (``2 * steps`` forward passes per image and method), ROAD, the randomisation
cascade, the gradient-noise protocols and input-noise stability run on the first ``subset`` images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ..core.capture import ActivationsAndGradients
from ..methods.registry import create, method_names
from ..methods.runner import run_batch
from . import faithfulness as fa
from . import robustness as rb
from . import sanity as sa
from .localisation import energy_in_mask, is_zero_map, pointing_game_scores
from .similarity import mse, pearson, spearman, ssim

ExtraMetric = Callable[[np.ndarray, "EvalData", np.ndarray], Mapping[str, np.ndarray]]
MODEL_METRICS: dict[str, list[ExtraMetric]] = {}
#: model name -> ``fn(n, seed) -> EvalData``: the images ``cfcam evaluate --model NAME`` is run on
MODEL_DATA: dict[str, Callable[[int, int], "EvalData"]] = {}


def register_model_metrics(model_name: str, fn: ExtraMetric) -> None:
    """Run ``fn`` for every method when evaluating ``model_name`` (e.g. ``"demo-shortcut"``)."""
    MODEL_METRICS.setdefault(model_name, []).append(fn)


def register_model_data(model_name: str, fn: Callable[[int, int], "EvalData"]) -> None:
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
    from ..world.synthetic import make_dataset
    from ..images.preprocess import to_input

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
register_model_metrics("demo-shortcut", shortcut_localisation)


@dataclass
class EvalSettings:
    """What to compute and on how many images (see the module docstring for the costs)."""

    layer: str = "layer4[-1]"
    batch_size: int = 16
    subset: int = 10
    slow_n: int = 1
    steps: int = 11
    substrate: str = "blur"
    road_percentiles: tuple = (80,)
    published_sigmas: tuple = rb.PUBLISHED_SIGMAS
    fair_sigmas: tuple = rb.FAIR_SIGMAS
    input_noise: float = 0.1
    seed: int = 0
    #: classifier re-initialisations per image (seeds ``seed .. seed + K - 1``), values averaged per image: one
    #: draw of a two-class classifier's weights decides, for every image at once, e.g. whether a map is all zero
    randomisation_seeds: int = 5
    cascade: bool = True
    #: how to read the layer's output as (N, C, h, w) maps: None, "vit", "swin" or a callable (see cfcam.core.layouts)
    reshape: object = None
    #: extra named methods: name -> {"method": registered name, "layer": ..., "options": {...}} (the ablation)
    variants: dict = field(default_factory=dict)


@dataclass
class MethodRun:
    """What one method produced: its rows, mean deletion/insertion curves and cascade means (for the plots)."""

    method: str
    rows: list
    curves: dict
    cascade: dict


NO_MASK = "no mask for this image (none given, or no non-zero pixel): nothing to point at"

SLOW_STAGES = ("maps", "localisation", "confidence", "curves", "road", "randomisation", "cascade", "class",
               "gradient noise", "input noise")


class Evaluation:
    """Runs the metrics for each method; ``progress`` (a callable ``(done, total, label)``) reports each stage."""

    def __init__(self, model: nn.Module, data: EvalData, settings: EvalSettings | None = None,
                 model_name: str = "", extra_metrics: Iterable[ExtraMetric] | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> None:
        self.model = model.eval()
        self.data = data
        self.settings = settings or EvalSettings()
        if not isinstance(self.settings.randomisation_seeds, int) or self.settings.randomisation_seeds < 1:
            raise ValueError(f"randomisation_seeds must be an integer >= 1, got {self.settings.randomisation_seeds!r}")
        self.extra_metrics = list(MODEL_METRICS.get(model_name, [])) + list(extra_metrics or [])
        self.progress = progress or (lambda done, total, label: None)
        #: methods that could not run on this model (name -> why), e.g. Ablation-CAM on a ViT layer
        self.failed: dict[str, str] = {}
        self.size = tuple(data.inputs.shape[-2:])

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
            self._base_cache = (logits, targets, fa.class_probability(self.model, x, targets, bs),
                                fa.class_probability(self.model, fa.mean_value_baseline(x), targets, bs))
        return self._base_cache

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

    def _maps(self, name, model, inputs, targets, timed=False):
        """Maps, per-image notes, and seconds per image when ``timed``."""
        maps, notes, seconds = [], [], 0.0
        bs = self.settings.batch_size
        with self._explainer(name, model) as explainer:
            for i in range(0, len(inputs), bs):
                t0 = time.perf_counter()
                done = run_batch(explainer, inputs[i:i + bs], [int(t) for t in targets[i:i + bs]])
                seconds += time.perf_counter() - t0
                maps.append(done.maps)
                notes += ["; ".join(r.notes) for r in done.results]
        return np.concatenate(maps), notes, seconds / max(len(inputs), 1)

    # -- one method -------------------------------------------------------------------------------------
    def run_method(self, name: str, index: int = 0, total: int = 1) -> MethodRun:
        s, d = self.settings, self.data
        probe = self._explainer(name, self.model)
        probe.remove()
        slow = not rb.reads_captured_gradient(probe)
        n = min(len(d), s.slow_n) if slow else len(d)
        sub = min(n, s.subset)
        x = d.inputs[:n]
        rows: list = []
        stage = [0]

        def step(label):
            self.progress(index * len(SLOW_STAGES) + stage[0], total * len(SLOW_STAGES), f"{name}: {label}")
            stage[0] += 1

        def add(metric, values, notes=None, default_note="undefined"):
            for i, v in enumerate(np.asarray(values, dtype=np.float64)):
                note = ""
                if not np.isfinite(v):
                    note = (notes[i] if notes and notes[i] else "") or default_note
                rows.append((name, i, metric, float(v), note))

        step("maps")
        logits, targets, p_orig, p_base = (v[:n] for v in self._base())
        maps, notes, sec = self._maps(name, self.model, x, targets, timed=True)
        zero = is_zero_map(maps)
        zero_note = [nt or ("the map is zero everywhere" if z else "") for nt, z in zip(notes, zero)]
        add("zero_maps", zero.astype(float))
        add("ms_per_image", np.full(n, sec * 1000.0))

        step("localisation")
        if d.masks is not None:
            masks = np.asarray(d.masks[:n], dtype=bool)
            given = masks.reshape(n, -1).any(axis=1)
            loc_note = [nt if ok else NO_MASK for nt, ok in zip(zero_note, given)]
            add("pointing_game", _masked_only(pointing_game_scores, maps, masks, given), loc_note)
            add("energy_in_mask", _masked_only(energy_in_mask, maps, masks, given), loc_note)
        for fn in self.extra_metrics:
            for metric, values in fn(maps, d, targets).items():
                add(metric, values, zero_note)

        step("confidence")
        drop, increase = fa.chattopadhay_drop_increase(self.model, x, maps, targets, p_orig)
        add("average_drop", drop)
        add("increase_in_confidence", increase)
        add("average_drop_published", fa.average_drop_published(self.model, x, maps, targets, p_orig, s.batch_size))
        add("average_increase_published",
            fa.average_increase_published(self.model, x, maps, targets, p_base, s.batch_size))

        step("curves")
        dele, ins = fa.deletion_insertion_curves(self.model, x[:sub], maps[:sub], targets[:sub], s.steps,
                                                 s.substrate, s.batch_size * 4)
        add("deletion_auc", fa.auc(dele), zero_note)
        add("insertion_auc", fa.auc(ins), zero_note)
        curves = {"deletion": _nanmean_rows(dele), "insertion": _nanmean_rows(ins)}

        step("road")
        add("road", fa.road(self.model, x[:sub], maps[:sub], targets[:sub], s.road_percentiles, s.seed), zero_note)

        step("randomisation")
        fc = sa.classifier_layer(self.model)
        draws = {"spearman": [], "ssim": [], "zero": []}
        for draw in range(s.randomisation_seeds):
            rmaps, rnotes, _ = self._maps(name, self._model((fc,), draw), x, targets)
            draws["spearman"].append([spearman(a, b) for a, b in zip(maps, rmaps)])
            draws["ssim"].append([ssim(a, b) for a, b in zip(maps, rmaps)])
            draws["zero"].append(is_zero_map(rmaps).astype(float))
            if draw == 0:
                both = [_joined(a, b) for a, b in zip(zero_note, rnotes)]
        add("randomisation_spearman", _mean_of_defined(draws["spearman"]), both,
            "undefined: a constant map has no ranks")
        add("randomisation_ssim", _mean_of_defined(draws["ssim"]))
        add("zero_maps_randomised", _mean_of_defined(draws["zero"]))

        skip = "not run for this method: one forward pass per channel (see --slow-n)"
        step("cascade")
        cascade = {}
        if s.cascade and slow:
            for layer in sa.cascade_layers(self.model):
                add(f"cascade_spearman@{layer}", np.full(sub, np.nan), None, skip)
        elif s.cascade:
            layers: tuple = ()
            for layer in sa.cascade_layers(self.model):
                layers = layers + (layer,)
                cmaps, cnotes, _ = self._maps(name, self._model(layers), x[:sub], targets[:sub])
                values = [spearman(a, b) for a, b in zip(maps[:sub], cmaps)]
                add(f"cascade_spearman@{layer}", values, [_joined(a, b) for a, b in zip(zero_note, cnotes)],
                    "undefined: a constant map has no ranks")
                cascade[layer] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

        step("class")
        if slow:
            add("class_correlation", np.full(n, np.nan), None, skip)
            step("gradient noise")
            self._gradient_noise(name, x[:sub], targets[:sub], slow, add)
            step("input noise")
            add("input_noise_ssim", np.full(sub, np.nan), None, skip)
            return MethodRun(name, rows, curves, cascade)
        other = sa.runner_up(logits, None if d.targets is None else targets).numpy()
        omaps, onotes, _ = self._maps(name, self.model, x, other)
        add("class_correlation", [pearson(a, b) for a, b in zip(maps, omaps)],
            [_joined(a, b) for a, b in zip(zero_note, onotes)], "undefined: a constant map")
        add("zero_maps_runner_up", is_zero_map(omaps).astype(float))

        step("gradient noise")
        self._gradient_noise(name, x[:sub], targets[:sub], slow, add)

        step("input noise")
        gen = torch.Generator().manual_seed(s.seed)
        noisy = x[:sub] + s.input_noise * torch.randn(x[:sub].shape, generator=gen)
        nmaps, _, _ = self._maps(name, self.model, noisy, targets[:sub])
        add("input_noise_ssim", [ssim(a, b) for a, b in zip(maps[:sub], nmaps)])
        return MethodRun(name, rows, curves, cascade)

    def _gradient_noise(self, name, x, targets, slow, add) -> None:
        s = self.settings
        metrics = [(f"robustness_published_ssim@{v:g}", f"robustness_published_mse@{v:g}", "published", v)
                   for v in s.published_sigmas]
        metrics += [(f"robustness_fair_ssim@{v:g}", None, "fair", v) for v in s.fair_sigmas]
        if slow:
            for ssim_name, mse_name, _, _ in metrics:
                for m in (ssim_name, mse_name):
                    if m:
                        add(m, np.full(len(x), np.nan), None, "not applicable: the method reads no captured gradient")
            return
        with self._explainer(name, self.model) as explainer, \
                ActivationsAndGradients(self.model, self._layer(name), self.settings.reshape) as grab:
            cap = grab(x, [int(t) for t in targets])
            clean = rb.maps_from_capture(explainer, cap.activations, cap.gradients, self.size)
            for ssim_name, mse_name, protocol, sigma in metrics:
                gen = torch.Generator().manual_seed(s.seed)
                noisy = rb.gradient_noise_maps(explainer, cap.activations, cap.gradients, self.size, sigma,
                                               protocol, gen)
                add(ssim_name, [ssim(a, b) for a, b in zip(clean, noisy)])
                if mse_name:
                    add(mse_name, [mse(a, b) for a, b in zip(clean, noisy)])

    def run(self, methods: Iterable[str] | None = None) -> list[MethodRun]:
        methods = list(methods or method_names())
        runs = []
        for i, name in enumerate(methods):
            try:
                runs.append(self.run_method(name, i, len(methods)))
            except ValueError as exc:  # the method cannot explain this layer (said in self.failed, not dropped silently)
                self.failed[name] = str(exc)
        self.progress(len(methods) * len(SLOW_STAGES), len(methods) * len(SLOW_STAGES), "done")
        return runs


def _joined(a: str, b: str) -> str:
    parts = [p for p in (a, b and f"other map: {b}") if p]
    return "; ".join(parts)


def _mean_of_defined(draws) -> np.ndarray:
    """Per image, the mean over draws ``(K, n)`` of the defined values; NaN where no draw is defined."""
    values = np.asarray(draws, dtype=np.float64)
    defined = np.isfinite(values)
    counts = defined.sum(axis=0)
    sums = np.where(defined, values, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(values.shape[1], np.nan), where=counts > 0)


def _masked_only(metric, maps, masks, given) -> np.ndarray:
    """``metric(maps, masks)`` for the images with a mask (``given``), NaN for the others."""
    out = np.full(len(maps), np.nan)
    if given.any():
        out[given] = metric(maps[given], masks[given])
    return out


def _nanmean_rows(curves: np.ndarray) -> np.ndarray:
    ok = np.isfinite(curves).all(axis=1)
    return curves[ok].mean(axis=0) if ok.any() else np.full(curves.shape[1], np.nan)
