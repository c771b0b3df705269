"""Computation per slider move in the notebook explorers, on the demo model (drawing excluded).

Target: at most 50 ms of computation per move. The first draw of an image/layer (the forward/backward pass
and the distance matrix) is reported separately: it runs once and is cached. Each control is moved through
several values, round-robin over the explorers' controls, and the median and max per control are printed.

Run: .venv/bin/python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import statistics
import sys
import time

import ipywidgets as W
import torch

from cfcam.teaching.widgets import Session, clustering_explorer, dashboard, filtering_explorer, hooks_explorer

TARGET = 0.050


def moves(control) -> list:
    if isinstance(control, (W.FloatSlider, W.IntSlider)):
        lo, hi = control.min, control.max
        return [lo + (hi - lo) * f for f in (0.1, 0.3, 0.5, 0.7, 0.9)]
    return []  # dropdowns pick another image, layer or class: a new capture, reported as a first draw


def main() -> int:
    torch.set_num_threads(2)
    session = Session()
    print(f"demo model, {len(session.images)} images; computation per move (drawing excluded)")
    ok = True
    for build in (hooks_explorer, clustering_explorer, filtering_explorer, dashboard):
        start = time.perf_counter()
        explorer = build(session)
        first = time.perf_counter() - start
        print(f"\n{build.__name__}: first draw {1000 * first:.0f} ms (capture and distances, then cached)")
        for name, control in explorer.controls.items():
            values = moves(control)
            if not values:
                continue
            original = control.value
            times = []
            for value in values:
                if isinstance(control, W.IntSlider):
                    value = int(round(value))
                control.value = value
                times.append(explorer.last_seconds)
            control.value = original
            med, worst = statistics.median(times), max(times)
            flag = "ok" if worst <= TARGET else "OVER 50 ms"
            ok &= worst <= TARGET
            print(f"  {name:22s} median {1000 * med:6.1f} ms   max {1000 * worst:6.1f} ms   {flag}")
    print("\nall slider moves within 50 ms" if ok else "\nsome slider moves over 50 ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
