"""The evaluation's methods in worker processes, one method at a time each: the same rows, sooner.

Most of an evaluation's time runs on one core, whatever torch's thread count: the sparse solves of ROAD,
DBSCAN, the similarity of thousands of map pairs, Python between small model passes. Measured on the demo
model, the default ``cfcam evaluate`` kept 1.5 of 2 idle cores busy with two torch threads; two processes of
one thread each, every one taking the next method, keep both busy. Each method's rows depend only on the model,
the images and the settings (every random draw is seeded per method), so they equal the in-process run's
(``tests/evaluation/test_workers.py``); each worker shares model passes between the methods it runs
(:mod:`cfcam.evaluation.captures`).

The workers are started with ``spawn`` (a fresh interpreter: no inherited torch threads, safe in a notebook),
receive the model, the images and the settings once, and run with ``CFCAM_CORE_THREADS=1``. They ignore the
terminal's Ctrl-C: the parent, which gets it too, sets a stop flag that they check between batches, and a
worker whose parent has gone stops the same way. Progress comes back over a queue. Where the model or the
data cannot be pickled (a class defined in a notebook or a script's ``__main__``), the run stays in-process.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_module
import signal
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace

#: the estimated work (map-equivalents, see ``Evaluation.work``) from which ``workers=None`` starts processes:
#: starting one costs a few seconds (importing torch), about 200 maps' work on the demo model
PARALLEL_MIN_WORK = 3000

_worker: dict = {}


def picklable(*objects) -> bool:
    """Whether ``objects`` can travel to a spawned process (a class from ``__main__`` or a lambda cannot)."""
    try:
        pickle.dumps(objects)
        return True
    except Exception:  # noqa: BLE001 - pickling raises PicklingError, AttributeError, TypeError...
        return False


def _init(payload: bytes, progress, stop, parent: int) -> None:
    """A worker's start: one thread for the core, the terminal's signals left to the parent, the evaluation
    rebuilt from the pickled model, images and settings."""
    os.environ["CFCAM_CORE_THREADS"] = "1"
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    from .engine import Evaluation
    from .registry import METRICS

    model, data, settings, extra, metric_names = pickle.loads(payload)
    if tuple(METRICS) != metric_names:
        _worker["error"] = (f"the worker's metric registry ({', '.join(METRICS)}) is not the parent's "
                            f"({', '.join(metric_names)}): a metric registered at run time does not reach worker "
                            "processes; run with workers=1")
    evaluation = Evaluation(model, data, settings, extra_metrics=extra,
                            should_stop=lambda: stop.is_set() or os.getppid() != parent)
    _worker.update(evaluation=evaluation, progress=progress)


def _run_one(name: str, index: int, total: int):
    """One method in this worker: ``("ok", MethodRun, cpu_seconds)``, or ``("failed", why, cpu_seconds)`` when the
    method cannot explain this model's layer (the in-process run's ``failed``)."""
    import torch

    from .engine import EvaluationStopped

    if "error" in _worker:
        raise RuntimeError(_worker["error"])
    evaluation, progress = _worker["evaluation"], _worker["progress"]
    evaluation.cpu_seconds = {}
    evaluation._done, evaluation._total = 0.0, 1.0
    evaluation.progress = lambda done, _total, label: progress.put((name, done, label))
    torch.set_num_threads(evaluation.threads)
    try:
        return "ok", evaluation.run_method(name, index, total), evaluation.cpu_seconds
    except EvaluationStopped:
        return "stopped", None, evaluation.cpu_seconds
    except ValueError as exc:
        return "failed", str(exc), evaluation.cpu_seconds


def run_in_workers(evaluation, methods: list[str], workers: int):
    """``evaluation.run(methods)``'s runs, computed by ``workers`` processes of ``evaluation.threads`` torch
    threads; the largest methods first (by the registry's work estimate), the runs in ``methods``' order."""
    import multiprocessing

    from .engine import EvaluationStopped
    from .registry import METRICS

    ev = evaluation
    settings = replace(ev.settings, threads=ev.threads, workers=1)
    payload = pickle.dumps((ev.model, ev.data, settings, ev.extra_metrics, tuple(METRICS)))
    context = multiprocessing.get_context("spawn")
    progress, stop = context.Queue(), context.Event()
    work = {name: ev.work([name]) if ev._probe_ok(name) else 0.0 for name in methods}
    order = sorted(range(len(methods)), key=lambda i: -work[methods[i]])
    done_units = {name: 0.0 for name in methods}
    results: dict[int, tuple] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init,
                               initargs=(payload, progress, stop, os.getpid()))
    try:
        futures = {pool.submit(_run_one, methods[i], i, len(methods)): i for i in order}
        pending = set(futures)
        label = "starting"
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            label = _drain(progress, done_units, label, results_of={methods[i] for i in results})
            for future in finished:
                i = futures[future]
                results[i] = future.result()
                done_units[methods[i]] = work[methods[i]] if results[i][0] == "ok" else 0.0
            ev.progress(int(round(sum(done_units.values()))), int(round(ev._total)), label)
            if ev.should_stop():
                raise EvaluationStopped("the evaluation was asked to stop")
    except BaseException:
        stop.set()
        # a stop or an error: nothing in a worker needs cleaning up (it writes no file), so end it now rather
        # than at its next batch (ROAD's solves for a method take seconds)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        progress.join_thread()
    runs = []
    for i, name in enumerate(methods):
        status, value, cpu = results[i]
        for key, seconds in cpu.items():
            ev.cpu_seconds[key] = ev.cpu_seconds.get(key, 0.0) + seconds
        if status == "stopped":
            raise EvaluationStopped("the evaluation was asked to stop")
        if status == "failed":
            ev.failed[name] = value
        else:
            runs.append(value)
    return runs


def _drain(progress, done_units: dict, label: str, results_of: set) -> str:
    """Read the workers' progress messages (method, its work done, what runs now); the latest label. A message
    that arrives after its method's result is left out (the result counts the method's whole work)."""
    while True:
        try:
            name, done, latest = progress.get_nowait()
        except (queue_module.Empty, OSError, EOFError):
            return label
        if name not in results_of:
            done_units[name], label = float(done), latest


def warn_in_process(why: str) -> None:
    warnings.warn(f"the evaluation runs in this process only: {why}", RuntimeWarning, stacklevel=3)
