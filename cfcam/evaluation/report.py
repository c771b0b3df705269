"""Writing an evaluation to a folder: ``summary.csv``, ``per_image.csv``, ``table.md``, ``run.json``,
``runs.json`` (the curves and cascade behind the plots) and plots; merging folders into one report.

Every file is written atomically (a reader never sees half a file). The Markdown table puts the headline
metrics side by side, each as ``mean [95 % interval]``, with ``n`` where a metric was computed on fewer images
than the run (a subset, or maps where it is undefined).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..images.writing import write_bytes_atomic, write_text_atomic
from .summary import PER_IMAGE_COLUMNS, SUMMARY_COLUMNS, summarise, to_csv

#: Headline metrics of the Markdown table and the bar plot, with the direction that is better.
HEADLINE = (
    ("pointing_game", "higher"), ("energy_in_mask", "higher"), ("deletion_auc", "lower"),
    ("insertion_auc", "higher"), ("road", "higher"), ("average_drop", "lower"),
    ("increase_in_confidence", "higher"), ("average_drop_published", "lower"),
    ("average_increase_published", "higher"), ("randomisation_spearman", "lower"),
    ("randomisation_ssim", "lower"), ("class_correlation", "lower"),
    ("robustness_published_ssim@0.1", "higher"), ("robustness_fair_ssim@0.1", "higher"),
    ("input_noise_ssim", "higher"), ("zero_maps", "lower"), ("zero_maps_runner_up", "lower"),
    ("ms_per_image", "lower"),
)


def markdown_table(summary, metrics=None) -> str:
    """Methods as rows, metrics as columns, ``mean [ci_low, ci_high]`` and ``(n=...)`` in each cell."""
    metrics = [m for m, _ in HEADLINE] if metrics is None else list(metrics)
    by = {(r[0], r[1]): r for r in summary}
    methods = list(dict.fromkeys(r[0] for r in summary))
    present = [m for m in metrics if any((meth, m) in by for meth in methods)]
    direction = dict(HEADLINE)
    head = "| method | " + " | ".join(f"{m} ({'↑' if direction.get(m) == 'higher' else '↓'})"
                                      if m in direction else m for m in present) + " |"
    lines = [head, "|" + "---|" * (len(present) + 1)]
    for meth in methods:
        cells = []
        for m in present:
            r = by.get((meth, m))
            if r is None:
                cells.append("")
            elif r[5] == 0:
                cells.append("undefined (n=0)")
            elif m == "ms_per_image":
                cells.append(f"{r[2]:.0f}")
            else:
                cells.append(f"{r[2]:.3g} [{r[3]:.3g}, {r[4]:.3g}] (n={r[5]})")
        lines.append(f"| {meth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_bars(summary, out: Path) -> None:
    """One panel per headline metric: a bar per method with its 95 % interval."""
    from matplotlib.figure import Figure

    metrics = [m for m, _ in HEADLINE if m != "ms_per_image" and any(r[1] == m for r in summary)]
    methods = list(dict.fromkeys(r[0] for r in summary))
    by = {(r[0], r[1]): r for r in summary}
    cols = 4
    rows = int(np.ceil(len(metrics) / cols)) or 1
    fig = Figure(figsize=(4 * cols, 2.8 * rows))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, k + 1)
        means = np.array([by[(m, metric)][2] if (m, metric) in by else np.nan for m in methods])
        lo = np.array([by[(m, metric)][3] if (m, metric) in by else np.nan for m in methods])
        hi = np.array([by[(m, metric)][4] if (m, metric) in by else np.nan for m in methods])
        err = np.nan_to_num(np.vstack([means - lo, hi - means]).clip(min=0))
        ax.bar(range(len(methods)), np.nan_to_num(means), yerr=err, color="tab:blue", capsize=2)
        ax.set_xticks(range(len(methods)), methods, rotation=70, fontsize=7)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    write_bytes_atomic(_png(fig), out)


def plot_curves(runs, out: Path) -> None:
    """Mean deletion and insertion curves per method."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    for k, kind in enumerate(("deletion", "insertion")):
        ax = fig.add_subplot(1, 2, k + 1)
        for run in runs:
            curve = run.curves.get(kind)
            if curve is not None and np.isfinite(curve).all():
                ax.plot(np.linspace(0, 1, len(curve)), curve, label=run.method)
        ax.set_xlabel(f"fraction of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("p(class)")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)")
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    write_bytes_atomic(_png(fig), out)


def plot_cascade(runs, out: Path) -> None:
    """Mean Spearman correlation with the original map as layers are re-initialised from the top down."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    for run in runs:
        if run.cascade:
            layers = list(run.cascade)
            ax.plot(range(len(layers)), [run.cascade[l] for l in layers], marker="o", label=run.method)
            ax.set_xticks(range(len(layers)), [f"+{l}" for l in layers], rotation=30)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Spearman with the original map")
    ax.set_title("Model-parameter randomisation, cascading from the output (lower = passes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_bytes_atomic(_png(fig), out)


def runs_to_json(runs) -> str:
    """The plotted parts of each run (mean curves, cascade means), so that folders can be merged later."""
    return json.dumps({run.method: {"curves": {k: [float(v) for v in c] for k, c in run.curves.items()},
                                    "cascade": run.cascade} for run in runs}, indent=1) + "\n"


def read_runs(folder) -> list:
    """The runs of an evaluation folder (``per_image.csv`` and ``runs.json``) as ``MethodRun`` objects."""
    import csv

    from .engine import MethodRun

    folder = Path(folder)
    saved = folder / "runs.json"  # absent in folders written before it existed: no curves then
    extra = json.loads(saved.read_text()) if saved.is_file() else {}
    rows: dict[str, list] = {}
    with open(folder / "per_image.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["method"], []).append((r["method"], int(r["image"]), r["metric"], float(r["value"]),
                                                     r["note"]))
    return [MethodRun(m, rows[m], {k: np.asarray(v) for k, v in extra.get(m, {}).get("curves", {}).items()},
                      extra.get(m, {}).get("cascade", {})) for m in rows]


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


def write_report(runs, folder, info: dict, plots: bool = True) -> list:
    """Write everything for ``runs`` (a list of :class:`~cfcam.evaluation.engine.MethodRun`) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [row for run in runs for row in run.rows]
    write_text_atomic(runs_to_json(runs), folder / "runs.json")
    summary = summarise(rows, seed=info.get("seed", 0))
    write_text_atomic(to_csv(summary, SUMMARY_COLUMNS), folder / "summary.csv")
    write_text_atomic(to_csv(rows, PER_IMAGE_COLUMNS), folder / "per_image.csv")
    write_text_atomic(f"# cfcam evaluate\n\n{info.get('description', '')}\n\n" + markdown_table(summary),
                      folder / "table.md")
    write_text_atomic(json.dumps(info, indent=2, sort_keys=True) + "\n", folder / "run.json")
    if plots:
        plot_bars(summary, folder / "metrics.png")
        plot_curves(runs, folder / "curves.png")
        plot_cascade(runs, folder / "cascade.png")
    return summary
