"""The evaluation's plots: a reader can tell every method apart and see how many images each value rests on.

Every method keeps one colour and one marker in every plot (no colour repeats, however many methods); a bar
carries its ``n``; an undefined value is drawn as "n/a", not left blank; a value from one image is a point,
not a bar that looks like an average.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..images.writing import write_bytes_atomic

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")


def method_styles(methods) -> dict[str, tuple]:
    """``method -> (colour, marker)``, distinct for every method: 20 colours (tab20, dark shades first), each
    colour with a different marker once they are used up."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    colours = list(tab20[0::2]) + list(tab20[1::2])
    return {m: (colours[i % len(colours)], MARKERS[(i + i // len(colours)) % len(MARKERS)])
            for i, m in enumerate(dict.fromkeys(methods))}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_bars(summary, out: Path | None, metrics=None):
    """One panel per headline metric: a bar per method with its 95 % interval and its ``n`` (a point where
    n = 1, "n/a" where undefined); written to ``out`` (if given) and returned."""
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    from .registry import headline

    wanted = headline() if metrics is None else list(metrics)
    metrics = [m for m in wanted if m != "ms_per_image" and any(r[1] == m for r in summary)]
    methods = list(dict.fromkeys(r[0] for r in summary))
    styles = method_styles(methods)
    by = {(r[0], r[1]): r for r in summary}
    cols = 4
    rows = int(np.ceil(len(metrics) / cols)) or 1
    fig = Figure(figsize=(4.4 * cols, 3.2 * rows))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, k + 1)
        # labels in axes height (x: the method): a label in data units far from a narrow y range would
        # stretch the saved figure without bound
        where = blended_transform_factory(ax.transData, ax.transAxes)
        for i, m in enumerate(methods):
            colour, marker = styles[m]
            r = by.get((m, metric))
            if r is None or r[5] == 0 or not np.isfinite(r[2]):
                ax.text(i, 0.5, "n/a", ha="center", va="center", fontsize=6, rotation=90, color="grey",
                        transform=where)
                continue
            mean, lo, hi, n = r[2], r[3], r[4], r[5]
            if n == 1:
                ax.plot([i], [mean], marker=marker, color=colour, markeredgecolor="black", linestyle="none")
            else:
                err = np.nan_to_num(np.array([[mean - lo], [hi - mean]]).clip(min=0))
                ax.bar([i], [mean], yerr=err, color=colour, capsize=2, edgecolor="black", linewidth=0.3)
            ax.text(i, 0.98, f"n={n}", ha="center", va="top", fontsize=5, rotation=90, transform=where)
        ax.set_xticks(range(len(methods)), methods, rotation=70, fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.margins(y=0.25)
    fig.tight_layout()
    if out is not None:
        write_bytes_atomic(_png(fig), out)
    return fig


def plot_curves(runs, out: Path) -> None:
    """Mean deletion and insertion curves per method (its colour and marker; n in the legend)."""
    from matplotlib.figure import Figure

    styles = method_styles([run.method for run in runs])
    fig = Figure(figsize=(11, 4.2))
    for k, kind in enumerate(("deletion", "insertion")):
        ax = fig.add_subplot(1, 2, k + 1)
        for run in runs:
            curve = run.curves.get(kind)
            colour, marker = styles[run.method]
            if curve is not None and len(curve) and np.isfinite(curve).all():
                n = sum(1 for r in run.rows if r[2] == f"{kind}_auc" and np.isfinite(r[3]))
                ax.plot(np.linspace(0, 1, len(curve)), curve, color=colour, marker=marker, markersize=3,
                        label=f"{run.method} (n={n})")
            else:
                ax.plot([], [], color=colour, marker=marker, label=f"{run.method} (n/a)")
        ax.set_xlabel(f"fraction of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        ax.set_ylabel("p(explained class)")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)")
    fig.axes[0].legend(fontsize=6)
    fig.tight_layout()
    write_bytes_atomic(_png(fig), out)


def plot_cascade(runs, out: Path) -> None:
    """Mean Spearman correlation with the original map as layers are re-initialised, cumulatively, from the
    output down (left) and from the input up (right); the "+fc" point uses the classifier check's draws."""
    from matplotlib.figure import Figure

    styles = method_styles([run.method for run in runs])
    fig = Figure(figsize=(12, 4.4))
    for k, (prefix, title) in enumerate((("cascade_spearman@", "from the output down"),
                                         ("cascade_bottom_up_spearman@", "from the input up"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for run in runs:
            colour, marker = styles[run.method]
            steps = cascade_means(run, prefix)
            if steps:
                layers = list(steps)
                ax.plot(range(len(layers)), [steps[l] for l in layers], marker=marker, color=colour,
                        label=run.method)
                ax.set_xticks(range(len(layers)), [f"+{l}" for l in layers], rotation=30)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel("Spearman with the original map")
        ax.set_title(f"Cascading randomisation {title} (lower = passes)", fontsize=9)
    if fig.axes[0].lines:
        fig.axes[0].legend(fontsize=6)
    fig.tight_layout()
    write_bytes_atomic(_png(fig), out)


def cascade_means(run, prefix: str = "cascade_spearman@") -> dict[str, float]:
    """``layer -> mean Spearman`` over the defined rows of a run's cascade family, in the rows' order."""
    values: dict[str, list] = {}
    for _m, _i, metric, value, _note in run.rows:
        if metric.startswith(prefix):
            values.setdefault(metric[len(prefix):], []).append(value)
    out = {}
    for layer, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        if np.isfinite(v).any():
            out[layer] = float(np.nanmean(v))
    return out
