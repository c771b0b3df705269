"""Execute the course notebooks for the book, a few at a time, and keep each result until its inputs change.

Each executed notebook records a key: the hash of the notebook, of every file of the cfcam package and of
this build's own scripts. A second ``make book`` with nothing changed executes nothing. The kernels run with
``CFCAM_STATIC_WIDGETS=1`` (explorers draw a still, see :mod:`cfcam.teaching.widgets.static`), in a scratch
folder (a notebook writes nothing into the site), with their threads shared out between the parallel kernels.
Widget views and widget state are removed from the results: a static page cannot run them, and keeping them
would make the page load the widget manager's scripts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

import nbformat

__all__ = ["NotebookFailed", "execute_all", "input_key", "tree_hash"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT_S = 600  # generous: a cell of the course takes seconds, a busy 2-core machine is slow


class NotebookFailed(RuntimeError):
    """A notebook raised while the book executed it (the message names the notebook and the cell's error)."""


def tree_hash(*folders: Path) -> str:
    """The hash of every file under ``folders`` (names and contents; caches skipped)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def input_key(notebook: Path, dependencies: str) -> str:
    """What an executed notebook depends on: the notebook, and ``dependencies`` (:func:`tree_hash` of the cfcam
    package and of this build's scripts)."""
    return hashlib.sha256(notebook.read_bytes() + dependencies.encode()).hexdigest()


def _cached(out: Path, key: str) -> bool:
    if not out.exists():
        return False
    try:
        return nbformat.read(out, as_version=4).metadata.get("cfcam_book", {}).get("key") == key
    except Exception:  # noqa: BLE001 - an unreadable result is simply executed again
        return False


def strip_widgets(nb) -> None:
    """Remove widget views (keeping each output's other forms, e.g. text) and the saved widget state."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            data = out.get("data")
            if data is not None and WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                if not data:
                    continue
            kept.append(out)
        cell.outputs = kept


async def _run_one(source: Path, out: Path, key: str, env: dict, sem: asyncio.Semaphore) -> float:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    async with sem:
        started = time.perf_counter()
        nb = nbformat.read(source, as_version=4)
        out.parent.mkdir(parents=True, exist_ok=True)
        log = out.with_suffix(".kernel.log")  # the kernel's own messages, out of the build's output
        with tempfile.TemporaryDirectory(prefix="cfcam-book-") as scratch, open(log, "wb") as stderr:
            client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", store_widget_state=False,
                                    resources={"metadata": {"path": scratch}})
            try:
                await client.async_execute(env=env, cwd=scratch, stderr=stderr)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
                raise NotebookFailed(f"{source.name} failed while the book executed it (kernel log: {log}):\n"
                                     f"{err}") from None
        strip_widgets(nb)
        nb.metadata["cfcam_book"] = {"key": key}
        tmp = out.with_name(f".{out.name}.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(out)  # atomic: an interrupted build never leaves half a notebook
        return time.perf_counter() - started


def execute_all(jobs: list[tuple[Path, Path, str, dict]], workers: int) -> dict[str, float | None]:
    """Execute ``(source, out, key, extra_env)`` jobs whose ``out`` is missing or stale, ``workers`` at a time.

    Returns ``{notebook name: seconds}`` (``None`` for a cached one). The first failure stops the build.
    """
    todo = [j for j in jobs if not _cached(j[1], j[2])]
    threads = str(max(1, (os.cpu_count() or 1) // max(1, min(workers, len(todo) or 1))))
    base = dict(os.environ, CFCAM_STATIC_WIDGETS="1", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    async def main():
        sem = asyncio.Semaphore(max(1, workers))
        tasks = [_run_one(src, out, key, dict(base, **extra), sem) for src, out, key, extra in todo]
        return await asyncio.gather(*tasks)

    seconds = asyncio.run(main()) if todo else []
    result: dict[str, float | None] = {j[0].stem: None for j in jobs}
    result.update({j[0].stem: s for j, s in zip(todo, seconds)})
    return result
