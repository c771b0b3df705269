"""cfcam.methods.runner: the scheduling the command line and the evaluation use. A batch's images share out
over threads only when the model's pass left a second CPU and the per-image work is large; the maps and
results are always those of ``explainer.explain``."""

import threading

import numpy as np
import pytest
import torch

from cfcam import CFCAM, GradCAM
from cfcam.core.engine import threads, triangle
from cfcam.methods import base, runner


def test_cfcam_explains_a_batch_in_parallel_threads_with_the_sequential_results(tiny_resnet, monkeypatch):
    """Large enough maps: the images of a batch are shared out between the calling thread and the core's
    threads, two at once here; order, maps and results are the loop's."""
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    names = []
    lock = threading.Lock()
    two_at_once = threading.Barrier(2, timeout=60)  # the first two images wait for each other: two threads
    sharing = [True]
    real = base.CFCAM.explain_one

    def spy(self, a, g):
        with lock:
            names.append(threading.current_thread().name)
            first_two = len(names) <= 2
        if first_two and sharing[0]:
            two_at_once.wait()
        return real(self, a, g)

    monkeypatch.setattr(base.CFCAM, "explain_one", spy)
    monkeypatch.setattr(runner, "available_cpus", lambda: 2)
    monkeypatch.setattr(runner, "cpus_free", lambda used: 2)  # the model's pass had two CPUs
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "2")
    monkeypatch.setattr(triangle, "_PARALLEL_IMAGES", 0)  # these small maps count as large
    threads_before = torch.get_num_threads()
    with CFCAM(tiny_resnet, "layer4[-1]", "reference") as e:
        parallel = runner.run_batch(e, x, [0, 1, 0, 1, 0])
    assert len(names) == 5 and len(set(names[:2])) == 2
    assert set(names) <= {"MainThread"} | {n for n in names if n.startswith("cfcam-block")}
    assert torch.get_num_threads() == threads_before  # the one-thread setting is restored
    monkeypatch.setattr(triangle, "_PARALLEL_IMAGES", float("inf"))
    sharing[0] = False
    names.clear()
    with CFCAM(tiny_resnet, "layer4[-1]", "reference") as e:
        sequential = e.explain(x, [0, 1, 0, 1, 0])
    assert names == ["MainThread"] * 5
    np.testing.assert_array_equal(parallel.maps, sequential.maps)
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(parallel.results, sequential.results))
    assert parallel.targets == sequential.targets == [0, 1, 0, 1, 0]


def test_small_maps_are_explained_in_the_calling_thread(tiny_resnet, monkeypatch):
    """Below the size where threads pay (their hand-overs of the GIL cost more than a small core), a batch's
    images run one after the other in the calling thread; a ResNet50's layer4 at 224 px is shared out."""
    names = []
    real = base.CFCAM.explain_one

    def spy(self, a, g):
        names.append(threading.current_thread().name)
        return real(self, a, g)

    monkeypatch.setattr(base.CFCAM, "explain_one", spy)
    monkeypatch.setattr(runner, "available_cpus", lambda: 2)
    with CFCAM(tiny_resnet, "layer4[-1]") as e:
        runner.run_batch(e, torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(4)))
    assert names == ["MainThread"] * 4
    assert triangle.worth_threads_per_image(2048, 7 * 7) and triangle.worth_threads_per_image(1024, 14 * 14)
    assert not triangle.worth_threads_per_image(512, 7 * 7)


def test_only_cfcam_on_the_fast_engine_is_worth_threads(tiny_resnet, monkeypatch):
    with GradCAM(tiny_resnet, "layer4[-1]") as g, CFCAM(tiny_resnet, "layer4[-1]") as c:
        assert not runner.images_in_threads(g, 2048, 49)
        assert runner.images_in_threads(c, 2048, 49)
        monkeypatch.setenv("CFCAM_ENGINE", "plain")  # scikit-learn's DBSCAN holds the GIL: no threads
        assert not runner.images_in_threads(c, 2048, 49)


@pytest.mark.parametrize("free", [1, 2])
def test_a_busy_machine_gets_its_images_one_after_the_other_and_a_quiet_one_a_threaded_product(
        tiny_resnet, monkeypatch, free):
    """The CPUs the model's pass kept busy decide: with only one (another process has the other core), a
    batch's large maps run one after the other in the calling thread and each product on one torch thread;
    with two, a single image's large product runs on two torch threads (and a batch's images in threads)."""
    shares, names, product_threads = [], [], []
    real_explain, real_threads = base.CFCAM.explain_one, triangle.torch_threads

    def spy_explain(self, a, g):
        names.append(threading.current_thread().name)
        return real_explain(self, a, g)

    def spy_threads(count):
        product_threads.append(count)
        return real_threads(count)

    def cpus_free(used):
        shares.append(used)
        return free

    monkeypatch.setattr(base.CFCAM, "explain_one", spy_explain)
    monkeypatch.setattr(triangle, "torch_threads", spy_threads)
    monkeypatch.setattr(runner, "available_cpus", lambda: 2)
    monkeypatch.setattr(runner, "cpus_free", cpus_free)
    monkeypatch.setattr(triangle, "_PARALLEL_IMAGES", 0)  # these small maps count as large
    with CFCAM(tiny_resnet, "layer4[-1]") as e:
        runner.run_batch(e, torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)))
        # the CPUs the pass kept busy: above 0, at most a little over the CPUs torch may use
        assert len(shares) == 1 and 0.0 < shares[0] <= torch.get_num_threads() + 1.0
        assert product_threads == [free]
        names.clear()
        product_threads.clear()
        runner.run_batch(e, torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(6)))
    if free == 1:
        assert names == ["MainThread"] * 4 and product_threads == [1] * 4
    else:  # shared out (which thread takes which image depends on timing): each image's product on one thread
        assert len(names) == 4 and product_threads == [1] * 4


@pytest.mark.parametrize("cls", [GradCAM, CFCAM])
def test_on_captured_is_called_once_between_the_models_pass_and_the_maps(tiny_resnet, cls):
    """The command line starts its file work there; it must come after the model's pass, before any map."""
    events = []

    class Spy(cls):
        def explain_one(self, activations, gradients):
            events.append("map")
            return super().explain_one(activations, gradients)

    handle = tiny_resnet.register_forward_hook(lambda *_: events.append("model"))
    try:
        with Spy(tiny_resnet, "layer4[-1]") as cam:
            runner.run_batch(cam, torch.randn(3, 3, 64, 64), on_captured=lambda: events.append("captured"))
            assert events == ["model", "captured", "map", "map", "map"]
            events.clear()
            runner.run_batch(cam, torch.randn(1, 3, 64, 64))
            assert events == ["model", "map"]
    finally:
        handle.remove()


def test_an_explanation_carries_maps_results_targets_and_predictions(tiny_resnet):
    """The explainer returns what it computed; nothing needs reading back off its state."""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with CFCAM(tiny_resnet, "layer4[-1]") as e:
        done = e.explain(x, [1, 0])
        again = e(x, [1, 0])
    assert done.maps.shape == (2, 64, 64) and done.maps.dtype == np.float32
    np.testing.assert_array_equal(done.maps, again)
    assert done.targets == [1, 0] and len(done.results) == 2
    assert done.predictions.shape == (2, 2) and np.allclose(done.predictions.sum(axis=1), 1.0)
