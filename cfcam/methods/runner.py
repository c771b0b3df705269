"""Running an explainer on a batch with the machine's CPUs in mind: the scheduling that the command line and
the evaluation use, kept out of the methods themselves.

The model's pass runs first; right after it, the runner measures how many CPUs that pass kept busy (this
process's CPU seconds per second). Only when it had a second one, and the per-image work is large (CF-CAM's
core on big maps), are a batch's images shared out over threads; otherwise they run in a loop, where a single
image's large distance product may still use the CPUs the pass had. With a core taken by another process the
pass gets about 1.2 CPUs, and everything stays on one thread (see :mod:`cfcam.core.engine.threads`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from ..core.engine import worth_threads_per_image
from ..core.engine.threads import available_cpus, cpus_free, map_blocks, serial_core, spare_cpus
from .base import CFCAM, BaseCAM, Explanation


def run_batch(explainer: BaseCAM, inputs: torch.Tensor, targets: int | Sequence[int] | None = None, *,
              on_captured: Callable[[], None] | None = None) -> Explanation:
    """``explainer.explain(inputs, targets)``, scheduled for this machine: the same maps and results.

    on_captured: called with no arguments once the model's pass is done, before the per-image maps (the command
        line starts its file work there, where it no longer competes with the model's threads).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    capture = explainer.capture_batch(inputs, targets)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    on_cpu = capture.activations.device.type == "cpu"
    cpus_used = cpu / wall if on_cpu and wall > 0 else None
    if on_captured is not None:
        on_captured()
    cpus = min(available_cpus(), cpus_free(cpus_used))
    _, channels, h, w = capture.activations.shape
    if len(capture.activations) > 1 and cpus > 1 and images_in_threads(explainer, channels, h * w):
        return explainer.explain_capture(capture, inputs, map_images=_in_threads)
    with spare_cpus(cpus):
        return explainer.explain_capture(capture, inputs)


def images_in_threads(explainer: BaseCAM, channels: int, positions: int) -> bool:
    """Whether a batch's images are worth a thread each: only CF-CAM's core on large maps is costly enough, and
    mostly numpy/torch work that releases the GIL."""
    return isinstance(explainer, CFCAM) and worth_threads_per_image(channels, positions)


def _in_threads(fn, pairs) -> list:
    """``[fn(p) for p in pairs]``, the images taken in turn by this thread and the core's pool threads, each
    image's core in its own thread only (so they never wait on each other)."""
    def one(pair):
        with serial_core():
            return fn(pair)

    return map_blocks(one, pairs)
