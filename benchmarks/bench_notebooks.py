"""Run time and peak memory of each notebook, run top to bottom offline on the CPU as a learner would: idle,
and with one other process keeping a core busy, side by side.

Targets: each notebook at most 60 s on 2 cores and under 1 GB of peak kernel memory (Binder has 2 GB, and a
learner may have two notebooks open); with a core busy (a Binder pod, a classroom server, a laptop doing
something else) at most 1.5x its idle time; and every cell that takes more than 5 s shows its progress (the
cells over 5 s are listed, and one that leaves the learner more than 5 s without new output is marked SILENT).

Each notebook runs idle and then busy, one right after the other, so both see the same machine; the busy run
starts one process spinning on a core (a plain Python loop) for its whole length. The machine's load average is
printed at the start and the end: on a shared machine run times grow with it, so compare the ratios, and
rerun on a quiet machine before quoting seconds.

The notebooks are run from a temporary copy of notebooks/ (as a learner's download would be), or from the
folder given with ``--notebooks`` (e.g. a copy made anywhere), so nothing is written into the repository.

Memory is the peak resident memory of the kernel process (sampled every 50 ms with psutil). Most of a kernel's
memory is the libraries it imports, and that depends on the install: PyTorch's default (CUDA) wheels take
about 0.55 GiB at ``import torch`` alone; so a baseline kernel that only imports what the notebooks import is
measured first, and each notebook's own use (peak minus that baseline) is printed beside its peak; a notebook
is within the memory target when its peak is under 1 GB, or, on an install whose imports alone come near that,
when its own use is under 0.25 GB.

Run: .venv/bin/python benchmarks/bench_notebooks.py [--notebooks DIR] [--idle-only] [NAME_PREFIX...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS, TARGET_BYTES, TARGET_OWN_BYTES = 60, 1e9, 0.25e9
TARGET_BUSY_RATIO, SLOW_CELL_SECONDS = 1.5, 5.0
BASELINE = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nimport sklearn.cluster\nimport torch\nimport cfcam\n"
            "import cfcam.teaching.widgets\nimport cfcam.teaching.checks\nprint(cfcam.__version__)")
SPIN = "while True:\n    pass\n"


def run(notebook: Path, out_dir: Path) -> tuple[float, float, float]:
    """Seconds, peak kernel RSS and peak total RSS (kernel + runner) for one notebook; the executed copy, with
    each cell's timing (:func:`execute_one`), is written to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--execute-one", str(notebook), str(out_dir / notebook.name)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=notebook.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runner = psutil.Process(proc.pid)
    kernel_peak = total_peak = 0.0
    while proc.poll() is None:
        try:
            children = runner.children(recursive=True)
            kernel = sum(c.memory_info().rss for c in children)
            total = kernel + runner.memory_info().rss
        except psutil.Error:
            continue
        kernel_peak, total_peak = max(kernel_peak, kernel), max(total_peak, total)
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{notebook.name} failed:\n{proc.stderr.read().decode(errors='replace')[-3000:]}")
    return seconds, kernel_peak, total_peak


def execute_one(source: Path, destination: Path) -> None:
    """Run one notebook (nbclient, the python3 kernel, in its own folder) and write it with each code cell's
    ``metadata.cfcam_timing``: its seconds and its longest stretch without new output (start to first
    output, between outputs, last output to the end), which is what a learner waits on with nothing to see."""
    from nbclient import NotebookClient

    class Timed(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            self.seen.setdefault(cell_index, []).append(time.perf_counter())
            return super().output(outs, msg, display_id, cell_index)

    nb = nbformat.read(source, as_version=4)
    client = Timed(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}})
    client.seen = {}
    starts: dict[int, float] = {}
    client.on_cell_execute = lambda cell, cell_index: starts.__setitem__(cell_index, time.perf_counter())
    client.on_cell_executed = lambda cell, cell_index, execute_reply: cell.metadata.__setitem__(
        "cfcam_timing", _timing(starts[cell_index], client.seen.get(cell_index, []), time.perf_counter()))
    client.execute()
    nbformat.write(nb, destination)


def _timing(start: float, outputs: list[float], end: float) -> dict:
    marks = [start, *outputs, end]
    return {"seconds": end - start, "longest_silence": max(b - a for a, b in zip(marks[:-1], marks[1:]))}


def slow_cells(executed: Path, limit: float = SLOW_CELL_SECONDS) -> list[tuple[int, float, float]]:
    """``(cell index, seconds, longest stretch without output)`` for each code cell of an executed notebook
    that ran longer than ``limit``."""
    nb = nbformat.read(executed, as_version=4)
    out = []
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("cfcam_timing")
        if cell.cell_type == "code" and timing and timing["seconds"] > limit:
            out.append((i, timing["seconds"], timing["longest_silence"]))
    return out


def run_busy(notebook: Path, out_dir: Path) -> float:
    """Seconds for one notebook while another process keeps one core busy the whole time."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.5)  # let it take its core
        seconds, _, _ = run(notebook, out_dir)
    finally:
        spinner.kill()
        spinner.wait()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run only the notebooks whose names start with these")
    parser.add_argument("--notebooks", type=Path, default=None,
                        help="a folder of notebooks to run in place (default: a temporary copy of notebooks/)")
    parser.add_argument("--idle-only", action="store_true", help="skip the runs with a core busy")
    parser.add_argument("--execute-one", nargs=2, type=Path, metavar=("SOURCE", "DESTINATION"),
                        help=argparse.SUPPRESS)  # the runner that run() starts for each notebook
    args = parser.parse_args(argv)
    if args.execute_one:
        execute_one(*args.execute_one)
        return 0
    if args.notebooks is not None and not args.notebooks.is_dir():
        parser.error(f"--notebooks {args.notebooks}: not a folder")
    ok = True
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{'notebook':34s} {'idle s':>7s} {'busy s':>7s} {'busy/idle':>9s} {'kernel peak':>12s} {'own use':>9s}"
          f"  cells over {SLOW_CELL_SECONDS:.0f} s (idle run): [index] seconds, SILENT: longest wait without output")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.notebooks is None:
            folder = tmp / "notebooks"
            shutil.copytree(ROOT / "notebooks", folder)
        else:
            folder = args.notebooks.resolve()
        base_dir = tmp / "baseline"
        base_dir.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(BASELINE)]
        nbformat.write(nb, base_dir / "imports_only.ipynb")
        _, baseline, _ = run(base_dir / "imports_only.ipynb", tmp)
        print(f"{'imports only (baseline)':34s} {'':7s} {'':7s} {'':9s} {baseline / 2**30:8.2f} GiB")
        for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            if args.prefixes and not any(path.name.startswith(c) for c in args.prefixes):
                continue
            out_dir = tmp / "executed"
            out_dir.mkdir(exist_ok=True)
            seconds, kernel, _ = run(path, out_dir)
            slow = slow_cells(out_dir / path.name)
            busy = None if args.idle_only else run_busy(path, tmp / "executed-busy")
            own = kernel - baseline
            good = (seconds <= TARGET_SECONDS and (kernel < TARGET_BYTES or own < TARGET_OWN_BYTES)
                    and (busy is None or busy <= TARGET_BUSY_RATIO * seconds)
                    and all(silence <= SLOW_CELL_SECONDS for _, _, silence in slow))
            ok &= good
            busy_text = f"{busy:7.1f} {busy / seconds:8.2f}x" if busy is not None else f"{'-':>7s} {'-':>9s}"
            cells = ", ".join(f"[{i}] {s:.1f}" + (f" (SILENT {q:.1f} s)" if q > SLOW_CELL_SECONDS else "")
                              for i, s, q in slow) or "none"
            print(f"{path.name:34s} {seconds:7.1f} {busy_text} {kernel / 2**30:8.2f} GiB {own / 2**30:5.2f} GiB"
                  f"  {cells}  {'ok' if good else 'OVER TARGET'}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print("\nevery notebook within its targets" if ok else "\nsome notebooks over target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
