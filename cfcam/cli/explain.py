"""``cfcam explain IMAGES... -o DIR``: a heatmap overlay per image and a ``summary.csv``.

A thin layer: it finds and loads images (:mod:`cfcam.imageio`), loads the model (:mod:`cfcam.models`), runs
an explainer (:mod:`cfcam.explainers`) a batch at a time, and writes overlays and ``summary.csv`` atomically.
Exit codes: 0 every input explained, 1 some input failed (each named on stderr, the run goes on), 2 usage
error (a bad option value, a model or layer that cannot be used), 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..core.capture import ActivationsAndGradients
from .args import alpha_value, class_names, positive_int
from ..core.config import PRESETS
from ..methods.registry import create, method_names
from ..images.imageio import IMAGE_EXTENSIONS, ImageError, find_images, load_image, save_npy_atomic, save_png_atomic, \
    write_text_atomic
from ..world.models import DEMO_MODELS, ModelError, check_class_names, check_device, classification_models, load_model
from ..images.viz import overlay, preprocess

CSV_COLUMNS = ("file", "overlay", "predicted", "confidence", "target", "clusters", "noise_channels", "seconds",
               "notes", "error")
_MAX_LISTED_FAILURES = 10


# -- explain ----------------------------------------------------------------------------------------------

def add_parser(sub) -> argparse.ArgumentParser:
    """The ``explain`` subcommand's options."""
    ex = sub.add_parser(
        "explain", help="write a heatmap overlay per image and a summary.csv",
        description="Explain each image's predicted (or --target) class with CF-CAM or Grad-CAM. Folders are "
                    f"scanned non-recursively for {' '.join(IMAGE_EXTENSIONS)}; files named explicitly are always "
                    "tried. Writes <stem>_<method>.png (the overlay, at the image's own size) per image and "
                    "summary.csv to the output folder. Exit code 0: all explained, 1: some inputs failed, "
                    "2: usage error.")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    ex.add_argument("-o", "--output", default="output", metavar="DIR",
                    help="output folder, created if missing (default: output)")
    ex.add_argument("--model", default=None,
                    help="'demo' (default, the bundled normal-vs-lesion ResNet-10), 'demo-shortcut' (the same "
                         "architecture trained to cheat: it follows a marker outside the lungs), a torchvision name "
                         "with ImageNet weights (e.g. resnet50), or a state-dict file (.pt/.pth; needs --arch)")
    ex.add_argument("--weights", default=None, metavar="FILE",
                    help="a state-dict file for the --model/--arch architecture (same as --model FILE --arch NAME)")
    ex.add_argument("--arch", default=None, help="architecture of a weights file: a torchvision name or 'demo'")
    ex.add_argument("--num-classes", type=positive_int, default=None, metavar="N",
                    help="outputs of a weights file's classifier (default: read from the file)")
    ex.add_argument("--class-names", type=class_names, default=None, metavar="A,B,...",
                    help="class names, one per output (default: the model's own, or 'class 0', 'class 1', ...)")
    ex.add_argument("--layer", default=None,
                    help="layer to explain, e.g. 'layer4[-1]' or 'layer4.1' (default: the model's last stage)")
    ex.add_argument("--method", choices=["cfcam", *method_names()], default="cfcam",
                    help="CAM method (default: cfcam, that is cfcam-<--preset>)")
    ex.add_argument("--preset", choices=sorted(PRESETS), default="readme",
                    help="CF-CAM parameter preset for --method cfcam (default: readme; other methods ignore it)")
    ex.add_argument("--target", default=None, metavar="CLASS",
                    help="class to explain, an index or a class name (default: each image's top class)")
    ex.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                    help="images per forward pass (default: 8)")
    ex.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    ex.add_argument("--alpha", type=alpha_value, default=0.4,
                    help="heatmap weight in the overlay, in [0, 1] (default: 0.4)")
    ex.add_argument("--save-raw", action="store_true",
                    help="also write <stem>_<method>.npy, the float32 map in [0, 1] at the model's input size")
    ex.add_argument("--quiet", action="store_true",
                    help="no progress bar and no summary on stdout (failures still go to stderr)")
    ex.set_defaults(subparser=ex, run=explain)  # errors read "cfcam explain: error: ..."
    return ex


def explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``explain`` subcommand: validate options, then explain every image a batch at a time."""
    model, info, layer_name, target = _setup(args, parser)
    out_dir = Path(args.output)
    images, problems = find_images(args.inputs)
    bases = _output_bases(images, out_dir, args.method, args.save_raw)
    summary_path = out_dir / "summary.csv"
    if _key(summary_path) in {_key(p) for p in images}:
        parser.error(f"argument -o/--output: {summary_path} is one of the inputs; choose another output folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot create {out_dir} ({exc.strerror or exc})")

    from tqdm.auto import tqdm

    show_bar = not args.quiet and sys.stderr.isatty()
    bar = tqdm(total=len(images), file=sys.stderr, unit="img", desc=args.method, disable=not show_bar)
    rows: list[dict] = []
    failures: list[tuple[str, str]] = []

    def fail(path, reason: str) -> None:
        """Record a failed input: a summary row, the list printed at the end, one line on stderr now."""
        failures.append((str(path), reason))
        rows.append({"file": str(path), "error": reason})
        tqdm.write(f"cfcam explain: skipped {path}: {reason}", file=sys.stderr)

    for path, reason in problems:
        fail(path, reason)

    method = f"cfcam-{args.preset}" if args.method == "cfcam" else args.method
    explainer = create(method, model, layer_name)
    started = time.perf_counter()
    interrupted = False
    try:
        with explainer:
            for start in range(0, len(images), args.batch_size):
                chunk = images[start:start + args.batch_size]
                loaded = []
                for path in chunk:
                    t0 = time.perf_counter()
                    try:
                        loaded.append((path, load_image(path), time.perf_counter() - t0))
                    except ImageError as exc:
                        fail(path, exc.reason)
                        bar.update(1)
                if loaded:
                    _explain_batch(loaded, explainer, info, target, args, out_dir, bases, rows, fail, bar)
    except KeyboardInterrupt:
        interrupted = True
        tqdm.write("cfcam explain: interrupted; the files written so far are complete", file=sys.stderr)
    finally:
        bar.close()
    elapsed = time.perf_counter() - started

    order = {str(p): i for i, p in enumerate(images)}  # input order; path problems (not in images) first
    rows.sort(key=lambda r: order.get(r["file"], -1))
    try:
        write_text_atomic(_summary_csv(rows), summary_path)
    except OSError as exc:
        print(f"cfcam explain: cannot write {summary_path} ({exc.strerror or exc})", file=sys.stderr)
        return 1
    if not args.quiet:
        print(_summary_text(rows, failures, images, out_dir, args, info, layer_name, elapsed, interrupted))
    if interrupted:
        return 130
    return 1 if failures else 0


def _setup(args, parser) -> tuple:
    """``(model, info, layer name, target index or None)`` from the options; usage errors exit with code 2."""
    try:
        device = check_device(args.device)
    except ValueError as exc:
        parser.error(f"argument --device: {exc}")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"argument -o/--output: {out_dir} exists and is not a folder")

    source, arch, option = _model_source(args, parser, classification_models())
    try:
        model, info = load_model(source, arch=arch, num_classes=args.num_classes, device=device)
    except ModelError as exc:
        parser.error(f"argument {option}: {exc}")
    if args.class_names is not None:
        try:
            info["classes"] = check_class_names(args.class_names, len(info["classes"]))
        except ModelError as exc:
            parser.error(f"argument --class-names: {exc}")

    layer = args.layer or info["default_layer"]
    if layer is None:
        parser.error(f"argument --layer: the model {info['name']} has no default layer to explain; pass --layer")
    try:
        layer_name = _check_layer(model, layer, info["input_size"], device)
    except ValueError as exc:
        parser.error(f"argument --layer: {exc}")
    target = None if args.target is None else _parse_target(args.target, info["classes"], parser)
    return model, info, layer_name, target


def _model_source(args, parser, names: list[str]) -> tuple[str, str | None, str]:
    """``(name_or_path, arch, option to blame)`` from ``--model``, ``--weights`` and ``--arch``."""
    model = args.model or "demo"
    if args.weights is None:
        return model, args.arch, "--model"
    if args.model is not None and args.model not in DEMO_MODELS and args.model not in names:
        parser.error("argument --weights: give the weights file either as --model FILE or as --weights FILE, not both")
    if args.arch is not None and args.model is not None and args.arch != args.model:
        parser.error(f"argument --arch: {args.arch!r} contradicts --model {args.model!r}")
    return args.weights, args.arch or model, "--weights"


def _check_layer(model, layer: str, size: int, device) -> str:
    """The resolved name of ``layer``, after one capture on a blank image proves it gives (N, C, h, w) maps."""
    with ActivationsAndGradients(model, layer) as grab:
        grab(torch.zeros(1, 3, size, size, device=device))
        return grab.layer_name


def _parse_target(text: str, classes: list[str], parser) -> int:
    """The class index for ``--target``: a class name (exact, else case-insensitive) or an index."""
    if text in classes:
        return classes.index(text)
    folded = [i for i, c in enumerate(classes) if c.casefold() == text.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    try:
        index = int(text)
    except ValueError:
        index = None
    if index is not None and 0 <= index < len(classes):
        return index
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    parser.error(f"argument --target: {text!r} is neither a class index (0..{len(classes) - 1}) nor a class name "
                 f"({shown})")


def _key(path: Path) -> str:
    """A path's identity for clash checks (absolute, case-folded where the OS folds case)."""
    return os.path.normcase(str(Path(path).resolve()))


def _output_bases(images: list[Path], out_dir: Path, method: str, save_raw: bool) -> dict[Path, str]:
    """A distinct output name base per image: its stem, or ``<stem>_2``, ``_3``... when taken.

    Names are compared case-insensitively (so they stay distinct on macOS/Windows), and a name whose output
    file would be one of the inputs is skipped, so an input is never overwritten.
    """
    inputs = {_key(p) for p in images}
    taken: set[str] = set()
    bases: dict[Path, str] = {}
    for path in images:
        stem = path.stem or "image"
        base, k = stem, 1
        while True:
            outs = [out_dir / f"{base}_{method}.png"] + ([out_dir / f"{base}_{method}.npy"] if save_raw else [])
            if base.casefold() not in taken and not any(_key(o) in inputs for o in outs):
                break
            k += 1
            base = f"{stem}_{k}"
        taken.add(base.casefold())
        bases[path] = base
    return bases


def _explain_batch(loaded, explainer, info, target, args, out_dir, bases, rows, fail, bar) -> None:
    """One forward/backward pass for ``loaded`` images, then an overlay (and .npy) and a row per image."""
    t0 = time.perf_counter()
    try:
        batch = torch.cat([preprocess(im, info["input_size"], info["mean"], info["std"]) for _, im, _ in loaded])
        maps = explainer(batch, target)
        probs = explainer.predictions
        targets = explainer.capture.targets.tolist()
        results = explainer.results
    except (ValueError, RuntimeError) as exc:
        for path, _, _ in loaded:
            fail(path, f"explaining failed: {type(exc).__name__}: {exc}")
        bar.update(len(loaded))
        return
    share = (time.perf_counter() - t0) / len(loaded)
    classes = info["classes"]
    for i, (path, image, load_seconds) in enumerate(loaded):
        t1 = time.perf_counter()
        name = f"{bases[path]}_{args.method}"
        try:
            save_png_atomic(overlay(maps[i], image, alpha=args.alpha), out_dir / f"{name}.png")
            if args.save_raw:
                save_npy_atomic(maps[i].astype(np.float32), out_dir / f"{name}.npy")
        except (OSError, ValueError) as exc:
            fail(path, f"cannot write the output ({exc})")
            bar.update(1)
            continue
        predicted = int(np.argmax(probs[i]))
        result = results[i]
        rows.append({
            "file": str(path),
            "overlay": f"{name}.png",
            "predicted": classes[predicted],
            "confidence": f"{float(probs[i][predicted]):.4f}",
            "target": classes[int(targets[i])],
            "clusters": getattr(result, "n_clusters", ""),  # CF-CAM only
            "noise_channels": getattr(result, "n_noise", ""),
            "seconds": f"{load_seconds + share + time.perf_counter() - t1:.3f}",
            "notes": "; ".join(result.notes),
            "error": "",
        })
        bar.update(1)


def _summary_csv(rows: list[dict]) -> str:
    """``summary.csv`` text: one row per input (``CSV_COLUMNS``; failures fill only ``file`` and ``error``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _summary_text(rows, failures, images, out_dir, args, info, layer_name, elapsed, interrupted) -> str:
    """The one-screen summary printed at the end of a run."""
    done = [r for r in rows if not r.get("error")]
    method = args.method + (f" (preset {args.preset})" if args.method == "cfcam" else "")
    lines = [f"cfcam explain: {len(done)} of {len(images)} image(s) explained with {method}, model "
             f"{info['name']}, layer {layer_name}, in {elapsed:.1f} s" + (" (interrupted)" if interrupted else "")]
    if done:
        counts = Counter(r["predicted"] for r in done)
        lines.append("  predicted: " + ", ".join(f"{c} {n}" for c, n in counts.most_common(8)))
    flat = sum("zero everywhere" in r.get("notes", "") for r in done)
    if flat:
        lines.append(f"  note: {flat} map(s) are zero everywhere (no positive evidence for the target class "
                     "at this layer); see the notes column of summary.csv")
    outputs = f"{len(done)} overlay(s) *_{args.method}.png" + (", .npy maps" if args.save_raw else "")
    lines.append(f"  output: {out_dir.resolve()} ({outputs}, summary.csv)")
    if failures:
        lines.append(f"  failed: {len(failures)}")
        for path, reason in failures[:_MAX_LISTED_FAILURES]:
            lines.append(f"    {path}: {reason}")
        if len(failures) > _MAX_LISTED_FAILURES:
            lines.append(f"    ... and {len(failures) - _MAX_LISTED_FAILURES} more (see summary.csv)")
    return "\n".join(lines)
