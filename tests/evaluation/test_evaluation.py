"""Evaluation metrics on constructed cases with known answers, cross-checked against Quantus and scikit-image."""

import numpy as np
import pytest
import torch
from torch import nn

from cfcam.evaluation import faithfulness as fa
from cfcam.evaluation import robustness as rb
from cfcam.evaluation import sanity as sa
from cfcam.evaluation.localisation import energy_in_mask, is_zero_map, pointing_game_scores
from cfcam.evaluation.similarity import mse, pearson, spearman, ssim
from cfcam.evaluation.summary import bootstrap_ci, summarise
from cfcam.methods.registry import create
from cfcam.world.models import load_model
from cfcam.world.synthetic import make_dataset
from cfcam.world.train import to_input


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


@pytest.fixture(scope="module")
def demo():
    model, _ = load_model("demo")
    images, _, masks = make_dataset(4, 21, balance=1.0)
    return model, to_input(images), masks


# -- localisation -----------------------------------------------------------------------------------------

def test_pointing_game_hits_within_15_px_and_counts_a_zero_map_as_a_miss():
    mask = disc((64, 64), (20, 20), 3)
    maps = np.zeros((4, 64, 64))
    maps[0, 20, 20] = 1  # inside
    maps[1, 20, 35] = 1  # 12 px from the mask's edge
    maps[2, 20, 50] = 1  # 27 px away
    scores = pointing_game_scores(maps, np.stack([mask] * 4))
    assert scores.tolist() == [1.0, 1.0, 0.0, 0.0]  # an all-zero map points nowhere: a miss


def test_energy_in_mask_known_values():
    mask = np.zeros((1, 10, 10), bool)
    mask[0, :5] = True
    assert energy_in_mask(np.ones((1, 10, 10)), mask)[0] == pytest.approx(0.5)
    assert energy_in_mask(mask.astype(float), mask)[0] == pytest.approx(1.0)
    assert energy_in_mask(np.zeros((1, 10, 10)), mask)[0] == 0.0  # no mass anywhere: none in the mask
    assert is_zero_map(np.zeros((1, 3, 3))).tolist() == [True]


def test_localisation_agrees_with_quantus():
    import quantus  # a test dependency (make test installs it): missing, the test fails rather than skips
    rng = np.random.default_rng(0)
    maps = rng.random((6, 1, 32, 32)).astype(np.float32)
    masks = np.stack([disc((32, 32), rng.integers(8, 24, 2), 5) for _ in range(6)])[:, None].astype(np.float32)
    x = np.zeros((6, 1, 32, 32), np.float32)
    y = np.zeros(6, int)
    pg = quantus.PointingGame(disable_warnings=True, display_progressbar=False)(
        model=None, x_batch=x, y_batch=y, a_batch=maps, s_batch=masks)
    assert pointing_game_scores(maps[:, 0], masks[:, 0] > 0, tolerance=0).tolist() == [float(v) for v in pg]
    rma = quantus.RelevanceMassAccuracy(disable_warnings=True, display_progressbar=False)(
        model=None, x_batch=x, y_batch=y, a_batch=maps, s_batch=masks)
    assert np.allclose(energy_in_mask(maps[:, 0], masks[:, 0] > 0), rma, atol=1e-5)


# -- similarity -------------------------------------------------------------------------------------------

def test_similarities_known_values_and_undefined_cases():
    rng = np.random.default_rng(1)
    a = rng.random((20, 20))
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert pearson(a, 3 * a) == pytest.approx(1.0)
    assert np.isnan(spearman(a, np.zeros_like(a))) and np.isnan(pearson(np.ones_like(a), a))
    assert ssim(a, a) == pytest.approx(1.0)
    assert mse(a, a + 0.5) == pytest.approx(0.25)


def test_ssim_agrees_with_scikit_image():
    import skimage.metrics as metrics  # a test dependency: missing, the test fails rather than skips
    rng = np.random.default_rng(2)
    a, b = rng.random((40, 50)), rng.random((40, 50))
    b = 0.5 * a + 0.5 * b
    assert ssim(a, b) == pytest.approx(metrics.structural_similarity(a, b, data_range=1.0), abs=1e-9)


# -- faithfulness -----------------------------------------------------------------------------------------

class BoxModel(nn.Module):
    """Class 1's logit is 20 times the mean of channel 0 inside a box; class 0's logit is 0."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x):
        box = x[:, 0, 4:12, 4:12].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(box), self.scale * box], dim=1)


def test_step_counts_follow_the_published_schedule():
    counts = fa.step_counts(224 * 224, 101)
    assert counts[0] == 0 and counts[1] == 501 and counts[100] == 224 * 224 and len(counts) == 101
    with pytest.raises(ValueError):
        fa.step_counts(100, 1)


def test_auc_of_constant_and_linear_curves():
    assert fa.auc(np.full((1, 11), 0.3))[0] == pytest.approx(0.3)
    assert fa.auc(np.linspace(0, 1, 5)[None])[0] == pytest.approx(0.5)


def test_deletion_and_insertion_rank_a_map_on_the_evidence_above_one_off_it():
    model = BoxModel()
    x = torch.ones(1, 3, 16, 16)
    good = np.zeros((1, 16, 16))
    good[0, 4:12, 4:12] = 1 + np.arange(64).reshape(8, 8) / 64
    bad = np.zeros((1, 16, 16))
    bad[0, 12:, 12:] = 1
    bad[0] += 1e-3 * np.arange(256).reshape(16, 16)  # off the box first, box last
    maps = np.concatenate([good, bad])
    dele, ins = fa.deletion_insertion_curves(model, x.repeat(2, 1, 1, 1), maps, [1, 1], steps=9, kind="mean")
    assert dele[:, 0] == pytest.approx(dele[:, 0][0]) and ins.shape == (2, 9)
    d, i = fa.auc(dele), fa.auc(ins)
    assert d[0] < d[1] - 0.1 and i[0] > i[1] + 0.1
    zero = fa.deletion_insertion_curves(model, x, np.zeros((1, 16, 16)), [1], steps=5)
    assert np.isnan(zero[0]).all() and np.isnan(zero[1]).all()


def test_average_drop_published_is_not_clipped_and_chattopadhay_is():
    model = BoxModel()
    x = torch.full((1, 3, 16, 16), -2.5)  # below black (-2.12): blacking out the box raises p(class 1)
    black_box = np.zeros((1, 16, 16))  # map <= 0.5 everywhere: everything is blacked out
    published = fa.average_drop_published(model, x, black_box, [1])
    assert published[0] < 0
    drop, increase = fa.chattopadhay_drop_increase(model, x, black_box, [1])
    assert drop[0] == 0 and increase[0] == 1.0
    full = np.ones((1, 16, 16))
    assert fa.average_drop_published(model, x, full, [1])[0] == pytest.approx(0.0, abs=1e-6)


def test_average_increase_published_uses_the_mean_value_baseline():
    model = BoxModel()
    x = torch.ones(1, 3, 16, 16)
    base = fa.mean_value_baseline(x)
    assert torch.allclose(base[0, :, 0, 0], torch.tensor([0.485, 0.456, 0.406]))
    everything = fa.average_increase_published(model, x, np.ones((1, 16, 16)), [1])
    expected = fa.class_probability(model, x, [1]) - fa.class_probability(model, base, [1])
    assert everything[0] == pytest.approx(expected[0])
    nothing = fa.average_increase_published(model, x, np.zeros((1, 16, 16)), [1])
    assert nothing[0] == pytest.approx(0.0, abs=1e-7)


def test_road_through_pytorch_grad_cam_prefers_the_evidence(demo):
    model, x, masks = demo
    with create("gradcam", model, "layer4[-1]") as e:
        maps = e(x[:2])
    targets = e.capture.targets.numpy()
    good = fa.road(model, x[:2], maps, targets)
    inverted = fa.road(model, x[:2], 1 - maps, targets)
    assert np.all(good > inverted)
    assert np.isnan(fa.road(model, x[:1], np.zeros((1, 224, 224)), targets[:1])[0])


# -- sanity -----------------------------------------------------------------------------------------------

def test_randomised_copies_leave_the_model_alone(demo):
    model = demo[0]
    assert sa.classifier_layer(model) == "fc"
    layers = sa.cascade_layers(model)
    assert layers[:2] == ["fc", "layer4"] and layers[-1] == "conv1"
    before = model.fc.weight.clone()
    copy = sa.randomised(model, ["fc"], seed=3)
    assert torch.equal(model.fc.weight, before)
    assert not torch.equal(copy.fc.weight, before)
    assert torch.equal(copy.layer4[0].conv1.weight, model.layer4[0].conv1.weight)
    assert torch.equal(sa.randomised(model, ["fc"], seed=3).fc.weight, copy.fc.weight)
    with pytest.raises(ValueError, match="unknown"):
        sa.randomised(model, ["nope"])


def test_reference_map_fails_and_gradcam_passes_the_classifier_randomisation(demo):
    model, x, _ = demo
    rmodel = sa.randomised(model, ["fc"], seed=0)
    with torch.no_grad():
        targets = model(x).argmax(1).tolist()
    result = {}
    for name in ("gradcam", "cfcam-reference"):
        with create(name, model, "layer4[-1]") as e:
            a = e(x, targets=targets)
        with create(name, rmodel, "layer4[-1]") as e:
            b = e(x, targets=targets)
        result[name] = np.mean([spearman(u, v) for u, v in zip(a, b)])
    assert result["cfcam-reference"] > 0.99
    assert result["gradcam"] < 0.9


@pytest.mark.slow
def test_randomisation_agrees_with_quantus_mprt(demo):
    import quantus  # a test dependency (make test installs it): missing, the test fails rather than skips
    model, x, _ = demo
    x = x[:2]
    with torch.no_grad():
        y = model(x).argmax(1).numpy()

    def explain(model, inputs, targets, **kwargs):
        with create("gradcam", model, "layer4[-1]") as e:
            return e(torch.as_tensor(inputs), targets=[int(t) for t in targets])[:, None]

    a = explain(model, x, y)
    seed = 42
    mprt = quantus.MPRT(layer_order="top_down", seed=seed, return_last_correlation=False,
                        disable_warnings=True, display_progressbar=False)
    scores = mprt(model=model, x_batch=x.numpy(), y_batch=y, a_batch=a, explain_func=explain, softmax=False)
    ours = sa.randomised(model, ["fc"], seed=seed + 1)  # Quantus seeds each layer with seed + 1
    b = explain(ours, x, y)
    expected = [spearman(u, v) for u, v in zip(a[:, 0], b[:, 0])]
    assert np.allclose(scores["fc"], expected, atol=1e-6)


def test_runner_up_is_the_other_class():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    assert sa.runner_up(logits).tolist() == [1, 0]


# -- robustness -------------------------------------------------------------------------------------------

def test_published_noise_cannot_move_cfcam_but_moves_gradcam(demo):
    model, x, _ = demo
    from cfcam.core.capture import ActivationsAndGradients

    with ActivationsAndGradients(model, "layer4[-1]") as grab:
        cap = grab(x[:2])
    for name, changes in (("cfcam-reference", False), ("gradcam", True)):
        with create(name, model, "layer4[-1]") as e:
            clean = rb.maps_from_capture(e, cap.activations, cap.gradients, (224, 224))
            noisy = rb.gradient_noise_maps(e, cap.activations, cap.gradients, (224, 224), 0.3, "published",
                                           torch.Generator().manual_seed(0))
        assert (mse(clean, noisy) > 1e-3) == changes


def test_fair_noise_is_relative_to_the_gradient_scale():
    g = torch.randn(2, 8, 4, 4)
    a = rb.noisy_gradients(g, 0.1, "fair", torch.Generator().manual_seed(0)) - g
    b = rb.noisy_gradients(1000 * g, 0.1, "fair", torch.Generator().manual_seed(0)) - 1000 * g
    assert torch.allclose(b, 1000 * a, rtol=1e-3, atol=1e-3)
    assert torch.equal(rb.noisy_gradients(g, 0.0, "fair", torch.Generator()), g)
    with pytest.raises(ValueError, match="protocol"):
        rb.noisy_gradients(g, 0.1, "other", torch.Generator())


# -- summary ----------------------------------------------------------------------------------------------

def test_bootstrap_interval_and_summary_counts():
    values = np.arange(50, dtype=float)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 20
    assert bootstrap_ci([2.0, 2.0]) == (2.0, 2.0)
    assert all(np.isnan(bootstrap_ci([np.nan])))
    rows = [("m", i, "metric", v, "") for i, v in enumerate([1.0, np.nan, 3.0])]
    (method, metric, mean, lo, hi, n), = summarise(rows)
    assert (method, metric, mean, n) == ("m", "metric", 2.0, 2)


def test_randomisation_seeds_are_checked_before_anything_runs(demo):
    from cfcam.evaluation.engine import EvalData, EvalSettings, Evaluation

    model, x, _ = demo
    data = EvalData(x[:1], None, np.zeros(1, dtype=int), "one image")
    with pytest.raises(ValueError, match="randomisation_seeds must be an integer >= 1, got 0"):
        Evaluation(model, data, EvalSettings(randomisation_seeds=0))
