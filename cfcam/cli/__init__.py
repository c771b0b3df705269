"""The ``cfcam`` command line: ``cfcam explain`` (heatmaps for a folder of images), ``cfcam evaluate`` (methods
side by side on the metrics) and ``cfcam train-demo``.

Each subcommand lives in its own module and adds its own options; this module only dispatches. Exit codes:
0 success, 1 some input failed (each named on stderr, the run goes on), 2 usage error, 128 + N stopped by
signal N (130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP), also during start-up: :func:`main` installs its signal
handlers before anything heavy is imported (the subcommands' modules are imported inside it), so a signal at
any point says one line and exits 128 + N, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from .signals import on_start_up, signal_name


def build_parser() -> argparse.ArgumentParser:
    """The ``cfcam`` parser with its ``explain``, ``evaluate`` and ``train-demo`` subcommands."""
    from . import evaluate, explain  # here, not at import: main's signal handlers come first

    parser = argparse.ArgumentParser(prog="cfcam", description="CF-CAM and Grad-CAM heatmaps for image classifiers.")
    parser.add_argument("--version", action="version", version=f"cfcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{explain,evaluate,train-demo}")

    explain.add_parser(sub)
    evaluate.add_parser(sub)

    sub.add_parser("train-demo", add_help=False, help="train the demo model (see cfcam train-demo --help)")
    return parser


def console(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``cfcam`` program: :func:`main`, then exit. After a signal the run has already cleaned up and said
    so; the process then ends at once (``os._exit``) instead of tearing down the interpreter, which took 10-60 s
    after a long evaluation (collecting every object the run made) while the user waited for the prompt."""
    code = main(argv)
    if isinstance(code, int) and code > 128:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    with on_start_up():  # first: a signal from here on is one line and 128 + N
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    """:func:`main` once the start-up signal handlers are in place."""
    _never_fail_to_print()
    try:
        if argv and argv[0] == "train-demo":
            from .signals import SignalGuard

            with SignalGuard():  # a signal unwinds (its temporary files removed), then one line below
                from ..world import train  # lazy: only this subcommand needs the training code

                return int(train.main(argv[1:]) or 0)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return args.run(args, args.subparser)
    except SystemExit as exc:  # argparse's errors and --help: hand back the code instead of exiting
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM, see cli.signals) before a run took charge of it
        print(f"cfcam: stopped by {signal_name(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 130)


def _never_fail_to_print() -> None:
    """Let stdout/stderr show any character (as an escape if their encoding lacks it) instead of crashing."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured: leave it
                pass
