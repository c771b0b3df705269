"""``cfcam train-demo``: train a demo model from scratch, measure what its card reports, write both.

It sits above the world (training, :mod:`cfcam.world.loop`) and the evaluation (the card's evidence,
:mod:`cfcam.evaluation.model_card`), so neither of those imports the other's code. By default the files go to
the user's cache folder; the package's own data folder (the shipped models) only with ``--into-package``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from ..world.recipe import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_MAX_SHIFT,
    DEFAULT_N_TEST,
    DEFAULT_N_TRAIN,
    DEFAULT_N_VAL,
    DEFAULT_SEED,
    DEFAULT_WEIGHT_DECAY,
    Recipe,
    file_names,
    split_seeds,
)
from ..world.saving import default_out_dir, output_folder

__all__ = ["train_demo", "main"]


def train_demo(
    out_dir: str | os.PathLike | None = None,
    seed: int = DEFAULT_SEED,
    n_train: int | None = None,
    epochs: int | None = None,
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
    into_package: bool = False,
) -> dict:
    """Train the demo model from scratch and write ``demo_model.pt`` + ``demo_model.json``; returns the card.

    ``shortcut=True`` trains the ``demo-shortcut`` model instead, with the
    same recipe on a training set where the marker gives the class away
    (:data:`cfcam.world.recipe.SHORTCUT_TRAINING`), and writes ``demo_shortcut_model.pt`` +
    ``demo_shortcut_model.json``; its card adds the intervention figures on
    the validation seed and every method's pointing game / energy against
    the lesion and the marker on the test seed (lesion images with the marker).

    ``out_dir``: output folder, created if missing (default: the user's cache folder,
    ``$XDG_CACHE_HOME/cfcam`` or ``~/.cache/cfcam``). The package's own data folder, which holds the shipped
    models, is refused unless ``into_package=True``, which writes there. The two files are renamed into place
    only once both are complete: a stopped run leaves the old ones as they were.
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
    """
    from ..evaluation.model_card import card_evidence
    from ..world.card import model_card
    from ..world.loop import fit, round_to_float16, torch_threads, training_set, use_bf16
    from ..world.saving import prepare_folder, save_model_and_card

    recipe = Recipe(seed=seed, n_train=DEFAULT_N_TRAIN if n_train is None else n_train,
                    epochs=DEFAULT_EPOCHS if epochs is None else epochs, n_val=n_val, n_test=n_test,
                    batch_size=batch_size, lr=lr, weight_decay=weight_decay, max_shift=max_shift, amp=amp,
                    threads=threads, shortcut=shortcut)
    bf16 = use_bf16(recipe.amp)
    folder = prepare_folder(output_folder(out_dir, into_package))
    with torch_threads(recipe.threads):
        t0 = time.perf_counter()
        seeds = split_seeds(recipe.seed)
        model = fit(recipe, *training_set(recipe, seeds["train"]), bf16=bf16, progress=progress)
        train_seconds = time.perf_counter() - t0
        round_to_float16(model)  # measure exactly what gets saved: the weights rounded to float16
        evidence = card_evidence(model, recipe, seeds)
        seconds = {"training": train_seconds, "total": time.perf_counter() - t0}
    card = model_card(recipe, seeds, bf16, evidence, seconds)
    save_model_and_card(model, card, folder, recipe.shortcut)
    return card


def build_parser() -> argparse.ArgumentParser:
    """The ``cfcam train-demo`` parser."""
    parser = argparse.ArgumentParser(
        prog="cfcam train-demo",
        description="Train the demo ResNet-10 on synthetic chest X-rays and write demo_model.pt + demo_model.json "
                    "into a folder of yours (the shipped models are replaced only with --into-package).",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", default=None,
                       help=f"output folder (default: your cache folder, $XDG_CACHE_HOME/cfcam or ~/.cache/cfcam; "
                            f"now {default_out_dir()})")
    where.add_argument("--into-package", action="store_true",
                       help="write into the installed package's data folder, replacing the shipped model and its "
                            "card (what `cfcam explain --model demo` loads)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {DEFAULT_EPOCHS})")
    parser.add_argument("--n-train", type=int, default=None, help=f"training images (default: {DEFAULT_N_TRAIN})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, print only the summary")
    weights, card = file_names(shortcut=True)
    parser.add_argument("--shortcut", action="store_true",
                        help=f"train the demo-shortcut model instead (a marker gives the class away in its training "
                             f"set) and write {weights} + {card}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for :func:`train_demo` (``cfcam train-demo``); the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        card = train_demo(args.out, seed=args.seed, n_train=args.n_train, epochs=args.epochs, progress=not args.quiet,
                          shortcut=args.shortcut, into_package=args.into_package)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    except OSError as exc:  # the output folder cannot be created or written
        parser.exit(1, f"cfcam train-demo: error: {exc}\n")
    print(_summary(card, args))
    return 0


def _summary(card: dict, args: argparse.Namespace) -> str:
    """What the run wrote, where, and how well the model does (and, for --shortcut, that it cheats)."""
    weights = output_folder(args.out, args.into_package) / file_names(args.shortcut)[0]
    lines = [f"wrote {weights} and {file_names(args.shortcut)[1]}: val accuracy {card['val_accuracy']:.3f}, "
             f"Grad-CAM pointing game {card['pointing_game_gradcam']:.3f}, {card['training_seconds']:.0f} s training"]
    if args.shortcut:
        iv = card["shortcut"]["interventions"]
        local = card["shortcut"]["localisation"]["gradcam"]
        lines.append(f"interventions: accuracy with marker {iv['accuracy_with_marker']:.3f}, marker removed "
                     f"{iv['accuracy_marker_removed']:.3f}; normals with the marker called lesion "
                     f"{iv['called_lesion']['normal_with_marker']:.3f}; Grad-CAM points at the marker "
                     f"{local['pointing_game_shortcut']:.3f}, at the lesion {local['pointing_game']:.3f}")
    if not args.into_package:
        lines.append(f"explain with it: cfcam explain IMAGES --model {weights} --arch demo")
    return "\n".join(lines)
