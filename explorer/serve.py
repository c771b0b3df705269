"""Serve the classroom explorer (cfcam_explorer.ipynb beside this file) with Voila on this machine only.

``make explorer`` runs it; so does the browser test, so both serve the same page. Prints the URL to open, and
refuses a port in use with a sentence (not Voila's quiet move to another port, which would make the URL wrong).
    python explorer/serve.py [--port 8866]
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().with_name("cfcam_explorer.ipynb")
HOST = "127.0.0.1"
# An upload travels to the kernel as one websocket message; tornado's default cap (10 MiB) would cut the page's
# connection on a larger file. With this one the explorer receives it and says it is too large.
WEBSOCKET_MAX_BYTES = 256 * 2**20
TEMPLATES = NOTEBOOK.parent / "jupyter"  # a Jupyter data folder holding voila/templates/cfcam


def with_templates(environ: dict) -> dict:
    """``environ`` with ``TEMPLATES`` first on JUPYTER_PATH, where Voila looks for templates."""
    rest = environ.get("JUPYTER_PATH", "")
    return {**environ, "JUPYTER_PATH": os.pathsep.join([str(TEMPLATES)] + ([rest] if rest else []))}


LAB_ONLY_EXTENSIONS = ["@jupyter/nbgrader", "@jupyter-notebook/lab-extension"]


def voila_argv(port: int) -> list[str]:
    """Voila's command line: the explorer only, no browser opened, this machine only, exactly this port, with
    the template that loads nothing from outside (``TEMPLATES``: Voila's lab template without its CDN links)."""
    return [str(NOTEBOOK), "--no-browser", f"--Voila.ip={HOST}", f"--port={port}", "--Voila.port_retries=0",
            "--template=cfcam",
            "--VoilaConfiguration.show_tracebacks=False"]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8866, help="the port to serve on (default 8866)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be 1-65535, got {args.port}")
    if not port_free(args.port):
        print(f"explorer: port {args.port} is in use (another explorer?); pick another: "
              f"make explorer EXPLORER_PORT={args.port + 1}", file=sys.stderr)
        return 2
    try:
        from traitlets.config import Config
        from voila.app import Voila
    except ImportError:
        print("explorer: Voila is not installed; pip install -e '.[classroom]' (make does it)", file=sys.stderr)
        return 2
    print(f"cfcam explorer: open http://{HOST}:{args.port}/ in a browser (the first load takes a few seconds); "
          "Ctrl-C stops it", flush=True)
    os.environ.update(with_templates(dict(os.environ)))
    # (an int here: on the command line a Dict's value arrives as a string, and tornado compares it with ints)
    # JupyterLab extensions installed beside Voila that expect JupyterLab's own shared modules, which a Voila
    # page lacks, fail in the console: nbgrader's and Notebook 7's are left out. (Both lists set: Voila reads
    # the length of each.)
    config = Config({"VoilaConfiguration": {"extension_allowlist": [], "extension_denylist": LAB_ONLY_EXTENSIONS}})
    Voila.launch_instance(argv=voila_argv(args.port), config=config,
                          tornado_settings={"websocket_max_message_size": WEBSOCKET_MAX_BYTES})
    return 0


if __name__ == "__main__":
    sys.exit(main())
