"""Wall time of the default ``cfcam evaluate`` (what ``make evaluate`` runs), on an idle machine and with one
core kept busy by another process, side by side; and where the time goes (CPU seconds per metric).

Target: the default evaluation in at most 10 minutes on 2 idle cores. Three runs, side by side:

* ``idle``: the default, which on 2 idle cores shares the methods out to two worker processes of one torch
  thread each (``cfcam.evaluation.workers``);
* ``idle, 1 process``: the same with ``--workers 1``, everything in one process on the threads
  ``choose_threads`` picks (what the default was before the workers);
* ``busy``: the default while another process spins on one core for the whole run (what a second user, a
  notebook or a test run does on a shared machine): the evaluation then finds one idle CPU and runs in one
  process on one torch thread (``cfcam.evaluation.engine.choose_threads``).

The machine's load average is printed before each run: on a shared machine every number grows with it, so
report it with the times. Each run is a fresh ``python -m cfcam evaluate`` process writing to a temporary folder.

Run: .venv/bin/python benchmarks/bench_evaluate.py [--n N] [--methods A,B] [--subset N] [--only idle,busy]
(no options: the default evaluation, 100 images and every method, three times: about 30 minutes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 600


def spin(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


RUNS = {"idle": ([], False), "idle, 1 process": (["--workers", "1"], False), "busy": ([], True)}


def run(extra: list[str], busy: bool, keep: str | None = None) -> dict:
    """One ``cfcam evaluate`` with ``extra`` options; returns wall seconds, processes, threads and the load
    before."""
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True) if busy else None
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        out = keep or scratch
        if spinner:
            spinner.start()
            time.sleep(2)  # let the load average notice it
        t0 = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-m", "cfcam", "evaluate", "-o", out, "--quiet",
                            *([] if keep else ["--no-plots"]), *extra], cwd=ROOT, check=True)
        finally:
            seconds = time.perf_counter() - t0
            if spinner:
                stop.set()
                spinner.join()
        info = json.loads((Path(out) / "run.json").read_text())
    return {"seconds": seconds, "threads": info.get("threads"), "workers": info.get("workers", 1), "load": load,
            "cpu": info.get("cpu_seconds", {}), "methods": info.get("method_seconds", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--methods", default=None)
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="write the first run's report, plots included, to DIR (e.g. docs/evaluation: the "
                             "committed table is then the timed run's)")
    parser.add_argument("--only", default=None, help=f"comma-separated runs among: {', '.join(RUNS)}")
    args = parser.parse_args()
    extra = [*(["--n", str(args.n)] if args.n else []), *(["--subset", str(args.subset)] if args.subset else []),
             *(["--methods", args.methods] if args.methods else [])]
    print(f"cfcam evaluate {' '.join(extra) or '(defaults)'}; {os.cpu_count()} CPUs; target <= {TARGET_SECONDS} s "
          "on 2 idle cores")
    only = [o.strip() for o in args.only.split(",")] if args.only else list(RUNS)
    unknown = [o for o in only if o not in RUNS]
    if unknown:
        parser.error(f"--only: unknown run {', '.join(unknown)}; expected some of: {', '.join(RUNS)}")
    results = {}
    for label in only:
        options, busy = RUNS[label]
        results[label] = run(extra + options, busy=busy, keep=args.keep if not results else None)
        print(f"{label}: {results[label]['seconds']:.0f} s", flush=True)
    print(f"{'':28s}" + "".join(f"{k:>18s}" for k in results))
    print(f"{'load average before':28s}" + "".join(f"{r['load']:18.1f}" for r in results.values()))
    print(f"{'processes chosen':28s}" + "".join(f"{r['workers']!s:>18s}" for r in results.values()))
    print(f"{'torch threads each':28s}" + "".join(f"{r['threads']!s:>18s}" for r in results.values()))
    print(f"{'wall seconds':28s}" + "".join(f"{r['seconds']:18.0f}" for r in results.values()))
    if len(results) > 1:
        base = next(iter(results.values()))["seconds"]
        print(f"{'ratio to the first':28s}" + "".join(f"{r['seconds'] / base:18.2f}" for r in results.values()))
    first = next(iter(results.values()))
    print("\nCPU seconds per metric (first run), most first:")
    for metric, sec in sorted(first["cpu"].items(), key=lambda kv: -kv[1]):
        print(f"  {metric:34s} {sec:8.1f}")
    print("\nWall seconds per method (first run; in its worker process when there were several):")
    for method, sec in sorted(first["methods"].items(), key=lambda kv: -kv[1]):
        print(f"  {method:34s} {sec:8.1f}")


if __name__ == "__main__":
    main()
