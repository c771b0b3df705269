"""``make book``: the course as a static website in build/book/ (open build/book/index.html), offline.

    python book/build.py [--out build/book] [--work build/book-work] [--workers 2]

Three steps: stage the README (the front page), docs/*.md and their images into WORK/src with site links
(:mod:`stage`); execute the notebooks into it, a few at a time, each only when it or the cfcam package
changed (:mod:`execute`); render everything with Sphinx, MyST-NB and sphinx-book-theme (conf.py). A second
run with nothing changed executes nothing and rewrites only what Sphinx finds changed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from execute import NotebookFailed, execute_all, input_key, tree_hash  # noqa: E402
from stage import COURSE, Site, write_if_changed  # noqa: E402


def index_page(site: Site) -> str:
    """The README as the front page, with the navigation (hidden toctrees: the sidebar shows them)."""
    text = site.rewrite("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))
    course = "\n".join(f"notebooks/{n}" for n in COURSE)
    reference = "\n".join(f"docs/{n}" for n in site.reference())
    return (text.rstrip() + "\n\n```{toctree}\n:hidden:\n:caption: The course\n:maxdepth: 1\n\n" + course +
            "\n```\n\n```{toctree}\n:hidden:\n:caption: Reference\n:maxdepth: 1\n\n" + reference + "\n```\n")


def launch_line(site: Site, name: str) -> str:
    url = site.binder_url(name)
    return (f"\n\n*Run this notebook:* [launch it on Binder]({url}) (nothing to install; the explorers on this "
            f"page are stills there they move), or on your computer with `make lab`.\n")


def notebook_page(site: Site, executed: Path, name: str) -> str:
    """An executed notebook as a site page: links rewritten, the launch line under its title."""
    nb = nbformat.read(executed, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cell.source = site.rewrite(f"notebooks/{name}.ipynb", cell.source)
            if i == 0:
                first, _, rest = cell.source.partition("\n")
                cell.source = first + launch_line(site, name) + rest
    return nbformat.writes(nb)


def stage(site: Site, src: Path) -> None:
    """The Markdown pages and their images into ``src`` (only files whose content changed are rewritten)."""
    write_if_changed(src / "index.md", index_page(site))
    for name in site.reference():
        write_if_changed(src / "docs" / f"{name}.md",
                         site.rewrite(f"docs/{name}.md", (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8")))
    for path in sorted(site.images):
        write_if_changed(src / path, (ROOT / path).read_bytes())


def prune(src: Path, keep: set[str]) -> None:
    """Remove staged files that are no longer sources (a page deleted or renamed since the last build)."""
    for path in sorted(src.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(src).as_posix() not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def execute(site: Site, work: Path, workers: int) -> None:
    dependencies = tree_hash(ROOT / "cfcam", HERE)
    jobs = [(ROOT / "notebooks" / f"{n}.ipynb", work / "executed" / f"{n}.ipynb",
             input_key(ROOT / "notebooks" / f"{n}.ipynb", dependencies),
             {"CFCAM_BINDER_URL": site.binder_url(n)}) for n in COURSE]
    missing = [str(j[0]) for j in jobs if not j[0].exists()]
    if missing:
        raise SystemExit(f"book: notebook(s) not found: {', '.join(missing)}")
    started = time.perf_counter()
    seconds = execute_all(jobs, workers)
    ran = {n: s for n, s in seconds.items() if s is not None}
    print(f"book: executed {len(ran)} notebook(s), {len(seconds) - len(ran)} unchanged, "
          f"{time.perf_counter() - started:.0f} s: " + ", ".join(f"{n} {s:.0f} s" for n, s in ran.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="the site (default build/book)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "book-work",
                        help="the executed notebooks, staged sources and Sphinx's cache (default build/book-work)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks executed at once (default 2)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    site = Site(ROOT)
    src = args.work / "src"
    try:
        execute(site, args.work, args.workers)
    except NotebookFailed as err:
        print(f"book: {err}", file=sys.stderr)
        return 1
    stage(site, src)
    for name in COURSE:
        write_if_changed(src / "notebooks" / f"{name}.ipynb",
                         notebook_page(site, args.work / "executed" / f"{name}.ipynb", name))
    for path in sorted(site.images):  # the notebooks' links may name more images
        write_if_changed(src / path, (ROOT / path).read_bytes())
    prune(src, {"index.md", *site.images, *(f"docs/{n}.md" for n in site.reference()),
                *(f"notebooks/{n}.ipynb" for n in COURSE)})
    started = time.perf_counter()
    env = dict(os.environ, CFCAM_BOOK_REPOSITORY=site.repo_url)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(HERE), "-d", str(args.work / "doctrees"),
           str(src), str(args.out)]
    if subprocess.run(cmd, env=env).returncode:
        print("book: Sphinx failed (its messages are above)", file=sys.stderr)
        return 1
    shutil.rmtree(args.out / ".doctrees", ignore_errors=True)
    print(f"book: site rendered in {time.perf_counter() - started:.0f} s: open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
