"""Both explainers on a small torchvision model, and what the spec says about layer4 of a GAP+FC net."""

import numpy as np
import pytest
import torch

from cfcam import CFCAM, GradCAM, overlay, preprocess


@pytest.mark.parametrize("make", [lambda m: GradCAM(m, "layer4[-1]"),
                                  lambda m: CFCAM(m, "layer4[-1]"),
                                  lambda m: CFCAM(m, "layer3", preset="reference", filter="gaussian")])
def test_explainer_output(tiny_resnet, make):
    x = torch.randn(3, 3, 128, 160)
    with make(tiny_resnet) as cam:
        maps = cam(x)
    assert maps.shape == (3, 128, 160) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert len(cam.results) == 3
    np.testing.assert_allclose(cam.predictions.sum(1), 1, rtol=1e-5)


def test_gradient_is_spatially_constant_at_last_block_and_gradcam_equals_cam(tiny_resnet):
    """At layer4[-1] of a GAP+FC ResNet, G_k = W_fc[c, k] / (h*w): Grad-CAM is the original CAM."""
    x = torch.randn(1, 3, 224, 224)
    with GradCAM(tiny_resnet, "layer4[-1]") as cam:
        cam(x, targets=1)
    g = cam.capture.gradients[0]
    h, w = g.shape[-2:]
    expected = tiny_resnet.fc.weight[1].detach()[:, None, None].expand_as(g) / (h * w)
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-9)
    a = cam.capture.activations[0]
    original_cam = torch.relu(torch.einsum("chw,c->hw", a, tiny_resnet.fc.weight[1].detach()))
    torch.testing.assert_close(torch.as_tensor(cam.results[0].cam) * h * w, original_cam, rtol=1e-4, atol=1e-5)


def test_gradient_varies_in_space_at_layer3(tiny_resnet):
    with GradCAM(tiny_resnet, "layer3") as cam:
        cam(torch.randn(1, 3, 224, 224))
    g = cam.capture.gradients[0]
    assert float((g.amax((1, 2)) - g.amin((1, 2))).max()) > 0


def test_invalid_config_fails_before_touching_the_model(tiny_resnet):
    with pytest.raises(ValueError, match="eps_percentile"):
        CFCAM(tiny_resnet, "layer4", eps_percentile=200)
    assert all(len(m._forward_hooks) == 0 for m in tiny_resnet.modules())


def test_preprocess_and_overlay():
    img = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    x = preprocess(img)
    assert x.shape == (1, 3, 224, 224)
    # a white pixel maps to (1 - mean) / std
    white = preprocess(np.full((10, 10, 3), 255, np.uint8))[0, :, 0, 0]
    torch.testing.assert_close(white, (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    heat = np.zeros((7, 7), np.float32)
    out = overlay(heat, img)
    assert out.shape == img.shape and out.dtype == np.uint8
    # JET at 0 is dark blue (0, 0, 128): 0.4 * blue + 0.6 * image
    expected = np.uint8(np.array([0, 0, 128]) * 0.4 + img * 0.6)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="alpha"):
        overlay(heat, img, alpha=1.5)


def test_cfcam_explains_a_batch_in_parallel_threads_with_the_sequential_results(tiny_resnet, monkeypatch):
    """Large enough maps: the images of a batch are shared out between the calling thread and the core's
    threads, two at once here; order, maps and results are the loop's."""
    import threading

    from cfcam.core import clustering, threads
    from cfcam.methods import base

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
    monkeypatch.setattr(base, "available_cpus", lambda: 2)
    monkeypatch.setattr(base, "cpus_free", lambda used: 2)  # the model's pass had two CPUs
    monkeypatch.setenv(threads.CORE_THREADS_ENV, "2")
    monkeypatch.setattr(clustering, "_PARALLEL_IMAGES", 0)  # these small maps count as large
    threads_before = torch.get_num_threads()
    with CFCAM(tiny_resnet, "layer4[-1]", "reference") as e:
        parallel = e(x, targets=[0, 1, 0, 1, 0])
        labels = [r.labels for r in e.results]
    assert len(names) == 5 and len(set(names[:2])) == 2
    assert set(names) <= {"MainThread"} | {n for n in names if n.startswith("cfcam-block")}
    assert torch.get_num_threads() == threads_before  # the one-thread setting is restored
    monkeypatch.setattr(clustering, "_PARALLEL_IMAGES", float("inf"))
    sharing[0] = False
    names.clear()
    with CFCAM(tiny_resnet, "layer4[-1]", "reference") as e:
        sequential = e(x, targets=[0, 1, 0, 1, 0])
        assert all(np.array_equal(a, r.labels) for a, r in zip(labels, e.results))
    assert names == ["MainThread"] * 5
    np.testing.assert_array_equal(parallel, sequential)


def test_small_maps_are_explained_in_the_calling_thread(tiny_resnet, monkeypatch):
    """Below the size where threads pay (their hand-overs of the GIL cost more than a small core), a batch's
    images run one after the other in the calling thread; a ResNet50's layer4 at 224 px is shared out."""
    import threading

    from cfcam.core.clustering import worth_threads_per_image
    from cfcam.methods import base

    names = []
    real = base.CFCAM.explain_one

    def spy(self, a, g):
        names.append(threading.current_thread().name)
        return real(self, a, g)

    monkeypatch.setattr(base.CFCAM, "explain_one", spy)
    monkeypatch.setattr(base, "available_cpus", lambda: 2)
    with CFCAM(tiny_resnet, "layer4[-1]") as e:
        e(torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(4)))
    assert names == ["MainThread"] * 4
    assert worth_threads_per_image(2048, 7 * 7) and worth_threads_per_image(1024, 14 * 14)
    assert not worth_threads_per_image(512, 7 * 7)


@pytest.mark.parametrize("free", [1, 2])
def test_a_busy_machine_gets_its_images_one_after_the_other_and_a_quiet_one_a_threaded_product(
        tiny_resnet, monkeypatch, free):
    """The CPUs the model's pass kept busy decide: with only one (another process has the other core), a
    batch's large maps run one after the other in the calling thread and each product on one torch thread;
    with two, a single image's large product runs on two torch threads (and a batch's images in threads)."""
    import threading

    from cfcam.core import clustering
    from cfcam.methods import base

    shares, names, product_threads = [], [], []
    real_explain, real_threads = base.CFCAM.explain_one, clustering.torch_threads

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
    monkeypatch.setattr(clustering, "torch_threads", spy_threads)
    monkeypatch.setattr(base, "available_cpus", lambda: 2)
    monkeypatch.setattr(base, "cpus_free", cpus_free)
    monkeypatch.setattr(clustering, "_PARALLEL_IMAGES", 0)  # these small maps count as large
    with CFCAM(tiny_resnet, "layer4[-1]") as e:
        e(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)))
        assert shares == [e.capture.cpus_used] and e.capture.cpus_used > 0
        assert product_threads == [free]
        names.clear()
        product_threads.clear()
        e(torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(6)))
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
            cam.on_captured = lambda: events.append("captured")
            cam(torch.randn(3, 3, 64, 64))
            assert events == ["model", "captured", "map", "map", "map"]
            cam.on_captured = None
            events.clear()
            cam(torch.randn(1, 3, 64, 64))
            assert events == ["model", "map"]
    finally:
        handle.remove()
