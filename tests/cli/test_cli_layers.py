"""The command line on other model families: the layer and transform it picks, --reshape, and refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torchvision

from cfcam import cli

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "testimgs" / "lesion_01.png"


@pytest.fixture(scope="module")
def swin_weights(tmp_path_factory):
    """A random-weight two-class Swin-T saved as a state dict, as a user's fine-tuned model would be."""
    torch.manual_seed(0)
    model = torchvision.models.swin_t(weights=None, num_classes=2)
    path = tmp_path_factory.mktemp("swin") / "swin_t_2class.pt"
    torch.save(model.state_dict(), path)
    return path


def run(args, capsys):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_swin_gets_its_layer_and_transform(swin_weights, tmp_path, capsys):
    code, out, err = run(["explain", IMAGE, "-o", tmp_path, "--model", swin_weights, "--arch", "swin_t",
                          "--method", "gradcam"], capsys)
    assert code == 0, err
    assert "layer features[-1] (features.7) (reshape swin)" in out
    rows = list(csv.DictReader(open(tmp_path / "summary.csv", newline="")))
    assert rows[0]["error"] == "" and (tmp_path / "lesion_01_gradcam.png").is_file()


@pytest.mark.slow
def test_swin_with_reshape_none_is_a_usage_error(swin_weights, tmp_path, capsys):
    code, out, err = run(["explain", IMAGE, "-o", tmp_path, "--model", swin_weights, "--arch", "swin_t",
                          "--reshape", "none"], capsys)
    assert code == 2
    assert "argument --reshape" in err and "features.7" in err
    assert not (tmp_path / "summary.csv").exists()


def test_one_by_one_layer_is_a_usage_error(tmp_path, capsys):
    code, out, err = run(["explain", IMAGE, "-o", tmp_path, "--layer", "avgpool"], capsys)
    assert code == 2
    assert "argument --layer" in err and "1x1 map" in err and "avgpool" in err


def test_vit_transform_on_a_cnn_layer_is_a_usage_error(tmp_path, capsys):
    code, out, err = run(["explain", IMAGE, "-o", tmp_path, "--reshape", "vit"], capsys)
    assert code == 2
    assert "argument --reshape" in err and "'vit' transform expects tokens" in err


def test_reshape_choices_in_help(capsys):
    code, out, _ = run(["explain", "--help"], capsys)
    assert code == 0 and "{auto,none,vit,swin}" in out
