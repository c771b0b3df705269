"""``python -m cfcam ...``: the same command line as the ``cfcam`` console script."""

from .cli import console

if __name__ == "__main__":
    console()
