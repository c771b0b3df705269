"""How many threads cfcam uses, chosen on purpose rather than inherited.

The CF-CAM core (distances, clustering, filtering of one image) is many small operations: split over torch's
threads they wait on each other at every operation, and on a busy machine (another process on a core, a
container whose CPU quota is smaller than the cores it sees) a thread without a core stalls them all. So torch
runs on one thread inside the core (:func:`core_threads`), and a large distance product is cut into row
blocks (a batch's images likewise) that the calling thread and a small pool of threads, one per usable CPU in
all (:func:`core_thread_count`), take in turn (:func:`map_blocks`): a thread whose core is busy simply takes
fewer blocks. The command line gives the model :func:`available_cpus` threads, the CPUs this process may
actually use (affinity mask and cgroup quota), not the cores the machine has. ``CFCAM_CORE_THREADS`` and
``CFCAM_THREADS`` (environment) override the two choices.

Right after a model's pass on the CPU, the explainers measure how many CPUs that pass kept busy
(:func:`cpus_free`): only when it had a second one does a batch's images share out over threads, and a single
image's large product run on that many torch threads (:func:`spare_cpus`). Torch's threads keep spinning on
their CPU for a few milliseconds after the model's pass, so there a second Python thread hardly gets a CPU, but
one product on torch's threads does; with another process on a core, the pass gets about 1.2 CPUs and
everything stays on one thread.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

CORE_THREADS_ENV = "CFCAM_CORE_THREADS"
MODEL_THREADS_ENV = "CFCAM_THREADS"
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def cgroup_quota(v2: Path = _CGROUP_V2, v1: tuple[Path, Path] = _CGROUP_V1) -> float | None:
    """CPUs allowed by the cgroup's CPU quota (e.g. 1.5), or None when there is no quota or no cgroup."""
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota, period = (int(p.read_text()) for p in v1)
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cpu_times(stat: Path = Path("/proc/stat")) -> tuple[float, float] | None:
    """(idle, total) jiffies of all CPUs from ``/proc/stat``; None where there is none (not Linux)."""
    try:
        fields = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:]]
    return values[3] + (values[4] if len(values) > 4 else 0.0), sum(values[:8])


def idle_cpus(before: tuple[float, float], after: tuple[float, float], cpus: int) -> float:
    """CPUs that were idle between two ``(idle, total)`` readings of ``/proc/stat`` (of ``cpus`` in all)."""
    total = after[1] - before[1]
    if total <= 0:
        return float(cpus)
    return cpus * (after[0] - before[0]) / total


def cpus_idle_now(sample: float = 0.3) -> float | None:
    """CPUs of this machine idle right now, over ``sample`` seconds (None without ``/proc/stat``). Unlike the
    load average, which still counts the last minute's work, this sees a machine that has just gone quiet."""
    import time

    before = _cpu_times()
    if before is None:
        return None
    time.sleep(sample)
    after = _cpu_times()
    return None if after is None else idle_cpus(before, after, os.cpu_count() or 1)


def _env_int(name: str) -> int | None:
    """A positive integer from the environment variable ``name``, None when unset or not one."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def core_thread_count() -> int:
    """Threads that share the core's large passes and a batch's images: ``CFCAM_CORE_THREADS``, else
    :func:`available_cpus`."""
    return _env_int(CORE_THREADS_ENV) or available_cpus()


def model_thread_count() -> int:
    """Threads for the model in the command line: ``CFCAM_THREADS``, else :func:`available_cpus`."""
    return _env_int(MODEL_THREADS_ENV) or available_cpus()


@contextmanager
def torch_threads(count: int):
    """Run the block with torch on ``count`` threads (in this thread), then restore the count."""
    import torch

    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def core_threads():
    """Run the block with torch on one thread (in this thread), then restore the count."""
    return torch_threads(1)


def single_threaded(fn):
    """Decorator: ``fn`` runs inside :func:`core_threads` (nested calls keep the outer setting)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with core_threads():
            return fn(*args, **kwargs)

    return wrapper


_local = threading.local()  # .serial: this thread must not hand blocks to the pool (a pool thread, an image's)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _start_pool_thread() -> None:
    import torch

    torch.set_num_threads(1)
    _local.serial = True


def _forget_pool() -> None:
    """After a fork the child has none of the parent's threads: it starts its own pool when it needs one."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _block_pool(workers: int) -> ThreadPoolExecutor:
    """The pool of ``workers`` threads (started on first use, started anew when the count changes)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="cfcam-block", initializer=_start_pool_thread)
            _pool_size = workers
        return _pool


def cpus_free(cpus_used: float | None) -> int:
    """CPUs the core may use right after a model's pass on the CPU that kept ``cpus_used`` CPUs busy (CPU
    seconds per second, all of this process's threads): that share rounded, at most
    :func:`core_thread_count`. A pass on 2 threads gets about 2 on a quiet machine and about 1.2 with one core
    taken by another process. None (the model ran on another device): :func:`core_thread_count`."""
    limit = core_thread_count()
    if cpus_used is None or cpus_used != cpus_used:
        return limit
    return max(1, min(limit, round(cpus_used)))


@contextmanager
def spare_cpus(count: int):
    """Within the block, a large distance product of this thread's core may run on ``count`` torch threads
    (:func:`product_threads`); outside one, it runs on one."""
    before = getattr(_local, "spare", 1)
    _local.spare = max(1, int(count))
    try:
        yield
    finally:
        _local.spare = before


def product_threads() -> int:
    """Torch threads for a large distance product in this thread: what :func:`spare_cpus` allows, one in a pool
    thread or inside :func:`serial_core`."""
    return 1 if getattr(_local, "serial", False) else getattr(_local, "spare", 1)


@contextmanager
def serial_core():
    """Run the block's core passes in this thread only (for callers that already run images in parallel)."""
    before = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = before


def map_blocks(fn, blocks) -> list:
    """``[fn(b) for b in blocks]``, the blocks shared out between this thread and up to
    :func:`core_thread_count` - 1 pool threads (each with torch on one thread), taken in turn; results in order.

    This thread takes blocks too and waits only for blocks already started, never for a pool thread to wake
    up (waking an idle CPU can take longer than a block on a virtual machine): a late or busy pool thread
    just takes fewer blocks. In this thread alone when there is one block, one core thread, or this thread
    is itself a pool thread or inside :func:`serial_core`. An exception in any block is raised here."""
    blocks = list(blocks)
    workers = min(core_thread_count(), len(blocks))
    if workers <= 1 or getattr(_local, "serial", False):
        return [fn(b) for b in blocks]
    results: list = [None] * len(blocks)
    state = {"next": 0, "running": 0, "error": None}
    cond = threading.Condition()

    def drain() -> None:
        while True:
            with cond:
                if state["next"] >= len(blocks) or state["error"] is not None:
                    return
                k = state["next"]
                state["next"] += 1
                state["running"] += 1
            try:
                results[k] = fn(blocks[k])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                with cond:
                    state["error"] = state["error"] or exc
            finally:
                with cond:
                    state["running"] -= 1
                    cond.notify_all()

    pool = _block_pool(workers - 1)
    for _ in range(workers - 1):
        pool.submit(drain)
    with core_threads():
        drain()
    with cond:
        cond.wait_for(lambda: state["running"] == 0)
    if state["error"] is not None:
        raise state["error"]
    return results
