"""Writing an evaluation to a folder: ``summary.csv``, ``per_image.csv``, ``table.md``, ``run.json``,
``runs.json`` (the curves and cascade behind the plots) and plots; merging folders into one report.

Every file is written atomically (a reader never sees half a file). The Markdown table puts the headline
metrics side by side, each as ``mean [95 % interval]``, with ``n`` where a metric was computed on fewer images
than the run (a subset, or maps where it is undefined).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..images.writing import write_text_atomic
from . import registry
from .plots import plot_bars, plot_cascade, plot_curves  # noqa: F401 - their old import path
from .summary import PER_IMAGE_COLUMNS, SUMMARY_COLUMNS, summarise, to_csv

#: Headline metrics of the Markdown table and the bar plot, with the direction that is better (from the
#: registry: kept as a name for older callers)
HEADLINE = tuple((m, registry.direction(m)) for m in registry.headline())

#: the discrimination check: a method's value "equals" the random map's when they differ by less than this
#: share of the largest value (float32 probabilities differ in their last digits)
SAME = 1e-4


def draw_interval(per_draw, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over images of each image's mean over draws, resampling the
    images *and* the draws (``per_draw``: ``(K, n)``, NaN where undefined): one draw of a classifier's weights
    moves every image at once, so resampling images alone understates the uncertainty."""
    d = np.asarray(per_draw, dtype=np.float64)
    if d.ndim != 2 or not np.isfinite(d).any():
        return float("nan"), float("nan")
    k, n = d.shape
    finite = np.isfinite(d)
    values = np.where(finite, d, 0.0)
    rows, cols = _resampled(k, n, resamples, seed)
    means = np.empty(resamples)
    block = max(1, 2_000_000 // (k * n))  # resamples at a time: a few tens of MB
    for start in range(0, resamples, block):
        r, c = rows[start:start + block, :, None], cols[start:start + block, None, :]
        sums = values[r, c].sum(axis=1)  # over the drawn draws, per resampled image
        counts = finite[r, c].sum(axis=1)
        defined = counts > 0  # an image with no defined value in the drawn draws is left out of the mean
        totals = np.where(defined, sums / np.maximum(counts, 1), 0.0).sum(axis=1)
        kept = defined.sum(axis=1)
        means[start:start + block] = np.where(kept > 0, totals / np.maximum(kept, 1), np.nan)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.nanpercentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


@functools.lru_cache(maxsize=16)
def _resampled(k: int, n: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The draws and images each bootstrap resample picks (the same for every metric of a run with that shape:
    drawn once)."""
    rng = np.random.default_rng(seed)
    picks = [(rng.integers(0, k, k), rng.integers(0, n, n)) for _ in range(resamples)]  # draws, then images
    rows, cols = np.stack([r for r, _ in picks]), np.stack([c for _, c in picks])
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def draw_spread(per_draw) -> tuple[float, float, int]:
    """``(lowest, highest, K)`` of the per-draw means over the images: how much one draw moves the value."""
    d = np.asarray(per_draw, dtype=np.float64)
    means = [np.nanmean(row) for row in d if np.isfinite(row).any()]
    return (float(min(means)), float(max(means)), len(d)) if means else (float("nan"), float("nan"), len(d))


def with_draw_intervals(summary, runs, seed: int = 0) -> list[tuple]:
    """``summary`` with the interval of every metric that averages random draws replaced by
    :func:`draw_interval` (the mean and ``n`` are unchanged)."""
    draws = {(run.method, metric): d for run in runs for metric, d in getattr(run, "draws", {}).items()}
    out = []
    for r in summary:
        d = draws.get((r[0], r[1]))
        if d is not None and r[5] > 0:
            lo, hi = draw_interval(d, seed=seed)
            r = (r[0], r[1], r[2], min(lo, r[2]), max(hi, r[2]), r[5])
        out.append(r)
    return out


def discrimination(runs, reference: str = "random") -> dict[str, str]:
    """For each metric the registry asks to check: a sentence when it cannot tell the maps apart on this
    model (every method's value equals the ``reference`` map's on nearly every image), with what was measured."""
    values = {}
    for run in runs:
        for method, image, metric, value, _note in run.rows:
            values.setdefault(metric, {}).setdefault(method, {})[image] = value
    found = {}
    for metric, by_method in values.items():
        entry = registry.get(metric)
        if entry is None or not entry.check_discriminates or reference not in by_method:
            continue
        ref = by_method[reference]
        tol = SAME * max([abs(v) for v in ref.values() if np.isfinite(v)] + [1e-2])
        tied, same, total = [], 0, 0
        for method, per_image in by_method.items():
            if method == reference:
                continue
            pairs = [(v, ref[i]) for i, v in per_image.items()
                     if i in ref and np.isfinite(v) and np.isfinite(ref[i])]
            equal = sum(abs(v - r) <= tol for v, r in pairs)
            same, total = same + equal, total + len(pairs)
            if pairs and equal / len(pairs) >= 0.9:
                tied.append(method)
        others = len(by_method) - 1
        if tied and len(tied) * 2 >= others:
            ref_values = np.array([v for v in ref.values() if np.isfinite(v)])
            big = np.abs(ref_values - np.median(ref_values)) > 10 * max(np.median(np.abs(ref_values)), 1e-3)
            found[metric] = (
                f"does not discriminate on this model: {len(tied)} of {others} methods ({', '.join(tied)}) get "
                f"the random map's value on at least 90 % of the images ({same} of {total} (method, image) pairs "
                f"in all); the random map's values have median {np.median(ref_values):.3g}, and {int(big.sum())} "
                f"of {len(ref_values)} images (max {np.max(np.abs(ref_values)):.3g}) carry its mean "
                f"{ref_values.mean():.3g}: the model's p_c on the perturbed image hardly depends on the map")
    return found


def markdown_table(summary, metrics=None, draws=None, flags=None) -> str:
    """Methods as rows, metrics as columns, ``mean [ci_low, ci_high]`` and ``(n=...)`` in each cell;
    ``draws`` (``(method, metric) -> (lo, hi, K)``) adds the spread of the per-draw means, ``flags``
    (``metric -> sentence``) marks a column with a dagger."""
    metrics = registry.headline() if metrics is None else list(metrics)
    draws, flags = draws or {}, flags or {}
    by = {(r[0], r[1]): r for r in summary}
    methods = list(dict.fromkeys(r[0] for r in summary))
    present = [m for m in metrics if any((meth, m) in by for meth in methods)]
    arrow = {"higher": " (↑)", "lower": " (↓)"}

    def title(m):
        return f"{m}{arrow.get(registry.direction(m), '')}{' †' if m in flags else ''}"

    lines = ["| method | " + " | ".join(title(m) for m in present) + " |", "|" + "---|" * (len(present) + 1)]
    for meth in methods:
        cells = []
        for m in present:
            r = by.get((meth, m))
            if r is None:
                cells.append("n/a (not run)")
            elif r[5] == 0:
                cells.append("undefined (n=0)")
            elif m == "ms_per_image":
                cells.append(f"{r[2]:.0f} (n={r[5]})")
            elif r[5] == 1:
                cells.append(f"{r[2]:.3g} (n=1)")
            else:
                spread = draws.get((meth, m))
                extra = f"; {spread[2]} draws: {spread[0]:.2g} to {spread[1]:.2g}" if spread else ""
                cells.append(f"{r[2]:.3g} [{r[3]:.3g}, {r[4]:.3g}] (n={r[5]}{extra})")
        lines.append(f"| {meth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def legend(metrics, flags=None) -> str:
    """What each column is, from the registry: category, which class it scores, on which images, what it means."""
    follows = {"mask": "the class the mask marks (lesion)", "explained": "the explained class (top class)",
               "both": "explained class vs runner-up", "": "-"}
    lines = ["| column | category | better | scores | images | what |", "|---|---|---|---|---|---|"]
    for m in metrics:
        e = registry.get(m)
        if e is None:
            continue
        lines.append(f"| {m} | {e.category} | {e.direction or '-'} | {follows[e.follows]} | {e.images} | {e.doc} |")
    for m, why in (flags or {}).items():
        lines.append(f"\n† `{m}` {why}.")
    return "\n".join(lines) + "\n"


SPLIT_METRICS = ("pointing_game", "energy_in_mask", "zero_maps_localised", "average_drop",
                 "increase_in_confidence", "average_drop_published", "average_increase_published",
                 "deletion_auc", "insertion_auc")


def split_table(runs, metrics=SPLIT_METRICS) -> str:
    """The mean of each metric on the correctly predicted and on the mispredicted images, per method (from
    the ``mispredicted`` rows): what the mispredicted images do to the averages."""
    lines = ["| method | images | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for run in runs:
        flag = {r[1]: r[3] for r in run.rows if r[2] == "mispredicted"}
        if not any(v == 1.0 for v in flag.values()):
            continue
        for group, want in (("correct", 0.0), ("mispredicted", 1.0)):
            cells = []
            for m in metrics:
                v = np.array([r[3] for r in run.rows if r[2] == m and flag.get(r[1]) == want], dtype=float)
                v = v[np.isfinite(v)]
                cells.append(f"{v.mean():.3g} (n={v.size})" if v.size else "n/a")
            count = sum(1 for v in flag.values() if v == want)
            lines.append(f"| {run.method} | {group} ({count}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else "No image was mispredicted.\n"


def _nan_free(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def runs_to_json(runs) -> str:
    """The plotted parts of each run (mean curves, cascade means) and the per-draw values behind the
    draw-aware intervals, so that folders can be merged later (NaN written as null)."""
    return json.dumps({run.method: {
        "curves": {k: _nan_free(c) for k, c in run.curves.items()},
        "cascade": run.cascade,
        "draws": {m: [_nan_free(row) for row in d] for m, d in getattr(run, "draws", {}).items()},
    } for run in runs}, indent=1) + "\n"


def _array(rows) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def read_runs(folder) -> list:
    """The runs of an evaluation folder (``per_image.csv`` and ``runs.json``) as ``MethodRun`` objects."""
    import csv

    from .engine import MethodRun

    folder = Path(folder)
    saved = folder / "runs.json"  # absent in folders written before it existed: no curves then
    extra = json.loads(saved.read_text()) if saved.is_file() else {}
    rows: dict[str, list] = {}
    targets: dict[str, list] = {}
    with open(folder / "per_image.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["method"], []).append((r["method"], int(r["image"]), r["metric"], float(r["value"]),
                                                     r["note"]))
            targets.setdefault(r["method"], []).append(r.get("target") or "")
    runs = []
    for m in rows:
        saved_run = extra.get(m, {})
        curves = {k: np.array([np.nan if v is None else v for v in c]) for k, c in saved_run.get("curves", {}).items()}
        draws = {k: _array(d) for k, d in saved_run.get("draws", {}).items()}
        runs.append(MethodRun(m, rows[m], curves, saved_run.get("cascade", {}), targets[m], draws))
    return runs


def merge_folders(folders, out, plots: bool = True) -> list:
    """One report from several evaluation folders of the same images and settings (methods run separately, for
    example in parallel, or the slow methods on more images); ``run.json`` lists the parts."""
    folders = [Path(f) for f in folders]
    runs, parts = [], []
    for folder in folders:
        runs += read_runs(folder)
        parts.append(json.loads((folder / "run.json").read_text()))
    info = dict(parts[0])
    info["methods"] = [run.method for run in runs]
    info["parts"] = parts
    info["description"] = " | ".join(p.get("description", "") for p in parts)
    return write_report(runs, out, info, plots)


def per_image_rows(runs) -> list[tuple]:
    """``per_image.csv``'s rows: each run's rows with the class the row scored (``target``) appended."""
    out = []
    for run in runs:
        targets = list(getattr(run, "targets", []) or [])
        targets += [""] * (len(run.rows) - len(targets))
        out += [tuple(row) + (target,) for row, target in zip(run.rows, targets)]
    return out


def report_text(summary, runs, info: dict) -> str:
    """``table.md``: the table, what each column is, the flags, and the split by mispredicted images."""
    seed = info.get("seed", 0)
    draws = {(run.method, m): draw_spread(d) for run in runs for m, d in getattr(run, "draws", {}).items()}
    flags = discrimination(runs)
    columns = registry.headline()
    return (f"# cfcam evaluate\n\n{info.get('description', '')}\n\n"
            + markdown_table(summary, columns, draws, flags)
            + "\nIntervals: 95 % percentile bootstrap over the images; for the metrics that average random "
              "re-initialisations (randomisation_*), over the images *and* the draws, and the cell gives the "
              "lowest and highest per-draw mean. n counts the images where the value is defined. Localisation "
              "scores the class the mask marks on every image, an all-zero map as a miss "
              f"(seed {seed}).\n\n## The columns\n\n" + legend(columns, flags)
            + "\n## Correctly predicted and mispredicted images\n\n"
              "Localisation follows the lesion class on every image; the confidence metrics follow the explained "
              "(top) class, which on a mispredicted image is \"normal\".\n\n" + split_table(runs))


def write_report(runs, folder, info: dict, plots: bool = True) -> list:
    """Write everything for ``runs`` (a list of :class:`~cfcam.evaluation.engine.MethodRun`) to ``folder``;
    returns the summary (intervals of the draw-averaged metrics over images and draws)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [row for run in runs for row in run.rows]
    write_text_atomic(runs_to_json(runs), folder / "runs.json")
    summary = with_draw_intervals(summarise(rows, seed=info.get("seed", 0)), runs, seed=info.get("seed", 0))
    write_text_atomic(to_csv(summary, SUMMARY_COLUMNS), folder / "summary.csv")
    write_text_atomic(to_csv(per_image_rows(runs), PER_IMAGE_COLUMNS), folder / "per_image.csv")
    write_text_atomic(report_text(summary, runs, info), folder / "table.md")
    write_text_atomic(json.dumps(info, indent=2, sort_keys=True) + "\n", folder / "run.json")
    if plots:
        plot_bars(summary, folder / "metrics.png")
        plot_curves(runs, folder / "curves.png")
        plot_cascade(runs, folder / "cascade.png")
    return summary
