"""Wall time of the default ``cfcam evaluate`` (what ``make evaluate`` runs), on an idle machine and with one
core kept busy by another process, side by side; and where the time goes (CPU seconds per metric).

Target: the default evaluation in at most 10 minutes on 2 idle cores. The "busy" run starts a process that
spins on one core for the whole run (what a second user, a notebook or a test run does on a shared machine):
the evaluation then chooses one torch thread (see ``cfcam.evaluation.engine.choose_threads``). The machine's
load average is printed before each run: on a shared machine every number grows with it, so report it with
the times. Each run is a fresh ``python -m cfcam evaluate`` process writing to a temporary folder.

Run: .venv/bin/python benchmarks/bench_evaluate.py [--n N] [--methods A,B] [--subset N] [--only idle|busy]
(no options: the default evaluation, 100 images and every method, twice).
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


def run(extra: list[str], busy: bool) -> dict:
    """One ``cfcam evaluate`` with ``extra`` options; returns wall seconds, threads and the load before."""
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True) if busy else None
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        if spinner:
            spinner.start()
            time.sleep(2)  # let the load average notice it
        t0 = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-m", "cfcam", "evaluate", "-o", out, "--quiet", "--no-plots", *extra],
                           cwd=ROOT, check=True)
        finally:
            seconds = time.perf_counter() - t0
            if spinner:
                stop.set()
                spinner.join()
        info = json.loads((Path(out) / "run.json").read_text())
    return {"seconds": seconds, "threads": info.get("threads"), "load": load,
            "cpu": info.get("cpu_seconds", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--methods", default=None)
    parser.add_argument("--only", choices=["idle", "busy"], default=None)
    args = parser.parse_args()
    extra = [*(["--n", str(args.n)] if args.n else []), *(["--subset", str(args.subset)] if args.subset else []),
             *(["--methods", args.methods] if args.methods else [])]
    print(f"cfcam evaluate {' '.join(extra) or '(defaults)'}; {os.cpu_count()} CPUs; target <= {TARGET_SECONDS} s "
          "on 2 idle cores")
    results = {}
    for label in ("idle", "busy"):
        if args.only in (None, label):
            results[label] = run(extra, busy=label == "busy")
    print(f"{'':28s}" + "".join(f"{k:>16s}" for k in results))
    print(f"{'load average before':28s}" + "".join(f"{r['load']:16.1f}" for r in results.values()))
    print(f"{'torch threads chosen':28s}" + "".join(f"{r['threads']!s:>16s}" for r in results.values()))
    print(f"{'wall seconds':28s}" + "".join(f"{r['seconds']:16.0f}" for r in results.values()))
    first = next(iter(results.values()))
    print("\nCPU seconds per metric (first run), most first:")
    for metric, sec in sorted(first["cpu"].items(), key=lambda kv: -kv[1]):
        print(f"  {metric:34s} {sec:8.1f}")


if __name__ == "__main__":
    main()
