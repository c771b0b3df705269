"""cfcam.core.threads: CPUs from affinity and cgroup quota, one thread for the core, restored afterwards."""

import os

import numpy as np
import pytest
import torch

from cfcam.core import threads


@pytest.mark.parametrize("text,expected", [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5)])
def test_cgroup_v2_quota(tmp_path, text, expected):
    (tmp_path / "cpu.max").write_text(text)
    assert threads.cgroup_quota(tmp_path / "cpu.max", (tmp_path / "none", tmp_path / "none")) == expected


def test_cgroup_v1_quota_and_no_cgroup(tmp_path):
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("200000\n")
    period.write_text("100000\n")
    assert threads.cgroup_quota(tmp_path / "missing", (quota, period)) == 2.0
    quota.write_text("-1\n")
    assert threads.cgroup_quota(tmp_path / "missing", (quota, period)) is None
    assert threads.cgroup_quota(tmp_path / "missing", (tmp_path / "a", tmp_path / "b")) is None


def test_available_cpus_respects_affinity_and_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    assert threads.available_cpus() == affinity
    monkeypatch.setattr(threads, "cgroup_quota", lambda: 0.3)
    assert threads.available_cpus() == 1  # a fraction of a CPU still gets one thread
    monkeypatch.setattr(threads, "cgroup_quota", lambda: affinity + 7.0)
    assert threads.available_cpus() == affinity


def test_core_threads_is_one_thread_inside_and_restores(monkeypatch):
    monkeypatch.delenv(threads.CORE_THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads.core_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(KeyError):
            with threads.core_threads():
                raise KeyError("restored on errors too")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "2")
    monkeypatch.setenv(threads.MODEL_THREADS_ENV, "3")
    assert threads.core_thread_count() == 2
    assert threads.model_thread_count() == 3
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "zero")
    monkeypatch.setenv(threads.MODEL_THREADS_ENV, "0")
    assert threads.core_thread_count() == 1
    assert threads.model_thread_count() == threads.available_cpus()


def test_the_core_runs_single_threaded(monkeypatch):
    monkeypatch.delenv(threads.CORE_THREADS_ENV, raising=False)
    import cfcam
    from cfcam.core import clustering

    seen = []
    original = clustering.exact_eps.__wrapped__

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(clustering, "exact_eps", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = np.random.default_rng(0).random((40, 3, 3)).astype(np.float32)
        cfcam.cluster_filter_cam(a, a, "reference")
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
