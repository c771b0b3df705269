"""The evaluation's worker processes (cfcam.evaluation.workers) give the rows the in-process run gives."""

import math
import time
import warnings

import numpy as np
import pytest

from cfcam.evaluation import workers as wk
from cfcam.evaluation.engine import EvalData, EvalSettings, Evaluation, EvaluationStopped

METHODS = ["gradcam", "cfcam-reference", "random"]
TIMED = {"ms_per_image"}  # the one row that measures, not computes


def _small(demo, **changes):
    data = EvalData(demo.inputs, demo.masks, np.asarray(demo.labels), "demo")
    settings = dict(batch_size=2, subset=2, randomisation_seeds=2, randomisation_n=2, cascade_seeds=1,
                    slow_randomisation_seeds=1, road_percentiles=(50,), threads=1)
    settings.update(changes)
    return data, EvalSettings(**settings)


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_two_workers_give_the_in_process_rows(demo):
    data, one = _small(demo)
    _, two = _small(demo, workers=2)
    serial = Evaluation(demo.model, data, one).run(METHODS)
    parallel_ev = Evaluation(demo.model, data, two)
    parallel = parallel_ev.run(METHODS)
    assert parallel_ev.workers == 2
    assert [r.method for r in parallel] == METHODS  # the asked order, though the largest ran first
    for a, b in zip(serial, parallel):
        assert len(a.rows) == len(b.rows) > 0
        for ra, rb in zip(a.rows, b.rows):
            assert ra[:3] == rb[:3] and ra[4] == rb[4]
            if ra[2] in TIMED:
                continue
            assert _same(ra[3], rb[3]) or abs(ra[3] - rb[3]) <= 1e-6, (ra, rb)
        assert a.targets == b.targets
        assert a.draws.keys() == b.draws.keys()
    assert set(parallel_ev.cpu_seconds) >= {"maps", "road", "randomisation_spearman"}
    assert all(v >= 0 for v in parallel_ev.cpu_seconds.values())


def test_progress_reaches_the_total_and_a_failed_method_is_named(demo):
    data, settings = _small(demo, workers=2, variants={"nowhere": {"method": "gradcam", "layer": "layer9"}})
    seen = []
    ev = Evaluation(demo.model, data, settings, progress=lambda done, total, label: seen.append((done, total)))
    runs = ev.run(["gradcam", "nowhere", "eigencam"])
    assert ev.workers == 2
    assert [r.method for r in runs] == ["gradcam", "eigencam"]
    assert "layer9" in ev.failed["nowhere"]
    assert seen[-1][0] == seen[-1][1] > 0
    assert len({d for d, _ in seen}) > 2  # it moved on the way, not only at the end


def test_a_stop_ends_the_workers_within_seconds(demo):
    data, settings = _small(demo, workers=2, randomisation_seeds=20, randomisation_n=4)
    started = time.perf_counter()
    asked = {"at": None}

    def should_stop():
        if asked["at"] is None and time.perf_counter() - started > 8:
            asked["at"] = time.perf_counter()
        return asked["at"] is not None

    ev = Evaluation(demo.model, data, settings, should_stop=should_stop)
    with pytest.raises(EvaluationStopped):
        ev.run(["gradcam", "cfcam-reference", "xgradcam", "layercam"])
    assert time.perf_counter() - asked["at"] < 20  # generous for a busy CI machine; about 1 s on a quiet one


def test_what_cannot_be_pickled_runs_in_process(demo):
    data, settings = _small(demo, workers=2)
    extra = [lambda maps, data, targets: {"x": np.zeros(len(maps))}]
    assert not wk.picklable(extra)
    assert wk.picklable(demo.model, data, settings)
    ev = Evaluation(demo.model, data, settings, extra_metrics=extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = ev.run(["gradcam", "eigencam"])
    assert ev.workers == 1 and len(runs) == 2
    assert any("cannot be pickled" in str(w.message) for w in caught)


def test_automatic_workers_only_for_large_runs(demo, monkeypatch):
    data, settings = _small(demo, workers=None, threads=None)
    monkeypatch.delenv("CFCAM_THREADS", raising=False)
    monkeypatch.setattr("cfcam.evaluation.engine.choose_threads", lambda: 2)
    ev = Evaluation(demo.model, data, settings)
    ev._total = wk.PARALLEL_MIN_WORK - 1
    assert ev._plan_workers(["gradcam", "eigencam"]) == 1 and ev.threads == 2
    ev = Evaluation(demo.model, data, settings)
    ev._total = wk.PARALLEL_MIN_WORK
    assert ev._plan_workers(["gradcam", "eigencam"]) == 2 and ev.threads == 1  # two processes of one thread
    ev = Evaluation(demo.model, data, settings)
    ev._total = wk.PARALLEL_MIN_WORK
    assert ev._plan_workers(["gradcam"]) == 1 and ev.threads == 2  # one method: one process
    monkeypatch.setenv("CFCAM_THREADS", "2")
    ev = Evaluation(demo.model, data, settings)
    ev._total = wk.PARALLEL_MIN_WORK
    assert ev._plan_workers(["gradcam", "eigencam"]) == 1  # the user's thread count is kept whole


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer_or_none(demo, bad):
    data, settings = _small(demo, workers=bad)
    with pytest.raises(ValueError, match="workers must be None"):
        Evaluation(demo.model, data, settings)
