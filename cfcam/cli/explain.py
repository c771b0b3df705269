"""``cfcam explain IMAGES... -o DIR``: a heatmap overlay per image and a ``summary.csv``.

A thin layer: it finds and loads images (:mod:`cfcam.imageio`), loads the model (:mod:`cfcam.models`), runs
an explainer (:mod:`cfcam.explainers`) a batch at a time, and writes overlays and ``summary.csv`` atomically.
Exit codes: 0 every input explained, 1 some input failed (each named on stderr, the run goes on), 2 usage
error (a bad option value, a model or layer that cannot be used, an output folder that is not writable or
that another run is writing to), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
``summary.csv`` is written when the run starts and kept up to date (:mod:`cfcam.cli.runlog`), names are
escaped for the terminal and for spreadsheets (:mod:`cfcam.cli.escape`), one run at a time per output
folder (:mod:`cfcam.cli.lock`), and signals stop the run cleanly (:mod:`cfcam.cli.signals`). Earlier runs'
overlays are never taken as inputs, and overlays a killed run did not record are named
(:mod:`cfcam.cli.outputs`). The guarantees are listed in ``docs/guarantees.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from ..core.config import PRESETS
from ..images.reading import MAX_PIXELS, ImageWarning
from ..images.scanning import IMAGE_EXTENSIONS, find_images
from ..images.writing import check_writable
from ..methods.registry import create, method_names
from .args import (
    add_reshape_option,
    add_weights_options,
    alpha_value,
    int_range,
    load_model_option,
    positive_int,
    resolve_layer_option,
)
from .escape import printable
from .lock import FolderBusy, FolderLock, LockNotAFile
from .outputs import remove_stale_temps, split_earlier_outputs, unrecorded_overlays
from .reasons import plain_reason
from .runlog import CSV_COLUMNS, NOT_REACHED, RunLog
from .signals import SignalGuard, signal_name

# torch, torchvision and OpenCV are imported inside the functions that run the model, so that --help and
# --version start without them

__all__ = ["CSV_COLUMNS", "MAX_BATCH_SIZE", "add_parser", "explain"]

_MAX_LISTED_FAILURES = 10
MAX_BATCH_SIZE = 64
"""Largest ``--batch-size``: a batch's activations and gradients grow with it (about 10 MB per image for a
ResNet50 at 224 px) while larger batches are no faster on a CPU."""
NAME_MAX = 255  # bytes in one file name on nearly every file system


# -- explain ----------------------------------------------------------------------------------------------

def add_parser(sub) -> argparse.ArgumentParser:
    """The ``explain`` subcommand's options."""
    ex = sub.add_parser(
        "explain", help="write a heatmap overlay per image and a summary.csv",
        description="Explain each image's predicted (or --target) class with CF-CAM or Grad-CAM. Folders are "
                    f"scanned non-recursively for {' '.join(IMAGE_EXTENSIONS)}; files named explicitly are always "
                    "tried. Writes <stem>_<method>.png (the overlay, at the image's own size) per image and "
                    "summary.csv to the output folder (kept up to date during the run). One run at a time per output "
                    "folder. Exit code 0: all explained, 1: some inputs failed, 2: usage error, 128+N: stopped by "
                    "signal N (130: Ctrl-C, 143: SIGTERM).")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    ex.add_argument("-o", "--output", default="output", metavar="DIR",
                    help="output folder, created if missing (default: output)")
    ex.add_argument("--model", default=None,
                    help="'demo' (default, the bundled normal-vs-lesion ResNet-10), 'demo-shortcut' (the same "
                         "architecture trained to cheat: it follows a marker outside the lungs), a torchvision name "
                         "with ImageNet weights (e.g. resnet50), timm:NAME (needs cfcam[timm]; add --weights FILE "
                         "offline), or a state-dict file (.pt/.pth; needs --arch)")
    add_weights_options(ex)
    ex.add_argument("--layer", default=None,
                    help="layer to explain, e.g. 'layer4[-1]' or 'layer4.1' (default: the model's last stage)")
    add_reshape_option(ex)
    ex.add_argument("--method", choices=["cfcam", *method_names()], default="cfcam",
                    help="CAM method (default: cfcam, that is cfcam-<--preset>)")
    ex.add_argument("--preset", choices=sorted(PRESETS), default="readme",
                    help="CF-CAM parameter preset for --method cfcam (default: readme; other methods ignore it)")
    ex.add_argument("--target", default=None, metavar="CLASS",
                    help="class to explain, an index or a class name (default: each image's top class)")
    ex.add_argument("--batch-size", type=int_range(1, MAX_BATCH_SIZE), default=8, metavar="N",
                    help=f"images per forward pass, 1..{MAX_BATCH_SIZE} (default: 8)")
    ex.add_argument("--max-pixels", type=positive_int, default=MAX_PIXELS, metavar="N",
                    help=f"refuse images with more pixels than this, from their header (default: {MAX_PIXELS})")
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
    with SignalGuard() as guard, warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageWarning)  # each is printed as one line naming its file
        model, info, layer_name, target = _setup(args, parser)
        out_dir = Path(args.output)
        images, problems = find_images(args.inputs)
        images, earlier = split_earlier_outputs(images, args.inputs, out_dir)
        _say_skipped(earlier)
        if not images and not problems:
            print("cfcam explain: nothing to explain: every image found is an earlier run's overlay (name an "
                  "image explicitly, outside the output folder, to explain it anyway)", file=sys.stderr)
            return 1
        bases = _output_bases(images, out_dir, args.method, args.save_raw)
        summary_path = out_dir / "summary.csv"
        if _key(summary_path) in {_key(p) for p in images}:
            parser.error(f"argument -o/--output: {printable(summary_path)} is one of the inputs; choose another "
                         "output folder")
        lock = _claim_output(out_dir, parser)
        try:
            remove_stale_temps(out_dir)
            _say_unrecorded(out_dir)
            log = RunLog(summary_path, [p for p, _ in problems] + images)
            _start_summary(log, parser)
            return _run(args, model, info, layer_name, target, images, problems, bases, log, guard)
        finally:
            lock.release()


def _claim_output(out_dir: Path, parser) -> FolderLock:
    """Create ``out_dir``, prove it writable and lock it for this run; a usage error (exit 2) otherwise."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        check_writable(out_dir)
        return FolderLock(out_dir).acquire()
    except (FolderBusy, LockNotAFile) as exc:
        parser.error(f"argument -o/--output: {printable(exc.strerror if isinstance(exc, OSError) else exc)}")
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot write in {printable(out_dir)} ({exc.strerror or exc})")


def _say_skipped(earlier: list[Path]) -> None:
    """One line on stderr naming the earlier runs' overlays that were not taken as inputs."""
    if earlier:
        names = ", ".join(printable(p) for p in earlier[:_MAX_LISTED_FAILURES])
        more = f" and {len(earlier) - _MAX_LISTED_FAILURES} more" if len(earlier) > _MAX_LISTED_FAILURES else ""
        print(f"cfcam explain: not taken as inputs: {len(earlier)} overlay(s) of earlier runs (named like "
              f"<stem>_<method>.png or listed in their folder's summary.csv): {names}{more}", file=sys.stderr)


def _say_unrecorded(out_dir: Path) -> None:
    """One line on stderr naming overlays in ``out_dir`` that its summary does not record as explained (a run
    killed before its last summary): this run's summary will list this run's files only."""
    found = unrecorded_overlays(out_dir)
    if found:
        names = ", ".join(found[:_MAX_LISTED_FAILURES])
        more = f" and {len(found) - _MAX_LISTED_FAILURES} more" if len(found) > _MAX_LISTED_FAILURES else ""
        print(f"cfcam explain: note: {printable(out_dir)} holds {len(found)} overlay(s) that its summary.csv does "
              f"not record as explained (a run stopped before recording them, or not cfcam's): {names}{more}; "
              "this run's summary.csv lists this run's files only", file=sys.stderr)


def _start_summary(log: RunLog, parser) -> None:
    """Write this run's ``summary.csv`` (every input still to do) before the work, so that an older run's
    never stands for this one; a usage error (exit 2) if it cannot be written (a full disk)."""
    try:
        log.save()
    except OSError as exc:
        parser.error(f"argument -o/--output: cannot write {printable(log.path)} ({exc.strerror or exc})")


def _run(args, model, info, layer_name, target, images, problems, bases, log: RunLog, guard: SignalGuard) -> int:
    """Explain ``images`` a batch at a time into ``log``; the exit code. The summary is saved on every way out."""
    from tqdm.auto import tqdm

    out_dir = Path(args.output)
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = tqdm(total=len(images), file=sys.stderr, unit="img", desc=args.method, disable=not show_bar)
    failures: list[tuple[str, str]] = []

    def fail(path, reason: str) -> None:
        """Record a failed input: a summary row, the list printed at the end, one line on stderr now."""
        reason = plain_reason(reason, path)
        failures.append((str(path), reason))
        log.add({"file": str(path), "error": reason})
        tqdm.write(f"cfcam explain: skipped {printable(path)}: {printable(reason)}", file=sys.stderr)

    for path, reason in problems:
        fail(path, reason)

    from .batches import BatchSettings, explain_batches

    method = f"cfcam-{args.preset}" if args.method == "cfcam" else args.method
    reshape = None if info["reshape_used"] == "none" and args.reshape == "auto" else info["reshape_used"]
    explainer = create(method, model, layer_name, reshape_transform=reshape)
    started = time.perf_counter()
    stopped = None
    try:
        with explainer:
            settings = BatchSettings(args.method, args.batch_size, args.max_pixels, args.alpha, args.save_raw)
            explain_batches(images, explainer, info, target, settings, out_dir, bases, log.add, fail, bar,
                            warn=lambda path, note: tqdm.write(f"cfcam explain: warning: {printable(path)}: "
                                                               f"{printable(note)}", file=sys.stderr),
                            after_batch=log.save_progress)  # a killed run leaves a true summary of its work
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP through the guard
        stopped = exc
        tqdm.write(f"cfcam explain: stopped by {signal_name(exc)}; the files written so far are complete",
                   file=sys.stderr)
    finally:
        guard.disarm()  # a second signal must not cut the summary short
        bar.close()
        saved = _save_summary(log, stopped)
    if not args.quiet:
        print(_summary_text(log.rows(_pending(stopped)), failures, images, out_dir, args, info, layer_name,
                            time.perf_counter() - started, stopped))
    if stopped is not None:
        return getattr(stopped, "exit_code", 130)
    return 1 if failures or not saved else 0


def _pending(stopped: BaseException | None) -> str:
    """The error cell of an image the run never reached."""
    return NOT_REACHED if stopped is None else f"not explained: the run was stopped by {signal_name(stopped)}"


def _save_summary(log: RunLog, stopped) -> bool:
    """Write the final ``summary.csv``; False (and one line on stderr) if it cannot be written."""
    try:
        log.save(_pending(stopped))
    except OSError as exc:
        print(f"cfcam explain: cannot write {printable(log.path)} ({exc.strerror or exc})", file=sys.stderr)
        return False
    return True


def _setup(args, parser) -> tuple:
    """``(model, info, layer name, target index or None)`` from the options; usage errors exit with code 2."""
    from ..world.models import check_device

    try:
        device = check_device(args.device)
    except ValueError as exc:
        parser.error(f"argument --device: {exc}")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"argument -o/--output: {printable(out_dir)} exists and is not a folder")

    model, info = load_model_option(args, parser, device)

    layer_name, _ = resolve_layer_option(args, parser, model, info, device)
    target = None if args.target is None else _parse_target(args.target, info["classes"], parser)
    return model, info, layer_name, target


def _parse_target(text: str, classes: list[str], parser) -> int:
    """The class index for ``--target``: a class name (exact, else case-insensitive) or an index."""
    from ..world.models import class_index

    try:
        return class_index(text, classes)
    except ValueError as exc:
        parser.error(f"argument --target: {exc}")


def _key(path: Path) -> str:
    """A path's identity for clash checks (absolute, case-folded where the OS folds case)."""
    return os.path.normcase(str(Path(path).resolve()))


def _output_bases(images: list[Path], out_dir: Path, method: str, save_raw: bool) -> dict[Path, str]:
    """A distinct output name base per image: its stem, or ``<stem>_2``, ``_3``... when taken.

    Names are compared case-insensitively (so they stay distinct on macOS/Windows), a name whose output
    file would be one of the inputs is skipped, so an input is never overwritten, and a stem too long for the
    file system once the suffix is added is shortened (see ``_fit_name``).
    """
    inputs = {_key(p) for p in images}
    taken: set[str] = set()
    bases: dict[Path, str] = {}
    room = NAME_MAX - len(f"_{method}.npy".encode())
    for path in images:
        stem = path.stem or "image"
        base, k = _fit_name(stem, room), 1
        while True:
            outs = [out_dir / f"{base}_{method}.png"] + ([out_dir / f"{base}_{method}.npy"] if save_raw else [])
            if base.casefold() not in taken and not any(_key(o) in inputs for o in outs):
                break
            k += 1
            base = _fit_name(f"{stem}_{k}", room)
        taken.add(base.casefold())
        bases[path] = base
    return bases


def _fit_name(name: str, room: int) -> str:
    """``name`` if it fits in ``room`` bytes, else its start (whole characters) and ``~`` plus a short hash of
    the whole name, so that two long names that start alike stay distinct."""
    if len(os.fsencode(name)) <= room:
        return name
    tag = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    kept, used = [], 0
    for char in name:
        size = len(os.fsencode(char))
        if used + size > room - len(tag):
            break
        kept.append(char)
        used += size
    return "".join(kept) + tag


def _reshape_note(info) -> str:
    used = info.get("reshape_used", "none")
    return "" if used == "none" else f" (reshape {used})"


def _layer_text(info, layer_name: str) -> str:
    """The layer as the user (or the model's card) named it, e.g. ``layer4[-1]``, with the module it resolved
    to when that reads differently (``layer4[-1] (layer4.0)``): the notebooks' name and the model's both."""
    given = info.get("layer_as_given") or layer_name
    same = given == layer_name
    return printable(given) if same else f"{printable(given)} ({printable(layer_name)})"


def _summary_text(rows, failures, images, out_dir, args, info, layer_name, elapsed, stopped) -> str:
    """The one-screen summary printed at the end of a run (every name escaped for the terminal)."""
    done = [r for r in rows if not r.get("error")]
    method = args.method + (f" (preset {args.preset})" if args.method == "cfcam" else "")
    ending = f" (stopped by {signal_name(stopped)})" if stopped is not None else ""
    lines = [f"cfcam explain: {len(done)} of {len(images)} image(s) explained with {method}, model "
             f"{printable(info['name'])}, layer {_layer_text(info, layer_name)}{_reshape_note(info)}, "
             f"in {elapsed:.1f} s "
             f"({len(done) / max(elapsed, 1e-9):.1f} images/s){ending}"]
    if done:
        counts = Counter(r["predicted"] for r in done)
        lines.append("  predicted: " + ", ".join(f"{printable(c)} {n}" for c, n in counts.most_common(8)))
    flat = sum("zero everywhere" in r.get("notes", "") for r in done)
    if flat:
        lines.append(f"  note: {flat} map(s) are zero everywhere (no positive evidence for the target class "
                     "at this layer); see the notes column of summary.csv")
    outputs = f"{len(done)} overlay(s) *_{args.method}.png" + (", .npy maps" if args.save_raw else "")
    lines.append(f"  output: {printable(out_dir.resolve())} ({outputs}, summary.csv)")
    unreached = len(rows) - len(done) - len(failures)
    if unreached > 0:
        lines.append(f"  not reached: {unreached} (listed in summary.csv)")
    if failures:
        lines.append(f"  failed: {len(failures)}")
        for path, reason in failures[:_MAX_LISTED_FAILURES]:
            lines.append(f"    {printable(path)}: {printable(reason)}")
        if len(failures) > _MAX_LISTED_FAILURES:
            lines.append(f"    ... and {len(failures) - _MAX_LISTED_FAILURES} more (see summary.csv)")
    return "\n".join(lines)
