"""The notebooks' thread choice, in one place: PyTorch and cfcam's own choices on one thread.

The course's tensors are small (one image, a 7x7 or 14x14 layer, a tiny model): a second thread gains little
on an idle machine and loses much on a busy one, where every operation waits for the thread that has no core.
Measured with another process keeping one of two cores busy: notebook 06's small evaluation took 66 s on one
torch thread against 151 s on two. Every notebook calls :func:`use_one_thread` in its first cell.
"""

from __future__ import annotations

import os

__all__ = ["COURSE_THREADS", "use_one_thread"]

COURSE_THREADS = 1


def use_one_thread() -> int:
    """Put torch on one thread and make cfcam's own choices (the evaluation's and the command line's model
    threads, ``CFCAM_THREADS``; the core's block threads, ``CFCAM_CORE_THREADS``) one thread too, for this
    process and what it starts. Returns the thread count."""
    import torch

    from ..core.engine.threads import CORE_THREADS_ENV, MODEL_THREADS_ENV

    torch.set_num_threads(COURSE_THREADS)
    os.environ[MODEL_THREADS_ENV] = str(COURSE_THREADS)
    os.environ[CORE_THREADS_ENV] = str(COURSE_THREADS)
    return COURSE_THREADS
