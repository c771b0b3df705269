"""benchmarks/bench_notebooks.py's own machinery: each cell's time and its longest wait without output (what
flags a silent slow cell), recorded while a notebook runs from a folder outside the repository."""

import importlib.util
import sys

import nbformat

from conftest import ROOT


def bench():
    spec = importlib.util.spec_from_file_location("bench_notebooks", ROOT / "benchmarks" / "bench_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_notebooks", module)
    spec.loader.exec_module(module)
    return module


def test_a_silent_wait_is_measured_per_cell_outside_the_repository(tmp_path):
    b = bench()
    folder = tmp_path / "copy"  # a learner's copy, nowhere near the repository
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import time, pathlib\nprint(pathlib.Path.cwd())"),
                nbformat.v4.new_code_cell("time.sleep(1.5)"),  # silent
                nbformat.v4.new_code_cell("for k in range(3):\n    print('step', k, flush=True)\n    time.sleep(0.5)")]
    nbformat.write(nb, folder / "01_tiny.ipynb")
    seconds, kernel, total = b.run(folder / "01_tiny.ipynb", tmp_path / "out")
    assert seconds > 1.5 and 0 < kernel <= total
    done = nbformat.read(tmp_path / "out" / "01_tiny.ipynb", as_version=4)
    assert done.cells[0].outputs[0]["text"].strip() == str(folder), "it ran in its own folder"
    silent, steps = (done.cells[k].metadata["cfcam_timing"] for k in (1, 2))
    assert silent["seconds"] >= 1.5 and silent["longest_silence"] == silent["seconds"]
    assert steps["seconds"] >= 1.5 and steps["longest_silence"] < steps["seconds"], "its output broke the wait"
    slow = b.slow_cells(tmp_path / "out" / "01_tiny.ipynb", limit=1.4)
    assert [i for i, _, _ in slow] == [1, 2]


def test_longest_silence_counts_the_start_and_the_end():
    b = bench()
    assert b._timing(0.0, [], 7.0) == {"seconds": 7.0, "longest_silence": 7.0}
    assert b._timing(0.0, [1.0, 3.0, 4.5], 6.0)["longest_silence"] == 2.0
