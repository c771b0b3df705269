"""The evaluation's second round (issue 24): localisation on the mask's class with zero maps as misses, the
metric registry, draw-aware intervals, the published metrics' flag, plots, stopping; the new metrics
cross-checked against Quantus and pytorch-grad-cam. A tiny CNN keeps the engine's runs to seconds."""

import csv

import numpy as np
import pytest
import torch
from torch import nn

from cfcam.evaluation import registry
from cfcam.evaluation import sanity as sa
from cfcam.evaluation.complexity import gini
from cfcam.evaluation.engine import EvalData, EvalSettings, Evaluation, EvaluationStopped, MethodRun
from cfcam.evaluation.localisation import energy_in_mask, pointing_game_scores
from cfcam.evaluation.plots import method_styles, plot_bars
from cfcam.evaluation.report import (
    discrimination,
    draw_interval,
    draw_spread,
    markdown_table,
    with_draw_intervals,
    write_report,
)
from cfcam.evaluation.summary import bootstrap_ci, summarise
from cfcam.methods.registry import create


class Tiny(nn.Module):
    """Two convolutions and a classifier: every top-level child with parameters holds one module that Quantus
    resets, so its bottom-up cascade and ours re-initialise the same layers in the same order."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.layer1 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.layer1(self.relu(self.conv1(x))))).flatten(1))


FAST = dict(layer="layer1", subset=2, randomisation_seeds=3, cascade_seeds=2, steps=3, road_percentiles=(50,),
            published_sigmas=(0.1,), fair_sigmas=(0.1,), threads=1)


@pytest.fixture(scope="module")
def tiny():
    model = Tiny().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, 32, 32, generator=gen)
    masks = np.zeros((5, 32, 32), bool)
    masks[:, 4:12, 4:12] = True
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy()
    labels = predicted.copy()
    labels[[1, 3]] = 1 - labels[[1, 3]]  # two "mispredicted" images: the mask marks the other class
    return model, EvalData(x, masks, labels, "tiny"), predicted


@pytest.fixture(scope="module")
def tiny_runs(tiny):
    model, data, _ = tiny
    ev = Evaluation(model, data, EvalSettings(**FAST))
    return ev, ev.run(["gradcam", "cfcam-readme", "random"])


def rows_of(run, metric):
    return {r[1]: (r[3], r[4], t) for r, t in zip(run.rows, run.targets) if r[2] == metric}


# -- localisation: the mask's class, every image, zero maps are misses --------------------------------------

def test_zero_maps_are_misses_not_dropped():
    mask = np.zeros((2, 16, 16), bool)
    mask[:, 2:6, 2:6] = True
    maps = np.zeros((2, 16, 16))
    maps[0, 3, 3] = 1.0
    assert pointing_game_scores(maps, mask).tolist() == [1.0, 0.0]
    assert energy_in_mask(maps, mask).tolist() == [1.0, 0.0]


def test_one_energy_in_mask_for_the_engine_and_the_shortcut_module():
    from cfcam.evaluation import shortcut

    assert shortcut.energy_in_mask is energy_in_mask


def test_localisation_scores_the_mask_class_on_every_image_for_every_method(tiny, tiny_runs):
    model, data, predicted = tiny
    _, runs = tiny_runs
    for run in runs:
        for metric in ("pointing_game", "energy_in_mask", "zero_maps_localised"):
            got = rows_of(run, metric)
            assert sorted(got) == list(range(len(data)))  # the same images for every method
            assert all(np.isfinite(v) for v, _, _ in got.values())  # a zero map is a miss, never NaN
            assert [got[i][2] for i in range(len(data))] == [str(int(c)) for c in data.labels]
        # the confidence metrics follow the explained (top) class, and say so
        drop = rows_of(run, "average_drop")
        assert [drop[i][2] for i in range(len(data))] == [str(int(c)) for c in predicted]
        assert [v for v, _, _ in rows_of(run, "mispredicted").values()] == [0.0, 1.0, 0.0, 1.0, 0.0]
    # the mispredicted image's localisation map is the map of the mask's class, not of the predicted one
    with create("gradcam", model, "layer1") as explainer:
        label_map = explainer(data.inputs[1:2], targets=[int(data.labels[1])])
        predicted_map = explainer(data.inputs[1:2], targets=[int(predicted[1])])
    gradcam = next(r for r in runs if r.method == "gradcam")
    expected = energy_in_mask(label_map, data.masks[1:2])[0]
    assert rows_of(gradcam, "energy_in_mask")[1][0] == pytest.approx(expected, abs=1e-6)
    assert abs(energy_in_mask(predicted_map, data.masks[1:2])[0] - expected) > 1e-3


def test_per_image_csv_names_each_rows_class(tiny_runs, tmp_path):
    ev, runs = tiny_runs
    write_report(runs, tmp_path, {"description": "tiny", "seed": 0}, plots=False)
    with open(tmp_path / "per_image.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert "target" in rows[0]
    pg = [r for r in rows if r["metric"] == "pointing_game" and r["method"] == "gradcam"]
    assert [r["target"] for r in pg] == [str(int(c)) for c in ev.data.labels]
    cc = [r for r in rows if r["metric"] == "class_correlation" and r["method"] == "gradcam"]
    assert all(" vs " in r["target"] for r in cc)
    table = (tmp_path / "table.md").read_text()
    assert "mispredicted (2)" in table and "the class the mask marks" in table


# -- the registry ---------------------------------------------------------------------------------------------

def test_every_row_metric_is_in_the_registry_with_its_fields(tiny_runs):
    _, runs = tiny_runs
    names = {r[2] for run in runs for r in run.rows}
    assert {"sparseness", "cascade_bottom_up_spearman@conv1", "road"} <= names
    for name in names:
        entry = registry.get(name)
        assert entry is not None, name
        assert entry.category in registry.CATEGORIES and entry.direction in registry.DIRECTIONS
    assert registry.direction("deletion_auc") == "lower" and registry.direction("robustness_fair_ssim@0.1") == "higher"


def test_adding_a_metric_is_one_entry(tiny):
    model, data, _ = tiny
    registry.register("mean_map_value", "complexity", "", lambda ctx: ctx.maps.mean(axis=(1, 2)), cost="free")
    try:
        settings = EvalSettings(**{**FAST, "cascade": False})
        run, = Evaluation(model, data, settings).run(["random"])
        values = rows_of(run, "mean_map_value")
        assert len(values) == len(data) and all(0 < v < 1 for v, _, _ in values.values())
        with pytest.raises(ValueError, match="registered already"):
            registry.register("mean_map_value", "complexity", "", lambda ctx: 0)
    finally:
        del registry.METRICS["mean_map_value"]
    with pytest.raises(ValueError, match="category must be one of"):
        registry.register("x", "beauty", "higher", lambda ctx: 0)


# -- cross-checks of the new metrics ------------------------------------------------------------------------

def test_sparseness_agrees_with_quantus():
    import quantus

    rng = np.random.default_rng(3)
    maps = rng.random((4, 1, 16, 16)).astype(np.float32) ** 4
    maps[3] = 0.0
    x = np.zeros((4, 1, 16, 16), np.float32)
    expected = quantus.Sparseness(disable_warnings=True, display_progressbar=False)(
        model=None, x_batch=x, y_batch=np.zeros(4, int), a_batch=maps)
    assert np.allclose(gini(maps[:, 0]), expected, atol=1e-6)
    assert gini(np.ones((1, 4, 4)))[0] == pytest.approx(0.0, abs=1e-9)


def test_road_is_pytorch_grad_cams_road_combined_over_the_percentiles(tiny):
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from cfcam.evaluation import faithfulness as fa

    model, data, predicted = tiny
    maps = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    ours = fa.road(model, data.inputs[:2], maps, predicted[:2], (20, 40, 60, 80), seed=5)
    torch.manual_seed(5)
    theirs = ROADCombined(percentiles=[20, 40, 60, 80])(
        data.inputs[:2], maps, [ClassifierOutputSoftmaxTarget(int(t)) for t in predicted[:2]], model)
    assert np.allclose(ours, theirs, atol=1e-6)


def test_bottom_up_cascade_agrees_with_quantus_mprt(tiny):
    import quantus

    model, data, predicted = tiny
    seed = 42  # Quantus seeds every layer with seed + 1, as our draw 0 of settings.seed = 43 does
    run, = Evaluation(model, data, EvalSettings(**{**FAST, "seed": seed + 1, "cascade_seeds": 1})).run(["gradcam"])
    x = data.inputs[:FAST["subset"]]

    def explain(model, inputs, targets, **kwargs):
        with create("gradcam", model, "layer1") as e:
            return e(torch.as_tensor(inputs), targets=[int(t) for t in targets])[:, None]

    y = predicted[:len(x)]
    mprt = quantus.MPRT(layer_order="bottom_up", seed=seed, return_last_correlation=False,
                        disable_warnings=True, display_progressbar=False)
    scores = mprt(model=model, x_batch=x.numpy(), y_batch=y, a_batch=explain(model, x, y), explain_func=explain,
                  softmax=False)
    assert sa.cascade_layers(model, "bottom_up") == ["conv1", "layer1", "fc"]
    for layer in ("conv1", "layer1", "fc"):
        ours = [v for v, _, _ in rows_of(run, f"cascade_bottom_up_spearman@{layer}").values()]
        assert np.allclose(ours, scores[layer], atol=1e-6), layer


def test_the_cascades_first_step_is_the_classifier_checks_draws(tiny_runs):
    _, runs = tiny_runs
    gradcam = next(r for r in runs if r.method == "gradcam")
    first = gradcam.draws["cascade_spearman@fc"]
    assert first.shape == (FAST["randomisation_seeds"], FAST["subset"])
    assert np.array_equal(first, gradcam.draws["randomisation_spearman"][:, :FAST["subset"]], equal_nan=True)


# -- intervals over images and draws ----------------------------------------------------------------------------

def test_draw_interval_includes_the_draws_chance():
    rng = np.random.default_rng(0)
    per_draw = rng.normal(0, 0.3, (5, 1)) + rng.normal(0, 0.01, (5, 100))  # one draw moves every image
    image_only = bootstrap_ci(per_draw.mean(axis=0))
    both = draw_interval(per_draw)
    assert both[1] - both[0] > 5 * (image_only[1] - image_only[0])
    lo, hi, k = draw_spread(per_draw)
    assert k == 5 and lo < per_draw.mean() < hi
    assert all(np.isnan(draw_interval(np.full((3, 4), np.nan))))


def _draw_interval_one_resample_at_a_time(per_draw, resamples=2000, level=0.95, seed=0):
    """The interval as first written: one resample per loop turn (the vectorised one must give its values)."""
    d = np.asarray(per_draw, dtype=np.float64)
    k, n = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    finite = np.isfinite(d)
    values = np.where(finite, d, 0.0)
    for b in range(resamples):
        rows, cols = rng.integers(0, k, k), rng.integers(0, n, n)
        sums, counts = values[rows][:, cols].sum(axis=0), finite[rows][:, cols].sum(axis=0)
        ok = counts > 0
        means[b] = (sums[ok] / counts[ok]).mean() if ok.any() else np.nan
    tail = (1.0 - level) / 2 * 100
    return tuple(float(x) for x in np.nanpercentile(means, [tail, 100 - tail]))


@pytest.mark.parametrize("shape, undefined", [((20, 50), 0.0), ((20, 50), 0.3), ((3, 10), 0.6), ((1, 7), 0.0),
                                              ((5, 1), 0.0), ((20, 50), 0.97)])
def test_draw_interval_equals_one_resample_at_a_time(shape, undefined):
    rng = np.random.default_rng(1)
    d = rng.random(shape)
    d[rng.random(shape) < undefined] = np.nan
    d[0, 0] = 0.5  # at least one defined value
    np.testing.assert_allclose(draw_interval(d), _draw_interval_one_resample_at_a_time(d), rtol=1e-12)
    np.testing.assert_allclose(draw_interval(d, seed=3), _draw_interval_one_resample_at_a_time(d, seed=3),
                               rtol=1e-12)


def test_summary_intervals_of_draw_metrics_resample_draws(tiny_runs):
    _, runs = tiny_runs
    rows = [r for run in runs for r in run.rows]
    plain = {(r[0], r[1]): r for r in summarise(rows)}
    fixed = {(r[0], r[1]): r for r in with_draw_intervals(summarise(rows), runs)}
    key = ("gradcam", "randomisation_spearman")
    assert fixed[key][2] == plain[key][2] and fixed[key][5] == plain[key][5]
    assert fixed[key][3] <= fixed[key][2] <= fixed[key][4]
    assert fixed[("gradcam", "pointing_game")] == plain[("gradcam", "pointing_game")]


# -- metrics that cannot separate maps say so --------------------------------------------------------------

def test_published_metrics_that_do_not_discriminate_are_flagged():
    same = [0.0] * 9 + [100.0]
    runs = [MethodRun(m, [(m, i, "average_drop_published", v, "") for i, v in enumerate(same)]
                      + [(m, i, "average_drop", v + k, "") for i, v in enumerate(same)], {}, {})
            for k, m in enumerate(("gradcam", "random"))]
    flags = discrimination(runs)
    assert set(flags) == {"average_drop_published"}
    assert "1 of 1 methods (gradcam)" in flags["average_drop_published"]
    assert "1 of 10 images" in flags["average_drop_published"]
    table = markdown_table(summarise([r for run in runs for r in run.rows]), ["average_drop_published"],
                           flags=flags)
    assert "average_drop_published (↓) †" in table


# -- plots ----------------------------------------------------------------------------------------------------

def test_every_method_has_its_own_colour_and_marker():
    styles = method_styles([f"m{i}" for i in range(25)])
    assert len(set(styles.values())) == 25
    assert len({c for c, _ in list(styles.values())[:20]}) == 20


def test_bars_carry_n_draw_single_images_as_points_and_undefined_as_na():
    summary = [("a", "pointing_game", 0.5, 0.4, 0.6, 10), ("b", "pointing_game", 1.0, 1.0, 1.0, 1),
               ("c", "pointing_game", float("nan"), float("nan"), float("nan"), 0)]
    fig = plot_bars(summary, None, ["pointing_game"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "n=10" in texts and "n=1" in texts and "n/a" in texts
    assert len(ax.patches) == 1  # one bar (n=10); n=1 is a point
    assert any(len(line.get_xdata()) == 1 for line in ax.lines)


# -- stopping -------------------------------------------------------------------------------------------------

def test_should_stop_ends_the_run_between_batches(tiny):
    model, data, _ = tiny
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    ev = Evaluation(model, data, EvalSettings(**FAST), should_stop=stop)
    with pytest.raises(EvaluationStopped):
        ev.run(["gradcam"])
    assert len(calls) == 4
    assert issubclass(EvaluationStopped, KeyboardInterrupt)


def test_settings_are_checked():
    model = Tiny()
    data = EvalData(torch.zeros(1, 3, 32, 32), None, np.zeros(1, int), "one")
    for option in ("randomisation_seeds", "cascade_seeds"):
        with pytest.raises(ValueError, match=f"{option} must be an integer >= 1"):
            Evaluation(model, data, EvalSettings(**{option: 0}))
    with pytest.raises(ValueError, match="threads must be None"):
        Evaluation(model, data, EvalSettings(threads=0))


def test_progress_counts_estimated_work_up_to_its_total(tiny):
    model, data, _ = tiny
    seen = []
    settings = EvalSettings(**{**FAST, "cascade": False})
    Evaluation(model, data, settings, progress=lambda done, total, label: seen.append((done, total))).run(
        ["gradcam", "random"])
    totals = {t for _, t in seen}
    assert len(totals) == 1 and totals.pop() > 2 * len(data)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == seen[-1][1]


def test_bars_of_a_narrow_range_keep_a_sane_figure_size(tmp_path):
    summary = [("a", "pointing_game", 1.0, 1.0 - 1e-12, 1.0, 5), ("b", "pointing_game", 1.0, 1.0, 1.0, 1),
               ("c", "pointing_game", float("nan"), float("nan"), float("nan"), 0)]
    plot_bars(summary, tmp_path / "bars.png", ["pointing_game"])
    from PIL import Image

    with Image.open(tmp_path / "bars.png") as img:
        assert max(img.size) < 3000
