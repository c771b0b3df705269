"""Run time and peak memory of each notebook, run top to bottom offline on the CPU as a learner would.

Targets (Binder has 2 GB, and a learner may have two notebooks open): each notebook at most 60 s on 2 cores
and under 1 GB of peak kernel memory. Memory is the peak resident memory of the kernel process (sampled every
50 ms with psutil); the Jupyter machinery that runs it is reported beside it. The notebooks are run from a
temporary copy of notebooks/ (as a learner's download would be), so nothing is written into the repository.
The machine's load average is printed: on a shared machine run times grow with it.

Most of a kernel's memory is the libraries it imports, and that depends on the install: PyTorch's default
(CUDA) wheels take about 0.55 GiB at ``import torch`` alone (measured here); the CPU wheels (Binder's
conda-forge build) are smaller builds, not measured here. So a baseline kernel that only imports what
the notebooks import is measured first, and each notebook's own use (peak minus that baseline) is printed
beside its peak; a notebook is within the memory target when its peak is under 1 GB, or, on an install whose
imports alone come near that, when its own use is under 0.25 GB.

Run: .venv/bin/python benchmarks/bench_notebooks.py [NAME_PREFIX...]
"""

from __future__ import annotations

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
BASELINE = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nimport sklearn.cluster\nimport torch\nimport cfcam\n"
            "import cfcam.teaching.widgets\nimport cfcam.teaching.checks\nprint(cfcam.__version__)")


def run(notebook: Path, out_dir: Path) -> tuple[float, float, float]:
    """Seconds, peak kernel RSS and peak total RSS (kernel + runner) for one notebook."""
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=600", "--output-dir", str(out_dir), str(notebook)]
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


def main() -> int:
    ok = True
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{'notebook':40s} {'seconds':>8s} {'kernel peak':>12s} {'with runner':>12s} {'own use':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "notebooks"
        shutil.copytree(ROOT / "notebooks", copy)
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(BASELINE)]
        nbformat.write(nb, copy / "imports_only.ipynb")
        _, baseline, _ = run(copy / "imports_only.ipynb", Path(tmp))
        print(f"{'imports only (baseline)':40s} {'':8s} {baseline / 2**30:9.2f} GiB")
        chosen = sys.argv[1:]
        for nb in sorted(copy.glob("[0-9][0-9]_*.ipynb")):
            if chosen and not any(nb.name.startswith(c) for c in chosen):
                continue
            seconds, kernel, total = run(nb, Path(tmp))
            own = kernel - baseline
            good = seconds <= TARGET_SECONDS and (kernel < TARGET_BYTES or own < TARGET_OWN_BYTES)
            ok &= good
            print(f"{nb.name:40s} {seconds:8.1f} {kernel / 2**30:9.2f} GiB {total / 2**30:9.2f} GiB"
                  f" {own / 2**30:9.2f} GiB  {'ok' if good else 'OVER TARGET'}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print("\nall notebooks within 60 s and the memory target" if ok else "\nsome notebooks over target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
