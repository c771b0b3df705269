"""The confidence metrics' channels-last copy of the model (cfcam.evaluation.scoring) scores as the model does."""

import numpy as np
import torch
from torch import nn

from cfcam.evaluation import faithfulness as fa
from cfcam.evaluation.engine import EvalData, EvalSettings, Evaluation
from cfcam.evaluation.scoring import scoring_model

SCORED = ("deletion_auc", "insertion_auc", "road", "average_drop", "average_drop_published",
          "average_increase_published")


def test_the_copy_is_channels_last_and_gives_the_models_probabilities(demo):
    fast = scoring_model(demo.model, demo.inputs)
    assert fast is not demo.model
    conv = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not next(m for m in demo.model.modules() if isinstance(m, nn.Conv2d)).weight.is_contiguous(
        memory_format=torch.channels_last)  # the model itself is left as it was
    targets = [0, 1, 1, 0]
    np.testing.assert_allclose(fa.class_probability(fast, demo.inputs, targets),
                               fa.class_probability(demo.model, demo.inputs, targets), atol=1e-6)


class _Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


class _Unlike(nn.Module):
    """A CNN whose copy scores differently (its pass reads the memory layout): the copy is refused."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return y.reshape(-1)[:2 * len(x)].reshape(len(x), 2) * 100 if y.is_contiguous() else y.mean((2, 3)) * 100


def test_models_without_convolutions_or_unlike_copies_are_scored_as_they_are():
    x = torch.randn(2, 3, 8, 8)
    dense, unlike = _Dense(), _Unlike()
    assert scoring_model(dense, x) is dense
    assert scoring_model(unlike, x) is unlike


def test_the_evaluation_scores_the_same_either_way(demo):
    data = EvalData(demo.inputs, demo.masks, np.asarray(demo.labels), "demo")
    rows = {}
    for fast in (True, False):
        settings = EvalSettings(batch_size=2, subset=2, randomisation_seeds=1, randomisation_n=2, cascade=False,
                                road_percentiles=(50,), threads=1, channels_last=fast)
        ev = Evaluation(demo.model, data, settings)
        assert (ev.scorer is ev.model) != fast
        rows[fast] = {(r[1], r[2]): r[3] for r in ev.run_method("gradcam").rows if r[2] in SCORED}
    assert rows[True].keys() == rows[False].keys() and len(rows[True]) == 4 * 3 + 2 * 3
    for key, value in rows[False].items():
        assert abs(rows[True][key] - value) <= 1e-4 * max(1.0, abs(value)), key


def test_making_the_copy_leaves_the_models_train_mode_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2)).train()
    fast = scoring_model(model, torch.randn(2, 3, 8, 8))
    assert fast is not model and not fast.training
    assert all(m.training for m in model.modules())
