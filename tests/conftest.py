import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label vectors split the channels the same way (ids may be renumbered; -1/-2 fixed)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    for special in (-2, -1):
        if not np.array_equal(a == special, b == special):
            return False
    pairs = set(zip(a[a >= 0].tolist(), b[b >= 0].tolist()))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


@pytest.fixture(scope="session")
def tiny_resnet():
    """A small random torchvision ResNet (2 classes) in eval mode."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=2).eval()


@dataclass(frozen=True)
class Demo:
    """The demo model with four lesion images of the demo world: what the method tests explain."""

    model: torch.nn.Module
    inputs: torch.Tensor  # (4, 3, 224, 224), preprocessed
    masks: np.ndarray  # (4, 224, 224) bool, where each lesion is
    labels: np.ndarray  # (4,) all 1 (lesion)


@pytest.fixture(scope="session")
def demo() -> Demo:
    """The one demo fixture (the demo model and four lesion images, built once per test run)."""
    from cfcam.images.preprocess import to_input
    from cfcam.world.models import load_model
    from cfcam.world.synthetic import make_dataset

    model, _ = load_model("demo")
    images, labels, masks = make_dataset(4, 21, balance=1.0)
    return Demo(model, to_input(images), np.asarray(masks, dtype=bool), np.asarray(labels))



@pytest.fixture(scope="module")
def session():
    """The widgets' tests' small session: an untrained two-class ResNet-10 on two demo-world images."""
    from torchvision.models.resnet import BasicBlock, ResNet

    from cfcam.teaching.widgets import Session
    from cfcam.world.synthetic import make_dataset

    torch.manual_seed(0)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2).eval()
    images, _, masks = make_dataset(2, seed=3)
    return Session(model=model, images=list(images), masks=[m if m.any() else None for m in masks],
                   class_names=["normal", "lesion"])
