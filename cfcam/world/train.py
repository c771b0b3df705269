"""Train the small demo classifier on the synthetic chest X-ray world.

The demo model is torchvision's ResNet with one BasicBlock per stage (a
"ResNet-10"), so ``model.layer4[-1]`` is the block that CAM methods explain.
It learns normal-vs-lesion from :mod:`cfcam.synthetic` images on the CPU in
about a quarter of an hour, and its model card records how well it classifies
and how well plain Grad-CAM points at the nodules (the pointing game).
The model shifts its input by 16 px so that its 7x7 ``layer4`` cells sit where
bilinear CAM upsampling draws them (see :class:`AlignedResNet`).

``train_demo(shortcut=True)`` (``cfcam train-demo --shortcut``) trains the
``demo-shortcut`` model with the same architecture and recipe on a training
set where a laterality marker gives the class away (see
:func:`cfcam.world.synthetic.make_shortcut_dataset`); its card proves by
intervention that the model follows the marker (:func:`intervention_figures`)
and scores the CAM methods against both truths.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import synthetic
from ..constants import IMAGENET_MEAN, IMAGENET_STD
from .architecture import ALIGN_SHIFT, AlignedResNet, build_demo_model
from ..images.imageio import write_bytes_atomic
from ..evaluation.metrics import POINTING_TOLERANCE_PX, pointing_game

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_SIZE",
    "DATA_DIR",
    "MODEL_FILE",
    "CARD_FILE",
    "ARCHITECTURE",
    "ALIGN_SHIFT",
    "AlignedResNet",
    "POINTING_TOLERANCE_PX",
    "build_demo_model",
    "to_input",
    "split_seeds",
    "evaluate_accuracy",
    "pointing_games",
    "intervention_figures",
    "SHORTCUT_MODEL_FILE",
    "SHORTCUT_CARD_FILE",
    "SHORTCUT_TRAINING",
    "save_state_dict_fp16",
    "train_demo",
    "main",
]


#: Model input (channels, height, width).
INPUT_SIZE = (3, synthetic.SIZE, synthetic.SIZE)

#: Folder of the committed demo model and its card.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MODEL_FILE = "demo_model.pt"
CARD_FILE = "demo_model.json"

#: Files of the ``demo-shortcut`` model and its card (``train_demo(shortcut=True)``).
SHORTCUT_MODEL_FILE = "demo_shortcut_model.pt"
SHORTCUT_CARD_FILE = "demo_shortcut_model.json"

#: How the shortcut model's training set is drawn (``make_shortcut_dataset``'s options): the marker is on
#: every lesion image and on no normal image (perfectly predictive), and the nodules are drawn fainter than
#: in the demo world, so the marker is by far the easier cue to the label.
SHORTCUT_TRAINING = {"marker_if_lesion": 1.0, "marker_if_normal": 0.0, "nodule_contrast": 0.35}

#: Human-readable architecture name written into the model card.
ARCHITECTURE = (
    "torchvision.models.resnet.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2) ('ResNet-10'), "
    "input shifted 16 px up/left to align layer4 with bilinear CAM upsampling (cfcam.world.architecture.AlignedResNet)"
)



# Defaults of train_demo (also used by the command line).
DEFAULT_SEED = 0
DEFAULT_N_TRAIN = 3500
DEFAULT_N_VAL = 600
DEFAULT_N_TEST = 300
DEFAULT_EPOCHS = 6
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 2e-3
DEFAULT_WEIGHT_DECAY = 1e-4
DEFAULT_MAX_SHIFT = 8


def to_input(images_uint8) -> torch.Tensor:
    """Turn grayscale uint8 images into the model's normalised float input.

    ``images_uint8``: a uint8 numpy array or tensor of shape (H, W) or
    (N, H, W).  Each image is repeated to 3 channels, scaled to [0, 1] and
    normalised with the ImageNet mean/std, exactly like torchvision's
    ``ToTensor()`` + ``Normalize`` on the RGB image.  Returns (N, 3, H, W) float32.
    """
    if isinstance(images_uint8, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images_uint8))
    elif isinstance(images_uint8, torch.Tensor):
        images = images_uint8
    else:
        raise TypeError(f"images_uint8 must be a numpy array or a torch tensor, got {type(images_uint8).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"images_uint8 must have dtype uint8, got {images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images_uint8 must have shape (H, W) or (N, H, W), got {tuple(images.shape)}")
    x = images.to(torch.float32).div(255.0)[:, None].expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def split_seeds(seed: int) -> dict:
    """Derive distinct data seeds for the train / val / test sets from one seed.

    ``seed``: the run's seed (int >= 0).  The three sets never share a seed,
    whatever ``seed`` is, because each is drawn from ``SeedSequence([seed, k])``.
    """
    _check_int("seed", seed, minimum=0)
    return {
        name: int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0])
        for k, name in enumerate(("train", "val", "test"), start=1)
    }


def _check_int(name: str, value, minimum: int) -> int:
    """Validate an integer argument and return it; the message names it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _augment(images: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
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


def _use_bf16(amp: str) -> bool:
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


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> float:
    """Fraction of ``images`` (uint8 (N, H, W)) that ``model`` labels as ``labels``.

    ``batch_size``: images per forward pass (default 64).  The model is put
    in eval mode.
    """
    _check_int("batch_size", batch_size, minimum=1)
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


def pointing_games(model: nn.Module, images: np.ndarray, masks: np.ndarray) -> dict:
    """Pointing game (class lesion) of Grad-CAM and of CF-CAM with each preset, at ``layer4[-1]``."""
    x = to_input(images)
    return {
        "gradcam": pointing_game(model, x, masks, "gradcam", target=1),
        "cfcam": {p: pointing_game(model, x, masks, "cfcam", p, target=1) for p in ("readme", "reference")},
    }


@torch.no_grad()
def _lesion_rate(model: nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Per image: does ``model`` (in eval mode) call it a lesion?  Returns (N,) bool."""
    model.eval()
    out = [model(to_input(images[i : i + batch_size])).argmax(1).numpy() == 1 for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


def intervention_figures(model: nn.Module, n: int, seed: int) -> dict:
    """How a model's answers change when the shortcut marker is removed or added, on ``n`` fresh images.

    The same ``n`` images (``make_dataset(n, seed)``, half lesions, full nodule contrast) are drawn twice:
    without any marker and with the marker on every image; only the marker's pixels differ between the two.
    Returns accuracies and the share of images called "lesion" in each of the four (class, marker) cells:
    ``accuracy_with_marker`` (lesions carry it, normals do not: the training set's rule),
    ``accuracy_marker_removed`` (no image carries it), ``accuracy_marker_everywhere`` (every image does),
    and ``called_lesion`` = ``{lesion_with_marker, lesion_without_marker, normal_with_marker,
    normal_without_marker}``. A model that follows the marker calls marked normals lesions and unmarked
    lesions normal; one that follows the nodules does not care.
    """
    plain = synthetic.make_shortcut_dataset(n, seed, marker_if_lesion=0.0, marker_if_normal=0.0)
    marked = synthetic.make_shortcut_dataset(n, seed, marker_if_lesion=1.0, marker_if_normal=1.0)
    lesion = plain.labels == 1
    with_marker, without = _lesion_rate(model, marked.images), _lesion_rate(model, plain.images)
    as_trained = np.where(lesion, with_marker, without)

    def share(called, which) -> float:
        return float(called[which].mean()) if which.any() else float("nan")

    return {
        "n": int(n),
        "seed": int(seed),
        "accuracy_with_marker": float((as_trained == lesion).mean()),
        "accuracy_marker_removed": float((without == lesion).mean()),
        "accuracy_marker_everywhere": float((with_marker == lesion).mean()),
        "called_lesion": {
            "lesion_with_marker": share(with_marker, lesion),
            "lesion_without_marker": share(without, lesion),
            "normal_with_marker": share(with_marker, ~lesion),
            "normal_without_marker": share(without, ~lesion),
        },
    }


def _shortcut_report(model: nn.Module, n_val: int, n_test: int, seeds: dict) -> dict:
    """The shortcut card's evidence: interventions on the validation seed, both truths on the test seed."""
    from ..evaluation.shortcut import CORE_METHODS, localisation_rows, summarise

    test = synthetic.make_shortcut_dataset(n_test, seeds["test"], balance=1.0, marker_if_lesion=1.0)
    return {
        "interventions": intervention_figures(model, n_val, seeds["val"]),
        "localisation": summarise(localisation_rows(model, test.images, test.masks, test.marker_masks,
                                                    methods=CORE_METHODS)),
    }


def _round_to_float16(model: nn.Module) -> None:
    """Round the model's float weights to float16 and back, as the saved file holds them."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))


def save_state_dict_fp16(model: nn.Module, path: Union[str, os.PathLike]) -> None:
    """Save ``model``'s state dict with float tensors in float16, atomically.

    Load with ``model.load_state_dict({k: v.float() if v.is_floating_point() else v ...})``.
    """
    state = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(buf.getvalue(), Path(path))


def train_demo(
    out_dir: Union[str, os.PathLike] = DATA_DIR,
    seed: int = DEFAULT_SEED,
    n_train: Optional[int] = None,
    epochs: Optional[int] = None,
    progress: bool = True,
    n_val: int = DEFAULT_N_VAL,
    n_test: int = DEFAULT_N_TEST,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    max_shift: int = DEFAULT_MAX_SHIFT,
    amp: str = "auto",
    threads: int = 2,
    shortcut: bool = False,
) -> dict:
    """Train the demo model from scratch and write ``demo_model.pt`` + ``demo_model.json``.

    ``shortcut=True`` trains the ``demo-shortcut`` model instead, with the
    same recipe on a training set where the marker gives the class away
    (:data:`SHORTCUT_TRAINING`), and writes ``demo_shortcut_model.pt`` +
    ``demo_shortcut_model.json``; its card adds the intervention figures on
    the validation seed and every method's pointing game / energy against
    the lesion and the marker on the test seed (lesion images with the marker).

    ``out_dir``: output folder (default ``cfcam/data``), created if missing.
    ``seed``: seeds torch, numpy and the three data sets (default 0).
    ``n_train``: training images, half lesions (default 3500, with or without ``shortcut``).
    ``epochs``: passes over the training set (default 6, with or without ``shortcut``).
    ``progress``: show a tqdm progress bar (default True).
    ``n_val``: validation images from a different seed (default 600).
    ``n_test``: held-out lesion images for the pointing game (default 300).
    ``batch_size``: images per step (default 32).  ``lr``: peak AdamW
    learning rate of the one-cycle schedule (default 2e-3).
    ``weight_decay``: AdamW weight decay (default 1e-4).
    ``max_shift``: random shift augmentation in pixels (default 8).
    ``amp``: 'auto' (bfloat16 autocast if the CPU supports it natively),
    'bf16' or 'off' (default 'auto').  ``threads``: torch CPU threads (default 2).
    Returns the model card (also written to ``demo_model.json``).
    """
    from tqdm.auto import tqdm

    if not isinstance(shortcut, (bool, np.bool_)):
        raise TypeError(f"shortcut must be True or False, got {shortcut!r}")
    if epochs is None:
        epochs = DEFAULT_EPOCHS
    if n_train is None:
        n_train = DEFAULT_N_TRAIN

    seed = _check_int("seed", seed, minimum=0)
    n_train = _check_int("n_train", n_train, minimum=2)
    epochs = _check_int("epochs", epochs, minimum=1)
    n_val = _check_int("n_val", n_val, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    batch_size = _check_int("batch_size", batch_size, minimum=2)
    max_shift = _check_int("max_shift", max_shift, minimum=0)
    threads = _check_int("threads", threads, minimum=1)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    bf16 = _use_bf16(amp)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        np.random.seed(seed)
        gen = torch.Generator().manual_seed(seed)
        seeds = split_seeds(seed)
        if shortcut:
            train = synthetic.make_shortcut_dataset(n_train, seeds["train"], **SHORTCUT_TRAINING)
            train_x, train_y = train.images, train.labels
        else:
            train_x, train_y, _ = synthetic.make_dataset(n_train, seeds["train"])
        train_x, train_y = torch.from_numpy(train_x), torch.from_numpy(train_y)

        model = build_demo_model().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = n_train // batch_size  # drop the ragged last batch
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
        bar = tqdm(total=epochs * steps_per_epoch, desc="train-demo" + (" --shortcut" if shortcut else ""), unit="batch",
                   disable=not progress)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n_train, generator=gen)
            seen = correct = 0
            loss_sum = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * batch_size : (step + 1) * batch_size]
                x = to_input(_augment(train_x[idx], gen, max_shift)).contiguous(memory_format=torch.channels_last)
                y = train_y[idx]
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
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        train_seconds = time.perf_counter() - t0

        # Evaluate exactly what gets saved: float32 weights rounded to float16.
        model = model.to(memory_format=torch.contiguous_format)
        _round_to_float16(model)
        if shortcut:
            report = _shortcut_report(model, n_val, n_test, seeds)
            val_acc = report["interventions"]["accuracy_with_marker"]
            local = report["localisation"]
            pointing = {"gradcam": local["gradcam"]["pointing_game"],
                        "cfcam": {p: local[f"cfcam-{p}"]["pointing_game"] for p in ("readme", "reference")}}
        else:
            val_x, val_y, _ = synthetic.make_dataset(n_val, seeds["val"])
            val_acc = evaluate_accuracy(model, val_x, val_y)
            test_x, _, test_m = synthetic.make_dataset(n_test, seeds["test"], balance=1.0)
            pointing = pointing_games(model, test_x, test_m)
        total_seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_threads)

    import torchvision

    card = {
        "name": "cfcam demo-shortcut model" if shortcut else "cfcam demo model",
        "architecture": ARCHITECTURE,
        "target_layer": "layer4[-1]",
        "classes": list(synthetic.CLASSES),
        "input_size": list(INPUT_SIZE),
        "input": "8-bit grayscale repeated to 3 channels, scaled to [0, 1], then normalised",
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "weights_dtype": "float16 (cast back to float32 when loading)",
        "seed": seed,
        "data": {
            "generator": "cfcam.synthetic.make_dataset",
            "train": {"n": n_train, "seed": seeds["train"], "lesion_fraction": 0.5},
            "val": {"n": n_val, "seed": seeds["val"], "lesion_fraction": 0.5},
            "test": {"n": n_test, "seed": seeds["test"], "lesion_fraction": 1.0},
        },
        "data_sizes": {"train": n_train, "val": n_val, "test": n_test},
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": {"name": "AdamW", "lr": lr, "weight_decay": weight_decay, "schedule": "OneCycleLR(pct_start=0.2)"},
        "augmentation": {"horizontal_flip": 0.5, "max_shift_px": max_shift},
        "autocast": "bfloat16" if bf16 else "off",
        "val_accuracy": val_acc,
        "pointing_game_gradcam": pointing["gradcam"],
        "pointing_game_tolerance_px": POINTING_TOLERANCE_PX,
        "pointing_game_cfcam": pointing["cfcam"],
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "threads": threads,
        "training_seconds": round(train_seconds, 1),
        "total_seconds": round(total_seconds, 1),
    }
    if shortcut:
        card["data"]["generator"] = "cfcam.world.synthetic.make_shortcut_dataset"
        card["data"]["train"].update(SHORTCUT_TRAINING)
        card["data"]["val"]["use"] = "intervention figures: the same images without the marker and with it on every image"
        card["data"]["test"].update(marker_if_lesion=1.0, use="pointing games against the lesion and the marker")
        card["shortcut"] = {
            "marker": "a radiograph-style laterality token (bright 'L' or 'R' in a box) outside the lung fields, at "
                      "a varying position (cfcam.world.synthetic.make_scene(marker=True))",
            "what_was_done": (
                "In the training set every lesion image carries the marker and no normal image does, so the marker "
                f"alone predicts the label perfectly; the nodules are drawn at {SHORTCUT_TRAINING['nodule_contrast']:g} "
                f"of the demo world's contrast, so they are the harder cue. It trains on {n_train} images for {epochs} "
                f"epochs (the demo model's defaults: {DEFAULT_N_TRAIN} for {DEFAULT_EPOCHS}); everything else (architecture, seed, "
                "optimiser, one-cycle schedule over the run, batch size, augmentation) is the demo model's recipe. "
                "All figures below are measured on fresh images at the demo world's full nodule contrast."
            ),
            **report,
        }
    stem_files = (SHORTCUT_MODEL_FILE, SHORTCUT_CARD_FILE) if shortcut else (MODEL_FILE, CARD_FILE)
    save_state_dict_fp16(model, out_dir / stem_files[0])
    write_bytes_atomic((json.dumps(card, indent=2) + "\n").encode("utf-8"), out_dir / stem_files[1])
    return card


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line for ``train_demo`` (exposed as ``cfcam train-demo``)."""
    parser = argparse.ArgumentParser(
        prog="cfcam train-demo",
        description="Train the demo ResNet-10 on synthetic chest X-rays and write demo_model.pt + demo_model.json.",
    )
    parser.add_argument("--out", default=str(DATA_DIR), help=f"output folder (default: {DATA_DIR})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default: {DEFAULT_EPOCHS})")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"training images (default: {DEFAULT_N_TRAIN})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, print only the summary")
    parser.add_argument("--shortcut", action="store_true",
                        help=f"train the demo-shortcut model instead (a marker gives the class away in its training "
                             f"set) and write {SHORTCUT_MODEL_FILE} + {SHORTCUT_CARD_FILE}")
    args = parser.parse_args(argv)
    try:
        card = train_demo(args.out, seed=args.seed, n_train=args.n_train, epochs=args.epochs, progress=not args.quiet,
                          shortcut=args.shortcut)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    weights, card_file = (SHORTCUT_MODEL_FILE, SHORTCUT_CARD_FILE) if args.shortcut else (MODEL_FILE, CARD_FILE)
    print(
        f"wrote {Path(args.out) / weights} and {card_file}: val accuracy {card['val_accuracy']:.3f}, "
        f"Grad-CAM pointing game {card['pointing_game_gradcam']:.3f}, {card['training_seconds']:.0f} s training"
    )
    if args.shortcut:
        iv = card["shortcut"]["interventions"]
        local = card["shortcut"]["localisation"]["gradcam"]
        print(f"interventions: accuracy with marker {iv['accuracy_with_marker']:.3f}, marker removed "
              f"{iv['accuracy_marker_removed']:.3f}; normals with the marker called lesion "
              f"{iv['called_lesion']['normal_with_marker']:.3f}; Grad-CAM points at the marker "
              f"{local['pointing_game_shortcut']:.3f}, at the lesion {local['pointing_game']:.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
