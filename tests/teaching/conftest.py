"""The widgets' tests share one small session: an untrained two-class ResNet-10 on two demo-world images."""

import pytest
import torch
from torchvision.models.resnet import BasicBlock, ResNet


@pytest.fixture(scope="module")
def session():
    from cfcam.teaching.widgets import Session
    from cfcam.world.synthetic import make_dataset

    torch.manual_seed(0)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2).eval()
    images, _, masks = make_dataset(2, seed=3)
    return Session(model=model, images=list(images), masks=[m if m.any() else None for m in masks],
                   class_names=["normal", "lesion"])
