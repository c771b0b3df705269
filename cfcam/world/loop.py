"""Training the demo model: its training set, augmentation, the optimisation loop and plain accuracy.

Nothing here measures explanations: the card's evidence (pointing games, interventions) is computed in
:mod:`cfcam.evaluation.model_card`, so training never imports the evaluation code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..images.preprocess import to_input
from . import synthetic
from .architecture import build_demo_model
from .recipe import SHORTCUT_TRAINING, Recipe, check_int

__all__ = ["training_set", "augment", "use_bf16", "torch_threads", "fit", "round_to_float16", "evaluate_accuracy"]


def training_set(recipe: Recipe, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 (N, H, W), labels int64 (N,))`` of the run's training set, drawn from ``seed``.

    The demo world's images, or for ``recipe.shortcut`` a set where the marker gives the class away
    (:data:`SHORTCUT_TRAINING`).
    """
    if recipe.shortcut:
        train = synthetic.make_shortcut_dataset(recipe.n_train, seed, **SHORTCUT_TRAINING)
        images, labels = train.images, train.labels
    else:
        images, labels, _ = synthetic.make_dataset(recipe.n_train, seed)
    return torch.from_numpy(images), torch.from_numpy(labels)


def augment(images: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random horizontal flips and shifts (reflect-padded) of a uint8 batch.

    Flips and small shifts keep the label (a nodule stays a nodule) while
    stopping the model from memorising where anatomy sits.
    """
    flip = torch.rand(len(images), generator=gen) < 0.5
    images = torch.where(flip[:, None, None], images.flip(-1), images)
    if max_shift <= 0:
        return images
    h, w = images.shape[-2:]
    padded = F.pad(images[:, None].float(), (max_shift,) * 4, mode="reflect")[:, 0].to(torch.uint8)
    offs = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=gen)
    return torch.stack([padded[i, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offs.tolist())])


def use_bf16(amp: str) -> bool:
    """Decide whether to train in bfloat16 autocast ('auto' = if the CPU has native bf16)."""
    if amp not in ("auto", "bf16", "off"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {amp!r}")
    if amp == "off":
        return False
    if amp == "bf16":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # older builds without the probe
        return False


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, and put the old number back afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit(recipe: Recipe, images: torch.Tensor, labels: torch.Tensor, bf16: bool, progress: bool = True) -> nn.Module:
    """A fresh demo model trained on ``images``/``labels`` with AdamW and a one-cycle schedule (see ``recipe``).

    Seeds torch and numpy with ``recipe.seed`` first, so a run is repeatable. ``progress``: a tqdm bar.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = build_demo_model().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    total = recipe.epochs * recipe.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total, pct_start=0.2)
    desc = "train-demo" + (" --shortcut" if recipe.shortcut else "")
    with tqdm(total=total, desc=desc, unit="batch", disable=not progress) as bar:
        for epoch in range(recipe.epochs):
            _one_epoch(model, opt, sched, images, labels, gen, recipe, bf16, bar, f"{epoch + 1}/{recipe.epochs}")
    return model.to(memory_format=torch.contiguous_format)


def _one_epoch(model, opt, sched, images, labels, gen, recipe: Recipe, bf16: bool, bar, epoch: str) -> None:
    """One pass over the training set in a random order; the bar shows the pass's running loss and accuracy."""
    model.train()
    order = torch.randperm(recipe.n_train, generator=gen)
    seen = correct = 0
    loss_sum = 0.0
    for step in range(recipe.steps_per_epoch):
        idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        x = to_input(augment(images[idx], gen, recipe.max_shift)).contiguous(memory_format=torch.channels_last)
        y = labels[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(y)
        correct += int((logits.argmax(1) == y).sum())
        loss_sum += float(loss.detach()) * len(y)
        bar.update(1)
        bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")


def round_to_float16(model: nn.Module) -> None:
    """Round the model's float weights to float16 and back, as the saved file holds them."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> float:
    """Fraction of ``images`` (uint8 (N, H, W)) that ``model`` labels as ``labels``.

    ``batch_size``: images per forward pass (default 64).  The model is put
    in eval mode.
    """
    check_int("batch_size", batch_size, minimum=1)
    if len(images) != len(labels):
        raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}")
    if len(images) == 0:
        raise ValueError("images must not be empty")
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(to_input(images[i : i + batch_size]))
        correct += int((logits.argmax(1).numpy() == np.asarray(labels[i : i + batch_size])).sum())
    return correct / len(images)
