"""``cfcam evaluate``: the files it writes, their exact columns, rows that say why a value is missing, and
usage errors (exit 2 with a clear line)."""

import csv
import json
import math

import pytest

from cfcam import cli
from cfcam.evaluation.summary import PER_IMAGE_COLUMNS, SUMMARY_COLUMNS
from cfcam.methods.registry import method_names

pytestmark = pytest.mark.slow  # whole `cfcam evaluate` runs: `make test` runs them, `make test-fast` does not


def read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


@pytest.fixture(scope="module")
def run_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    code = cli.main(["evaluate", "-o", str(out), "--n", "4", "--subset", "2", "--seed", "3",
                     "--methods", "gradcam,cfcam-readme,centre", "--quiet"])
    return code, out


def test_writes_every_file_with_the_exact_columns(run_small):
    code, out = run_small
    assert code == 0
    for name in ("summary.csv", "per_image.csv", "table.md", "run.json", "metrics.png", "curves.png", "cascade.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    header, rows = read(out / "summary.csv")
    assert tuple(header) == SUMMARY_COLUMNS == ("method", "metric", "mean", "ci_low", "ci_high", "n")
    assert {r[0] for r in rows} == {"gradcam", "cfcam-readme", "centre"}
    metrics = {r[1] for r in rows}
    for required in ("pointing_game", "energy_in_mask", "deletion_auc", "insertion_auc", "road", "average_drop",
                     "increase_in_confidence", "randomisation_spearman", "class_correlation", "zero_maps",
                     "ms_per_image"):
        assert required in metrics
    for r in rows:
        if int(r[5]) > 0:
            assert float(r[3]) <= float(r[2]) + 1e-9 <= float(r[4]) + 2e-9
    header, per_image = read(out / "per_image.csv")
    assert tuple(header) == PER_IMAGE_COLUMNS
    info = json.loads((out / "run.json").read_text())
    assert info["n"] == 4 and info["seed"] == 3


def test_no_value_is_dropped_and_missing_values_say_why(run_small):
    _, out = run_small
    _, per_image = read(out / "per_image.csv")
    count = {}
    for method, image, metric, value, note, *_ in per_image:
        count[(method, metric)] = count.get((method, metric), 0) + 1
        if math.isnan(float(value)):
            assert note, f"{method} {metric} image {image}: a missing value without a reason"
    assert count[("gradcam", "pointing_game")] == 4 and count[("gradcam", "deletion_auc")] == 2
    _, summary = read(out / "summary.csv")
    by = {(r[0], r[1]): r for r in summary}
    # class correlation is undefined where either of cfcam-readme's maps is zero everywhere: n counts the others
    flags = {(int(i), m): float(v) for meth, i, m, v, *_ in per_image if meth == "cfcam-readme"}
    both = sum(flags[(i, "zero_maps")] == 0 and flags[(i, "zero_maps_runner_up")] == 0 for i in range(4))
    assert int(by[("cfcam-readme", "class_correlation")][5]) == both


def test_same_seed_same_numbers(run_small, tmp_path):
    _, out = run_small
    code = cli.main(["evaluate", "-o", str(tmp_path), "--n", "4", "--subset", "2", "--seed", "3",
                     "--methods", "centre", "--quiet", "--no-plots"])
    assert code == 0
    first = {(r[0], r[1]): r[2:] for r in read(out / "summary.csv")[1] if r[0] == "centre" and r[1] != "ms_per_image"}
    second = {(r[0], r[1]): r[2:] for r in read(tmp_path / "summary.csv")[1] if r[1] != "ms_per_image"}
    assert first == second


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n"),
    (["--methods", "gradcam,nope"], "unknown method(s) nope"),
    (["--methods", "gradcam,gradcam"], "twice"),
    (["--steps", "1"], "--steps"),
    (["--seed", "-1"], "--seed"),
    (["--layer", "layer9"], "--layer"),
    (["--model", "resnet50"], "--model"),
])
def test_bad_arguments_exit_2_with_a_clear_line(tmp_path, capsys, args, message):
    code = cli.main(["evaluate", "-o", str(tmp_path / "out"), *args])
    assert code == 2
    err = capsys.readouterr().err
    assert "cfcam evaluate: error:" in err and message in err


def test_output_must_be_given_and_a_folder(tmp_path, capsys):
    assert cli.main(["evaluate"]) == 2
    assert "-o/--output" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["evaluate", "-o", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_every_registered_method_is_accepted():
    from cfcam.cli.evaluate import method_list

    assert method_list(",".join(method_names())) == method_names()


def test_demo_shortcut_reports_both_truths(tmp_path):
    """The shortcut model is evaluated on lesion images that all carry the marker; its rows score every method
    against the marker next to the lesion, and (as its card measured) Grad-CAM points at the marker."""
    code = cli.main(["evaluate", "-o", str(tmp_path), "--model", "demo-shortcut", "--n", "6", "--subset", "1",
                     "--seed", "5", "--methods", "gradcam,cfcam-reference", "--quiet"])
    assert code == 0
    _, rows = read(tmp_path / "summary.csv")
    got = {(r[0], r[1]): float(r[2]) for r in rows}
    for method in ("gradcam", "cfcam-reference"):
        for metric in ("pointing_game", "energy_in_mask", "pointing_game_shortcut", "energy_in_shortcut"):
            assert (method, metric) in got, (method, metric)
    assert got[("gradcam", "pointing_game_shortcut")] > got[("gradcam", "pointing_game")]
    assert "marker" in json.loads((tmp_path / "run.json").read_text())["description"]
