"""Notebook 06's checks accept right answers, name typical mistakes and never raise."""

import copy

import numpy as np
import torch
from scipy import stats

from cfcam.teaching import checks_evaluation as ce


def deletion_auc(predict, image, cam, steps=11):
    c, h, w = image.shape
    order = np.argsort(-np.asarray(cam).ravel(), kind="stable")
    chunk = h * w // (steps - 1)
    probs = []
    for k in range(steps):
        n = h * w if k == steps - 1 else k * chunk
        flat = image.reshape(c, -1).clone()
        flat[:, order[:n]] = 0
        probs.append(predict(flat.reshape(c, h, w)))
    return np.trapezoid(probs, dx=1 / (steps - 1))


def ascending_deletion_auc(predict, image, cam, steps=11):
    return deletion_auc(predict, image, -np.asarray(cam), steps)


def randomisation_check(explain, model, images, seed=0):
    before = explain(model, images)
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    clone.fc.reset_parameters()
    after = explain(clone, images)
    return float(np.mean([stats.spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(before, after)]))


def in_place_randomisation(explain, model, images, seed=0):
    before = explain(model, images)
    torch.manual_seed(seed)
    model.fc.reset_parameters()
    return float(np.mean([stats.spearmanr(a.ravel(), b.ravel()).statistic
                          for a, b in zip(before, explain(model, images))]))


def stub(*args, **kwargs):
    raise NotImplementedError


def test_right_answers_pass(capsys):
    assert ce.check_deletion_auc(deletion_auc)
    assert ce.check_randomisation_check(randomisation_check)
    assert capsys.readouterr().out.count("Correct:") == 2


def test_mistakes_are_named(capsys):
    assert not ce.check_deletion_auc(ascending_deletion_auc)
    assert "largest" in capsys.readouterr().out
    assert not ce.check_randomisation_check(in_place_randomisation)
    assert "changed the model" in capsys.readouterr().out
    assert not ce.check_deletion_auc(stub) and not ce.check_randomisation_check(lambda *a, **k: None)
    out = capsys.readouterr().out
    assert "Not implemented yet:" in out and "None" in out


def test_reference_randomisation_separates_the_two_cases():
    model = ce.TinyNet().eval()
    images = torch.rand(2, 3, 12, 12)
    assert ce.reference_randomisation_check(ce.class_blind_maps, model, images) > 0.999
    assert ce.reference_randomisation_check(ce.input_gradient_maps, model, images) < 0.95


def test_old_path_and_package_are_the_same_checks():
    from cfcam.teaching import checks

    assert ce.check_deletion_auc is checks.check_deletion_auc
    assert ce.check_randomisation_check is checks.check_randomisation_check
    assert set(ce.CHECKS) == {"deletion_auc", "randomisation_check"}
    assert {k: checks.CHECKS[k] for k in ce.CHECKS} == ce.CHECKS
