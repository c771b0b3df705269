"""``cfcam evaluate -o DIR``: every method side by side on localisation, faithfulness, sanity and robustness.

A thin layer over :mod:`cfcam.evaluation`: it generates fresh seeded lesion images of the demo world, runs
the engine with a progress bar, and writes ``summary.csv`` (exactly ``method, metric, mean, ci_low, ci_high,
n``), ``per_image.csv``, ``table.md``, ``run.json`` and three plots, each atomically. ``--ablation`` measures
CF-CAM with one component changed at a time instead of the registered methods. Exit codes: 0 done,
2 usage error (a bad option value, an unknown method, a model or layer that cannot be used), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..methods.registry import method_names
from .args import positive_int


def method_list(text: str) -> list[str]:
    """argparse type: comma-separated registered method names, none repeated."""
    names = [s.strip() for s in text.split(",")]
    known = method_names()
    if not names or any(not s for s in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated method names like 'gradcam,cfcam-reference', "
                                         f"got {text!r}")
    unknown = [s for s in names if s not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown)}; expected some of {', '.join(known)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a method is listed twice in {text!r}")
    return names


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``evaluate`` subcommand's options."""
    ev = sub.add_parser(
        "evaluate", help="measure every CAM method on localisation, faithfulness, sanity and robustness",
        description="Run every registered method (or --methods) on --n fresh lesion images of the synthetic "
                    "world and write summary.csv (method, metric, mean, ci_low, ci_high, n; 95%% bootstrap "
                    "intervals), per_image.csv, table.md, run.json and plots to the output folder. Score-CAM and "
                    "Ablation-CAM run on the first --slow-n images; deletion/insertion, ROAD, the randomisation "
                    "cascade and the gradient-noise protocols on the first --subset images.")
    ev.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder, created if missing")
    ev.add_argument("--model", default="demo",
                    help="the model to evaluate, with the images registered for it: demo (default, the bundled "
                         "normal-vs-lesion ResNet-10 on fresh lesion images of the synthetic world) or demo-shortcut "
                         "(lesion images that carry its shortcut marker)")
    ev.add_argument("--n", type=positive_int, default=100, metavar="N", help="images (default: 100)")
    ev.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the images and the noise (default: 0)")
    ev.add_argument("--methods", type=method_list, default=None, metavar="A,B,...",
                    help=f"methods to compare (default: all registered: {', '.join(method_names())})")
    ev.add_argument("--layer", default="layer4[-1]", help="layer to explain (default: layer4[-1])")
    ev.add_argument("--subset", type=positive_int, default=10, metavar="N",
                    help="images for the costly metrics (deletion/insertion, ROAD, cascade, noise checks; default 10)")
    ev.add_argument("--slow-n", type=positive_int, default=1, metavar="N",
                    help="images for Score-CAM and Ablation-CAM (one forward pass per channel; default 1)")
    ev.add_argument("--steps", type=int, default=11, metavar="K",
                    help="deletion/insertion steps (default 11: 10%% of the pixels each; the published script uses 101)")
    ev.add_argument("--substrate", choices=["blur", "mean"], default="blur",
                    help="what deleted pixels become: the blurred image (default) or the mean colour (published)")
    ev.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="images per pass (default 16)")
    ev.add_argument("--ablation", action="store_true",
                    help="measure CF-CAM with one component changed at a time (ignores --methods)")
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ev.add_argument("--quiet", action="store_true", help="no progress bar and no table on stdout")
    ev.set_defaults(subparser=ev, run=evaluate)
    return ev


def evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..core.capture import resolve_layer
    from ..evaluation.ablation import ABLATION
    import torch

    from ..evaluation.engine import MODEL_DATA, EvalSettings, Evaluation
    from ..evaluation.report import markdown_table, write_report
    from ..world.models import ModelError, load_model
    from pathlib import Path

    if args.model not in MODEL_DATA:  # torch-free --help: the registered models are known only here
        parser.error(f"argument --model: no evaluation images are registered for {args.model!r}; expected one of "
                     f"{', '.join(sorted(MODEL_DATA))}")
    if args.steps < 2:
        parser.error(f"argument --steps: expected an integer >= 2, got {args.steps}")
    if args.seed < 0:
        parser.error(f"argument --seed: expected an integer >= 0, got {args.seed}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        parser.error(f"argument -o/--output: {out} exists and is not a folder")
    try:
        model, info = load_model(args.model)
    except ModelError as exc:
        parser.error(f"argument --model: {exc}")
    try:
        resolve_layer(model, args.layer)
    except ValueError as exc:
        parser.error(f"argument --layer: {exc}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot create {out} ({exc.strerror or exc})")

    settings = EvalSettings(layer=args.layer, batch_size=args.batch_size, subset=args.subset, slow_n=args.slow_n,
                            steps=args.steps, substrate=args.substrate, seed=args.seed,
                            variants=dict(ABLATION) if args.ablation else {})
    methods = list(ABLATION) if args.ablation else (args.methods or method_names())
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    data = MODEL_DATA[args.model](args.n, args.seed)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, desc="evaluate", unit="stage", file=sys.stderr, dynamic_ncols=True)

    def progress(done, total, label):
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(label, refresh=True)

    try:
        runs = Evaluation(model, data, settings, model_name=args.model, progress=progress).run(methods)
    except KeyboardInterrupt:
        print("cfcam evaluate: interrupted", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    run_info = {
        "description": f"{data.name}; model {args.model} at {args.layer}; "
                       f"{'ablation of CF-CAM' if args.ablation else 'methods ' + ', '.join(methods)}; "
                       f"costly metrics on the first {args.subset} images, Score-CAM and Ablation-CAM on the first "
                       f"{args.slow_n}; deletion/insertion {args.steps} steps over a {args.substrate} substrate; "
                       f"{elapsed:.0f} s on {torch.get_num_threads()} threads.",
        "model": args.model, "layer": args.layer, "n": args.n, "seed": args.seed, "methods": methods,
        "subset": args.subset, "slow_n": args.slow_n, "steps": args.steps, "substrate": args.substrate,
        "ablation": bool(args.ablation), "seconds": round(elapsed, 1), "threads": torch.get_num_threads(),
    }
    summary = write_report(runs, out, run_info, plots=not args.no_plots)
    if not args.quiet:
        print(markdown_table(summary))
        print(f"wrote {out / 'summary.csv'}, per_image.csv, table.md in {elapsed:.0f} s")
    return 0
