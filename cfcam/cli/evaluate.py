"""``cfcam evaluate -o DIR``: every method side by side on localisation, faithfulness, sanity and robustness.

A thin layer over :mod:`cfcam.evaluation`: it generates fresh seeded lesion images of the demo world (or, with
``--data DIR``, reads a user's folder through :mod:`cfcam.evaluation.folder`), runs the engine with a progress
bar, and writes ``summary.csv`` (exactly ``method, metric, mean, ci_low, ci_high, n``), ``per_image.csv``,
``table.md``, ``run.json`` and three plots, each atomically. ``--ablation`` measures CF-CAM with one component
changed at a time instead of the registered methods (demo world only).

``--data DIR`` reads ``DIR/manifest.csv``: a header, then one row per image; ``image`` (required) is a path
relative to DIR, ``mask`` (optional column) an image of the same size whose non-zero pixels mark the evidence
(empty: NaN localisation values with a note), ``label`` (optional) the class to explain, an index or a class
name (empty: the top class). ``--model`` is then anything ``cfcam explain`` takes (``--weights``, ``--arch``,
``--num-classes``, ``--class-names`` too). A row that cannot be used is named on stderr and listed under
``skipped`` in ``run.json``; nothing in DIR is written (``-o`` may not lie inside it).

Exit codes: 0 done, 1 done but some manifest rows were skipped or some methods could not run on the model's
layer (both said on stderr and in run.json), 2 usage error (a bad option value, an unknown method, a model or
layer that cannot be used, a folder or manifest that cannot be used or has no usable row, an output folder that
cannot be written or that another run is writing to), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM,
129 SIGHUP). ``run.json`` is written first with ``"status": "running"`` (an earlier run's files removed) and
says at the end ``"finished"``, ``"interrupted"`` (the signal and the stage) or ``"failed"``.
``--reshape`` reads a transformer's layer as maps (``auto``: the model family's way), as in ``cfcam explain``.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..images.imageio import check_writable
from ..methods.registry import method_names
from .args import add_reshape_option, add_weights_options, int_range
from .escape import printable
from .lock import FolderBusy, FolderLock, LockNotAFile
from .outputs import remove_stale_temps
from .runstate import RunState, clear_earlier
from .signals import SignalGuard, signal_name

DEFAULT_N = 100  # generated images when --n is not given
MAX_N = 5_000
"""Most images (--n, --subset, --slow-n, and manifest rows read): they are all held in memory at the model's
input size (about 0.6 MB each at 224 px), with their maps per method."""
MAX_SEEDS = 100  # --randomisation-seeds: each is a full pass of the method over the subset
MAX_STEPS = 1_001  # --steps: the published script uses 101
MAX_BATCH = 256
MAX_SEED = 2 ** 32 - 1

DESCRIPTION = """\
Run every registered method (or --methods) on --n fresh lesion images of the
synthetic world (or on the images of --data DIR) and write summary.csv
(method, metric, mean, ci_low, ci_high, n; 95% bootstrap intervals),
per_image.csv, table.md, run.json and plots to the output folder. Score-CAM
and Ablation-CAM run on the first --slow-n images; deletion/insertion, ROAD,
the randomisation cascade and the gradient-noise protocols on the first
--subset images. Exit code 0: done, 1: done but some manifest rows were
skipped or some methods could not run on the layer, 2: usage error,
128+N: stopped by signal N (130: Ctrl-C, 143: SIGTERM), with
run.json saying "status": "interrupted" and the stage. One run at a time
per output folder; an earlier run's files in it are removed at the start."""

DATA_FORMAT = """\
--data DIR: DIR/manifest.csv is a CSV file (UTF-8) with a header and one row
per image, for example

  image,mask,label
  scans/a.png,masks/a.png,lesion
  scans/b.png,,1

image (required): the image, a path relative to DIR (inside it: an absolute
path or one that leads out with .. is refused for its row). mask (optional column):
an image of the same size whose non-zero pixels mark where the evidence is;
empty: that row gets NaN localisation values with a note (no column: no
localisation metrics). label (optional): the class to explain, an index or a
class name of the model; empty: the top class. Images are read and resized as
`cfcam explain` does; masks are resized with nearest neighbour. A row that
cannot be used is named on stderr and listed under "skipped" in run.json;
nothing in DIR is written."""


def workers_option(text: str) -> int | None:
    """argparse type: ``auto`` (None) or a number of worker processes, 1..64."""
    if text.strip().lower() == "auto":
        return None
    return int_range(1, 64)(text)


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
        description=DESCRIPTION, epilog=DATA_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder, created if missing")
    ev.add_argument("--data", default=None, metavar="DIR",
                    help="evaluate on the images listed in DIR/manifest.csv (format below) instead of generated ones")
    ev.add_argument("--model", default=None,
                    help="the model to evaluate: demo (default, the bundled normal-vs-lesion ResNet-10, on fresh "
                         "lesion images of the synthetic world) or demo-shortcut (on lesion images that carry its "
                         "shortcut marker); with --data also a torchvision name (e.g. resnet50) or a weights file "
                         "(.pt/.pth; with --arch)")
    add_weights_options(ev)
    ev.add_argument("--n", type=int_range(1, MAX_N), default=None, metavar="N",
                    help=f"images, 1..{MAX_N} (default: {DEFAULT_N}); with --data, the first N manifest rows "
                         "(default: all)")
    ev.add_argument("--seed", type=int_range(0, MAX_SEED), default=0, metavar="S",
                    help="seed of the images and the noise (default: 0)")
    ev.add_argument("--methods", type=method_list, default=None, metavar="A,B,...",
                    help=f"methods to compare (default: all registered: {', '.join(method_names())})")
    ev.add_argument("--layer", default=None,
                    help="layer to explain (default: the model's last stage, layer4[-1] for the demo models)")
    add_reshape_option(ev)
    ev.add_argument("--subset", type=int_range(1, MAX_N), default=10, metavar="N",
                    help="images for the costly metrics (deletion/insertion, ROAD, cascade, noise checks; default 10)")
    ev.add_argument("--slow-n", type=int_range(1, MAX_N), default=1, metavar="N",
                    help="images for Score-CAM and Ablation-CAM (one forward pass per channel; default 1)")
    ev.add_argument("--randomisation-seeds", type=int_range(1, MAX_SEEDS), default=20, metavar="K",
                    help=f"re-initialisations of the classifier layer per image, averaged, 1..{MAX_SEEDS} (default 20)")
    ev.add_argument("--steps", type=int_range(2, MAX_STEPS), default=11, metavar="K",
                    help=f"deletion/insertion steps, 2..{MAX_STEPS} (default 11: 10%% of the pixels each; the "
                         "published script uses 101)")
    ev.add_argument("--substrate", choices=["blur", "mean"], default="blur",
                    help="what deleted pixels become: the blurred image (default) or the mean colour (published)")
    ev.add_argument("--batch-size", type=int_range(1, MAX_BATCH), default=16, metavar="N",
                    help=f"images per pass, 1..{MAX_BATCH} (default 16)")
    ev.add_argument("--workers", type=workers_option, default=None, metavar="N|auto",
                    help="processes that share out the methods, 1..64, or auto (default: one per idle CPU, each on "
                         "one torch thread, when the run is large; 1 keeps it in this process)")
    ev.add_argument("--ablation", action="store_true",
                    help="measure CF-CAM with one component changed at a time (ignores --methods; not with --data)")
    ev.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    ev.add_argument("--quiet", action="store_true", help="no progress bar and no table on stdout")
    ev.set_defaults(subparser=ev, run=evaluate)
    return ev


def evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``evaluate`` subcommand: check the options, load the model and the images, run, write the report.

    One run per output folder (its lock); signals stop it cleanly (130, 143, 129) and ``run.json`` always says
    what the folder holds (:mod:`cfcam.cli.runstate`)."""
    with SignalGuard() as guard:
        return _evaluate(args, parser, guard)


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser, guard: SignalGuard) -> int:
    from pathlib import Path

    import torch

    from ..evaluation.ablation import ABLATION
    from ..evaluation.engine import EvalSettings, Evaluation
    from .args import load_model_option, resolve_layer_option

    _check_options(args, parser)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        parser.error(f"argument -o/--output: {printable(out)} exists and is not a folder")
    model, info = load_model_option(args, parser)
    _, reshape = resolve_layer_option(args, parser, model, info)
    layer = args.layer or info["default_layer"]  # as the user wrote it (layer4[-1]), like the ablation's variants
    torch.manual_seed(args.seed)
    data, data_info = _load_data(args, parser, info)

    settings = EvalSettings(layer=layer, batch_size=args.batch_size, subset=args.subset, slow_n=args.slow_n,
                            steps=args.steps, substrate=args.substrate, seed=args.seed,
                            randomisation_seeds=args.randomisation_seeds, reshape=reshape, workers=args.workers,
                            variants=dict(ABLATION) if args.ablation else {})
    methods = list(ABLATION) if args.ablation else (args.methods or method_names())
    model_name = args.weights or args.model or "demo"
    run_info = {
        "model": model_name, "layer": layer, "n": len(data), "seed": args.seed, "methods": methods,
        "subset": args.subset, "slow_n": args.slow_n, "steps": args.steps, "substrate": args.substrate,
        "randomisation_seeds": args.randomisation_seeds, "reshape": info["reshape_used"],
        "ablation": bool(args.ablation), "threads": torch.get_num_threads(), **data_info,
    }
    lock = _claim_output(out, parser)
    try:
        state = _start(out, run_info, parser)
        evaluation = Evaluation(model, data, settings, model_name="" if args.data else model_name)
        return _run(args, evaluation, methods, data, state, guard, out, layer, model_name)
    finally:
        lock.release()


def _claim_output(out, parser) -> FolderLock:
    """Create ``out``, prove it writable and lock it for this run; a usage error (exit 2) otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        check_writable(out)
        return FolderLock(out, "evaluate").acquire()
    except (FolderBusy, LockNotAFile) as exc:
        parser.error(f"argument -o/--output: {printable(exc.strerror if isinstance(exc, OSError) else exc)}")
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot write in {printable(out)} ({exc.strerror or exc})")


def _start(out, run_info: dict, parser) -> RunState:
    """Remove an earlier run's files and write ``run.json`` as ``"running"``; a usage error (exit 2) if the
    folder cannot take it (a full disk), before any work."""
    remove_stale_temps(out)
    state = RunState(out, run_info)
    try:
        removed = clear_earlier(out)
        state.start()
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot write in {printable(out)} ({exc.strerror or exc})")
    if removed:
        print(f"cfcam evaluate: removed an earlier run's {', '.join(removed)} from {printable(out)}",
              file=sys.stderr)
    return state


def _run(args, evaluation, methods, data, state: RunState, guard: SignalGuard, out, layer, model_name) -> int:
    """Run the evaluation and write the report; ``run.json`` says how it ended on every way out."""

    from ..evaluation.report import markdown_table, write_report

    started = time.perf_counter()
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, desc="evaluate", unit="map", file=sys.stderr, dynamic_ncols=True)
    where = {"stage": "starting", "done": 0, "total": 0}

    def progress(done, total, label):
        where.update(stage=label, done=done, total=total)
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(label, refresh=True)

    evaluation.progress = progress
    try:
        runs = evaluation.run(methods)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP through the guard
        guard.disarm()  # a second signal must not cut run.json short
        if bar is not None:
            bar.close()
        stage = f"{where['stage']} ({where['done']} of about {where['total']} maps' work done)"
        state.end("interrupted", stopped_by=signal_name(exc), stage=stage,
                  seconds=round(time.perf_counter() - started, 1))
        print(f"cfcam evaluate: stopped by {signal_name(exc)} during {stage}; nothing but run.json written "
              f"(status interrupted) in {printable(out)}", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    guard.disarm()  # the work is done: the report is written whole, a signal now is only recorded
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    for name, why in evaluation.failed.items():
        print(f"cfcam evaluate: {name} could not run on this model and layer: {why}", file=sys.stderr)
    if not runs:
        state.end("failed", why="no method could run", failed=evaluation.failed)
        print("cfcam evaluate: no method could run; nothing written but run.json (status failed)", file=sys.stderr)
        return 1
    state.info.update(
        description=f"{data.name}; model {model_name} at {layer}; "
                    f"{'ablation of CF-CAM' if args.ablation else 'methods ' + ', '.join(methods)}; "
                    f"costly metrics on the first {args.subset} images, Score-CAM and Ablation-CAM on the first "
                    f"{args.slow_n}; deletion/insertion {args.steps} steps over a {args.substrate} substrate; "
                    f"classifier re-initialised with {args.randomisation_seeds} seeds; "
                    f"{elapsed:.0f} s on {_processes(evaluation)}.",
        failed=evaluation.failed, seconds=round(elapsed, 1), threads=evaluation.threads, workers=evaluation.workers,
        cpu_seconds={k: round(v, 1) for k, v in evaluation.cpu_seconds.items()},
        method_seconds={r.method: round(r.seconds, 1) for r in runs}, status="writing the report")
    try:
        summary = write_report(runs, out, state.info, plots=not args.no_plots)
    except OSError as exc:
        state.end("failed", why=f"cannot write the report ({exc.strerror or exc})")
        print(f"cfcam evaluate: cannot write the report in {printable(out)} ({exc.strerror or exc}); run.json says "
              "which files are this run's (status failed)", file=sys.stderr)
        return 1
    if not state.end("finished"):
        print(f"cfcam evaluate: cannot write {printable(state.path)}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(markdown_table(summary))
        print(f"wrote {printable(out / 'summary.csv')}, per_image.csv, table.md in {elapsed:.0f} s")
    return 1 if state.info.get("skipped") or evaluation.failed else 0


def _processes(evaluation) -> str:
    """``2 threads``, or ``2 processes of 1 thread``: what the run used."""
    threads = f"{evaluation.threads} thread{'s' if evaluation.threads != 1 else ''}"
    return threads if evaluation.workers == 1 else f"{evaluation.workers} processes of {threads}"


def _check_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Usage errors (exit 2) of option combinations and values, found before anything is loaded."""
    from ..evaluation.engine import MODEL_DATA  # imports torch: the registered models are known only here

    if args.data is None:
        model = args.model or "demo"
        if model not in MODEL_DATA:
            parser.error(f"argument --model: no evaluation images are registered for {model!r}; expected one of "
                         f"{', '.join(sorted(MODEL_DATA))}, or pass --data DIR with your own images")
        for option in ("weights", "arch", "num_classes", "class_names"):
            if getattr(args, option) is not None:
                parser.error(f"argument --{option.replace('_', '-')}: only with --data (the generated images "
                             f"are registered for {', '.join(sorted(MODEL_DATA))} only)")
    elif args.ablation:
        parser.error("argument --ablation: not with --data (its variants name the demo ResNet's layers and it "
                     "measures the demo world)")
    elif _inside(args.output, args.data):
        parser.error(f"argument -o/--output: {args.output} is inside --data {args.data}; write the results "
                     "elsewhere (nothing in the data folder is ever written)")


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (links resolved)."""
    from pathlib import Path

    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def _load_data(args: argparse.Namespace, parser: argparse.ArgumentParser, info: dict) -> tuple:
    """``(EvalData, what run.json records about it)``: the registered images of the model, or the rows of
    ``--data DIR``'s manifest (each skipped row named on stderr; a usage error if none is usable)."""
    if args.data is None:
        from ..evaluation.engine import MODEL_DATA

        return MODEL_DATA[args.model or "demo"](args.n or DEFAULT_N, args.seed), {}
    import warnings

    from ..evaluation.folder import ManifestError, read_manifest
    from ..images.reading import ImageWarning
    from .escape import printable
    from .reasons import plain_reason

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageWarning)
        try:
            (data, skipped), error = read_manifest(args.data, info, args.n, max_rows=MAX_N), None
        except ManifestError as exc:
            data, skipped, error = None, exc.skipped, exc
    for w in caught:
        print(f"cfcam evaluate: warning: {printable(w.message)}", file=sys.stderr)
    for s in skipped:
        print(f"cfcam evaluate: skipped manifest line {s['line']} ({printable(s['file'])}): "
              f"{printable(plain_reason(s['why'], s['file']))}",
              file=sys.stderr)
    if error is not None:
        parser.error(f"argument --data: {printable(error)}")
    return data, {"data": str(args.data), "images": data.extras["rows"], "skipped": skipped}
