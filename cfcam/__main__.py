"""``python -m cfcam ...``: the same command line as the ``cfcam`` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
