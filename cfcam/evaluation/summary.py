"""From per-image rows to the summary table: mean and a 95 % percentile-bootstrap interval per method and metric.

``n`` counts the images where the metric is defined; an image whose map is all zero is not averaged in
(its row in ``per_image.csv`` says why) and is counted by the ``zero_maps`` metric instead.
"""

from __future__ import annotations

import csv
import io

import numpy as np

SUMMARY_COLUMNS = ("method", "metric", "mean", "ci_low", "ci_high", "n")
PER_IMAGE_COLUMNS = ("method", "image", "metric", "value", "note", "target")


def bootstrap_ci(values, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the finite ``values`` (NaN, NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1 or np.ptp(v) == 0:
        return float(v[0]) if v.size == 1 else float(v.mean()), float(v[0]) if v.size == 1 else float(v.mean())
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def summarise(rows, seed: int = 0) -> list[tuple]:
    """``(method, metric, mean, ci_low, ci_high, n)`` per method and metric, in first-seen order."""
    groups: dict[tuple[str, str], list[float]] = {}
    for method, _image, metric, value, _note in rows:
        groups.setdefault((method, metric), []).append(value)
    out = []
    for (method, metric), values in groups.items():
        v = np.asarray(values, dtype=np.float64)
        finite = v[np.isfinite(v)]
        mean = float(finite.mean()) if finite.size else float("nan")
        lo, hi = bootstrap_ci(finite, seed=seed)
        out.append((method, metric, mean, lo, hi, int(finite.size)))
    return out


def _fmt(x) -> str:
    if isinstance(x, float):
        return "nan" if not np.isfinite(x) else f"{x:.6g}"
    return str(x)


def to_csv(rows, columns) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(x) for x in row])
    return buf.getvalue()


def read_summary(text: str) -> list[tuple]:
    """Parse a ``summary.csv`` back into typed rows."""
    reader = csv.DictReader(io.StringIO(text))
    return [(r["method"], r["metric"], float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]))
            for r in reader]
