"""The batch loop of ``cfcam explain``: the model's pass alone on the CPUs, the files beside the per-image maps.

The model's threads wait on each other at every operation, so a file thread taking one of their cores would
stall them all (see :mod:`cfcam.core.engine.threads`): the model's pass over a batch runs with nothing else. Once
it is done (the runner's ``on_captured``), a small thread pool colours, encodes and writes the previous batch's
overlays and reads, decodes and preprocesses the next batch while the explainer computes this batch's maps
(independent threads, which a busy core only slows, never stalls); what is left of the file work finishes
before the next pass. The CPUs never sit idle between batches (on a virtual machine an idle CPU comes back
slowly). Rows, failures and the progress bar are touched only by the calling thread, in the order the
sequential loop would touch them.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.engine.threads import available_cpus, model_thread_count
from ..images.reading import ImageError, load_image
from ..images.viz import overlay, preprocess
from ..images.writing import save_npy_atomic, save_png_atomic
from ..methods.runner import run_batch
from .signals import deferred_stop

NOT_FINITE = ("explaining failed: the model's outputs for this image are not finite (inf or NaN logits), so its "
              "class scores and gradients mean nothing; no overlay written")


@dataclass(frozen=True)
class Loaded:
    """One input after reading: the image and its tensor, or why it could not be used."""

    path: Path
    image: object = None  # PIL image
    tensor: torch.Tensor | None = None
    seconds: float = 0.0
    error: str | None = None  # the file cannot be used (reported as such)
    problem: Exception | None = None  # preprocessing failed (reported like a failure of the model's pass)


def load(path: Path, info: dict, max_pixels: int) -> Loaded:
    """Read and preprocess one image (runs in a worker thread)."""
    start = time.perf_counter()
    try:
        image = load_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        return Loaded(path, error=exc.reason)
    try:
        tensor = preprocess(image, info["input_size"], info["mean"], info["std"])
    except (ValueError, RuntimeError) as exc:
        return Loaded(path, image, problem=exc)
    return Loaded(path, image, tensor, time.perf_counter() - start)


def write(heatmap: np.ndarray, image, alpha: float, png: Path, npy: Path | None) -> tuple[float, str | None]:
    """Overlay, encode and write one result (runs in a worker thread): ``(seconds, error or None)``."""
    start = time.perf_counter()
    try:
        save_png_atomic(overlay(heatmap, image, alpha=alpha), png)
        if npy is not None:
            save_npy_atomic(heatmap.astype(np.float32), npy)
    except (OSError, ValueError) as exc:
        return time.perf_counter() - start, f"cannot write the output ({exc})"
    return time.perf_counter() - start, None


@dataclass(frozen=True)
class BatchSettings:
    """What the batch loop needs from the command line."""

    method: str  # names the overlays: ``<base>_<method>.png``
    batch_size: int
    max_pixels: int
    alpha: float  # the heatmap's opacity in the overlay
    save_raw: bool  # also write each map as ``.npy``


@dataclass(frozen=True)
class Pass:
    """What the model's pass over one batch gave."""

    maps: np.ndarray
    probs: np.ndarray
    targets: list
    results: list
    seconds_each: float


def run_model(good: list[Loaded], explainer, target, on_captured=None) -> Pass | str:
    """The explainer on the batch of usable images: a :class:`Pass`, or the reason every one of them failed."""
    start = time.perf_counter()
    try:
        for item in good:
            if item.problem is not None:
                raise item.problem
        done = run_batch(explainer, torch.cat([item.tensor for item in good]), target, on_captured=on_captured)
    except (ValueError, RuntimeError) as exc:
        return f"explaining failed: {type(exc).__name__}: {exc}"
    return Pass(done.maps, done.predictions, done.targets, list(done.results),
                (time.perf_counter() - start) / len(good))


def make_row(item: Loaded, i: int, done: Pass, name: str, classes: list[str], write_seconds: float) -> dict:
    """The summary row of image ``i`` of a batch."""
    predicted = int(np.argmax(done.probs[i]))
    result = done.results[i]
    return {
        "file": str(item.path),
        "overlay": f"{name}.png",
        "predicted": classes[predicted],
        "confidence": f"{float(done.probs[i][predicted]):.4f}",
        "target": classes[int(done.targets[i])],
        "clusters": getattr(result, "n_clusters", ""),  # CF-CAM only
        "noise_channels": getattr(result, "n_noise", ""),
        "seconds": f"{item.seconds + done.seconds_each + write_seconds:.3f}",
        "notes": "; ".join([*result.notes, *(f"image: {w}" for w in image_warnings(item))]),
        "error": "",
    }


def image_warnings(item: Loaded) -> tuple[str, ...]:
    """What the decoder warned about for this image (e.g. corrupt EXIF data)."""
    return tuple(item.image.info.get("warnings", ())) if item.image is not None else ()


def io_workers() -> int:
    """Threads for reading and writing: one per usable CPU, 2 to 4 (they run beside the per-image maps)."""
    return max(2, min(4, available_cpus()))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Keep the memory a batch frees for the next one, for the rest of the process (glibc only; False where
    ``mallopt`` is missing or refuses): blocks up to 32 MB (glibc's largest setting) come from the heap rather
    than from their own mapping, and up to 512 MB of free heap stay with the process. The model's pass
    allocates its large activations anew for every batch; handed back to the system, each 4 KB page costs a
    fault when it is touched again (about a quarter of the run's time on the demo model at batch 8). The
    process's peak memory is unchanged, it just comes back to the system at the end of the run. Process-wide
    and one-way, so only the command line calls it, never an import."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) & bool(mallopt(_M_TRIM_THRESHOLD, 512 << 20))


#: seconds a thread may hold Python's lock while another waits for it, during a run (Python's default: 5 ms):
#: the per-image maps, many short numpy calls, wait much less on the file threads' Python code
SWITCH_INTERVAL = 0.001


@contextmanager
def run_settings():
    """The command line's process settings for a run: freed memory kept (:func:`keep_freed_memory`, for good),
    torch's threads (:func:`model_threads`) and a short switch interval (:data:`SWITCH_INTERVAL`), the last
    two restored after."""
    keep_freed_memory()
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL))
    try:
        with model_threads():
            yield
    finally:
        sys.setswitchinterval(before)


@contextmanager
def model_threads():
    """Torch's thread count set to :func:`~cfcam.core.engine.threads.model_thread_count` for the run, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(model_thread_count())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def explain_batches(images, explainer, info, target, args: BatchSettings, out_dir: Path, bases, add_row, fail, bar, *,
                    warn=lambda path, note: None, after_batch=lambda: None) -> None:
    """Explain ``images`` a batch at a time, the files read and written between the model's passes (see the
    module).

    ``add_row(row)`` records an explained image, ``fail(path, reason)`` one that failed, ``warn(path, note)`` a
    decoder warning; ``after_batch()`` runs after each batch's rows are recorded. All run on this thread.
    """
    batches = [images[s:s + args.batch_size] for s in range(0, len(images), args.batch_size)]
    classes = info["classes"]
    pool = ThreadPoolExecutor(max_workers=io_workers(), thread_name_prefix="cfcam-io")
    reading: deque[list[Future]] = deque()
    unwritten: list[tuple] = []  # (item, i, pass, name) of the last batch explained, not yet submitted
    # (outcome, item, i, pass, name) of overlays being written, until recorded; the outcome dict is listed
    # before its write is submitted and the write itself puts its result in it, so however a signal falls,
    # a write that ran is found in this list
    writing: list[tuple] = []

    def read_ahead(k: int) -> None:
        if k < len(batches):
            with deferred_stop():  # a stop inside submit can leave a pool thread untracked (not waited for)
                reading.append([pool.submit(load, path, info, args.max_pixels) for path in batches[k]])

    def write_into(outcome: dict, *job) -> None:
        outcome["result"] = write(*job)

    def start_writes() -> None:
        while unwritten:
            item, i, done, name = unwritten[0]
            outcome: dict = {}
            writing.append((outcome, item, i, done, name))
            unwritten.pop(0)
            npy = out_dir / f"{name}.npy" if args.save_raw else None
            with deferred_stop():
                outcome["future"] = pool.submit(write_into, outcome, done.maps[i], item.image, args.alpha,
                                                out_dir / f"{name}.png", npy)

    def record(outcome, item, i, done, name) -> None:
        seconds, error = outcome["result"]
        if error is None:
            add_row(make_row(item, i, done, name, classes, seconds))
        else:
            fail(item.path, error)
        bar.update(1)

    def collect_writes() -> None:
        while writing:
            writing[0][0]["future"].result()  # a signal may stop the run here: the write stays listed
            record(*writing[0])  # listed until recorded: a signal while recording leaves it to the finally
            writing.pop(0)

    try:
        with run_settings():
            read_ahead(0)
            for k in range(len(batches)):
                loaded = [future.result() for future in reading.popleft()]
                good = [item for item in loaded if item.error is None]
                started = []

                def start_io(k=k, started=started) -> None:  # once per batch: after the model's pass, or later
                    if not started:
                        started.append(True)
                        start_writes()
                        read_ahead(k + 1)

                done = run_model(good, explainer, target, start_io) if good else None
                start_io()  # no pass (no usable image, a failure) or a method that does not call it
                collect_writes()  # the previous batch's, written beside this batch's maps
                after_batch()
                for item in loaded:
                    for note in image_warnings(item):
                        warn(item.path, note)
                    if item.error is not None:
                        fail(item.path, item.error)
                        bar.update(1)
                if isinstance(done, str):
                    for item in good:
                        fail(item.path, done)
                    bar.update(len(good))
                elif done is not None:
                    for i, item in enumerate(good):
                        if not np.isfinite(done.probs[i]).all():  # inf/NaN logits: the map means nothing
                            fail(item.path, NOT_FINITE)
                            bar.update(1)
                        else:
                            unwritten.append((item, i, done, f"{bases[item.path]}_{args.method}"))
            start_writes()
            collect_writes()
            after_batch()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for entry in writing:  # writes that finished while the run was stopping: their files exist
            if "result" in entry[0]:
                record(*entry)
