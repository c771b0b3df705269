"""``python -m cfcam.teaching.assignments mark|build``: mark the notebooks for nbgrader (``make mark``), or
write the student edition to build/student/ and autograde both editions (``make assignments``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from .marking import mark_notebook


def _stems(notebooks: Path, only: list[str] | None) -> list[str]:
    stems = sorted(p.stem for p in notebooks.glob("*.ipynb"))
    if not stems:
        raise SystemExit(f"no notebooks in {notebooks}")
    unknown = sorted(set(only or ()) - set(stems))
    if unknown:
        raise SystemExit(f"--only: no such notebook in {notebooks}: {', '.join(unknown)}")
    return [s for s in stems if not only or s in only]


def mark(notebooks: Path, stems: list[str], check: bool) -> int:
    """Rewrite each notebook marked (or, with ``check``, only say which are not); 1 when any was not."""
    stale = []
    for stem in stems:
        path = notebooks / f"{stem}.ipynb"
        nb = nbformat.read(path, as_version=4)
        marked = mark_notebook(nb, stem)
        if marked == nb:
            continue
        stale.append(stem)
        if not check:
            tmp = path.with_suffix(".ipynb.tmp")
            nbformat.write(marked, tmp)
            tmp.replace(path)
    verb = "not marked" if check else "marked"
    print(f"{verb}: {', '.join(stale)}" if stale else "every notebook is marked")
    return 1 if stale and check else 0


def build(notebooks: Path, build_dir: Path, stems: list[str], grade: bool) -> int:
    """The student edition in ``build_dir/student``; with ``grade``, both editions autograded (0 when right)."""
    from .edition import autograde, generate, report, write_course

    course, student = build_dir / "nbgrader", build_dir / "student"
    write_course(notebooks, course, stems)
    generate(course, stems, student)
    print(f"student edition: {student}/ ({len(stems)} notebooks)")
    if not grade:
        return 0
    scores = []
    for stem in stems:
        for s in autograde(course, stem):
            scores.append(s)
            print(f"{stem:32s} {s.student:20s} {s.score:g} of {s.max_score:g}", flush=True)
    problems = report(scores, course / "scores.json")
    for line in problems:
        print("PROBLEM:", line)
    print(f"scores: {course / 'scores.json'}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfcam.teaching.assignments", description=__doc__)
    parser.add_argument("command", choices=("mark", "build"))
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="the instructor edition")
    parser.add_argument("--build", type=Path, default=Path("build"), help="where student/ and nbgrader/ go")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="these notebooks (names without .ipynb)")
    parser.add_argument("--check", action="store_true", help="mark: change nothing, fail if a notebook is unmarked")
    parser.add_argument("--no-grade", action="store_true", help="build: skip the autograding")
    args = parser.parse_args(argv)
    stems = _stems(args.notebooks, args.only)
    if args.command == "mark":
        return mark(args.notebooks, stems, args.check)
    return build(args.notebooks.resolve(), args.build.resolve(), stems, not args.no_grade)


if __name__ == "__main__":
    sys.exit(main())
