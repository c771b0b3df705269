"""cfcam.core.engine.threads: CPUs from affinity and cgroup quota, torch on one thread in the core (restored
afterwards),
the core's large passes shared out over a pool of threads."""

import os

import numpy as np
import pytest
import torch

from cfcam.core.engine import threads


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
    assert threads.core_thread_count() == threads.available_cpus()
    assert threads.model_thread_count() == threads.available_cpus()


def test_map_blocks_shares_blocks_over_single_threaded_pool_threads_in_order(monkeypatch):
    import threading

    monkeypatch.setenv(threads.CORE_THREADS_ENV, "3")
    seen = []

    def work(k):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return k * k

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert threads.map_blocks(work, range(400)) == [k * k for k in range(400)]
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    caller = threading.current_thread().name
    assert all(n == 1 for _, n in seen)  # torch on one thread in every block, the caller's included
    assert {name for name, _ in seen} <= {caller} | {f"cfcam-block_{k}" for k in range(2)}
    # inside a pool thread, and inside serial_core, blocks run in the calling thread (no nested hand-over)
    nested = threads.map_blocks(lambda k: (threading.current_thread().name,
                                           threads.map_blocks(lambda j: threading.current_thread().name, [0, 1])),
                                range(6))
    assert all(inner == [outer, outer] for outer, inner in nested)
    with threads.serial_core():
        assert threads.map_blocks(lambda k: threading.current_thread().name, range(5)) == \
            [threading.current_thread().name] * 5
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "1")
    assert threads.map_blocks(lambda k: threading.current_thread().name, range(5)) == \
        [threading.current_thread().name] * 5


def test_an_error_in_a_block_reaches_the_caller(monkeypatch):
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "2")

    def work(k):
        if k == 5:
            raise ValueError("block 5")
        return k

    with pytest.raises(ValueError, match="block 5"):
        threads.map_blocks(work, range(10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_starts_its_own_pool(monkeypatch):
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "2")
    assert threads.map_blocks(lambda k: k, range(4)) == [0, 1, 2, 3]  # the parent's pool is running
    pid = os.fork()
    if pid == 0:  # the child: the parent's pool threads do not exist here; a hang would time the test out
        code = 0 if threads.map_blocks(lambda k: k + 1, range(4)) == [1, 2, 3, 4] else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize("preset", ["readme", "reference"])
def test_the_core_gives_the_same_result_on_one_thread_and_on_several(monkeypatch, preset):
    import cfcam
    from cfcam.core.engine import triangle

    monkeypatch.setattr(triangle, "_PARALLEL_PRODUCT", 0)  # share out even this small product
    rng = np.random.default_rng(3)
    a = rng.random((700, 7, 7)).astype(np.float32)  # large enough to be cut into several blocks
    g = rng.standard_normal((700, 7, 7)).astype(np.float32)
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "1")
    one = cfcam.cluster_filter_cam(a, g, preset)
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "3")
    several = cfcam.cluster_filter_cam(a, g, preset)
    np.testing.assert_array_equal(one.labels, several.labels)
    np.testing.assert_array_equal(one.cam, several.cam)
    assert one.eps == several.eps


def test_the_core_runs_single_threaded(monkeypatch):
    monkeypatch.delenv(threads.CORE_THREADS_ENV, raising=False)
    import cfcam
    from cfcam.core.engine import exact

    seen = []
    original = exact.exact_eps.__wrapped__

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(exact, "exact_eps", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = np.random.default_rng(0).random((40, 3, 3)).astype(np.float32)
        cfcam.cluster_filter_cam(a, a, "reference")
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("used,expected", [(1.97, 2), (1.2, 1), (0.4, 1), (3.6, 3), (None, 3), (float("nan"), 3)])
def test_cpus_free_after_a_models_pass_is_its_cpu_share_rounded_and_capped(monkeypatch, used, expected):
    """A pass that kept two CPUs busy leaves two for the core; one that got 1.2 (another process on a core)
    leaves one; never more than the core's threads; a pass on another device leaves all of them."""
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "3")
    assert threads.cpus_free(used) == expected


def test_product_threads_follow_spare_cpus_except_in_serial_threads():
    assert threads.product_threads() == 1  # outside spare_cpus: one
    with threads.spare_cpus(2):
        assert threads.product_threads() == 2
        with threads.serial_core():  # an image of a batch run in parallel: its product stays on one thread
            assert threads.product_threads() == 1
        with threads.spare_cpus(0):
            assert threads.product_threads() == 1
        assert threads.product_threads() == 2
    assert threads.product_threads() == 1


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with threads.torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_idle_cpus_come_from_two_readings_of_proc_stat(tmp_path):
    from cfcam.core.engine.threads import _cpu_times, idle_cpus

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n")
    before = _cpu_times(stat)
    assert before == (850.0, 1000.0)  # idle + iowait, of user .. steal
    stat.write_text("cpu  200 0 50 900 50 0 0 0 0 0\n")  # 200 jiffies: 100 busy, 100 idle
    assert idle_cpus(before, _cpu_times(stat), 2) == pytest.approx(1.0)
    assert idle_cpus(before, before, 2) == 2.0  # no time passed: nothing says busy
    assert _cpu_times(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("intr 1 2 3\n")
    assert _cpu_times(tmp_path / "odd") is None


def test_the_evaluation_takes_the_idle_cpus(monkeypatch):
    from cfcam.core.engine import threads
    from cfcam.evaluation.engine import choose_threads

    monkeypatch.delenv("CFCAM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    for idle, expected in ((1.9, 2), (1.0, 1), (0.2, 1), (None, None)):
        monkeypatch.setattr(threads, "cpus_idle_now", lambda sample=0.3, idle=idle: idle)
        if idle is None:  # no /proc/stat: the load average decides
            monkeypatch.setattr("os.getloadavg", lambda: (1.2, 0.0, 0.0))
            expected = 1
        assert choose_threads() == expected
