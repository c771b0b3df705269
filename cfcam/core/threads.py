"""How many threads cfcam uses, chosen on purpose rather than inherited.

The CF-CAM core (distances, clustering, filtering of one image) is many small operations: split over
threads they wait on each other, and on a busy machine (another process on a core, a container whose CPU
quota is smaller than the cores it sees) a thread without a core stalls them all. So the core runs on one
thread (:func:`core_threads`), and the command line gives the model :func:`available_cpus` threads, the CPUs
this process may actually use (affinity mask and cgroup quota), not the cores the machine has.
``CFCAM_CORE_THREADS`` and ``CFCAM_THREADS`` (environment) override the two choices.
"""

from __future__ import annotations

import functools
import math
import os
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


def _env_int(name: str) -> int | None:
    """A positive integer from the environment variable ``name``, None when unset or not one."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def core_thread_count() -> int:
    """Threads for the core: 1, or ``CFCAM_CORE_THREADS``."""
    return _env_int(CORE_THREADS_ENV) or 1


def model_thread_count() -> int:
    """Threads for the model in the command line: ``CFCAM_THREADS``, else :func:`available_cpus`."""
    return _env_int(MODEL_THREADS_ENV) or available_cpus()


@contextmanager
def core_threads():
    """Run the block with torch limited to :func:`core_thread_count` threads, then restore the count."""
    import torch

    wanted = core_thread_count()
    before = torch.get_num_threads()
    if wanted == before:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_threaded(fn):
    """Decorator: ``fn`` runs inside :func:`core_threads` (nested calls keep the outer setting)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with core_threads():
            return fn(*args, **kwargs)

    return wrapper
