"""The README as a front door and its pages under docs/: length, links that resolve, no stale module names, and
the code example on the contributing page runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# The README is also PyPI's project page: files and images are linked by these absolute addresses.
BLOB = "https://github.com/cfcam/cfcam/blob/main/"
RAW = "https://raw.githubusercontent.com/cfcam/cfcam/main/"
# Files linked from the README that another change adds; remove a name here once it is merged.
PENDING: set[str] = set()  # files a link may name before they are merged
# Module paths that no longer exist (the package is grouped in folders now).
STALE = ("cfcam/config.py", "cfcam.imageio", "cfcam.models", "cfcam.explainers", "cfcam.synthetic",
         "cfcam/imageio.py", "cfcam/models.py", "cfcam/explainers.py", "cfcam/synthetic.py")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(path: Path) -> list[str]:
    """Every Markdown link and image target in the file, code blocks left out."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return LINK.findall(text)


def repo_path(target: str) -> str | None:
    """The repository path an absolute link to this repository points at, else None."""
    for prefix in (BLOB, RAW):
        if target.startswith(prefix):
            return target[len(prefix):].split("#")[0]
    return None


def test_readme_is_a_front_door_under_250_lines():
    text = README.read_text()
    assert len(text.splitlines()) < 250
    for heading in ("## Quick start", "## The notebooks", "## The command line", "## The library", "## Citing"):
        assert heading in text, heading
    quick = text.split("## Quick start")[1].split("\n## ")[0]
    assert "--index-url https://download.pytorch.org/whl/cpu" in quick and "several GB less" in quick
    order = [quick.index(f"make {t}") for t in ("lab", "demo", "test", "test-fast")]
    assert order == sorted(order), "the learner's path (make lab) first, then make demo, then make test"
    assert "@article{he2025cfcam," in text and "arXiv:2504.00060" in text and "CITATION.cff" in text


def test_readme_links_to_files_absolutely_so_they_work_on_pypi():
    targets = links(README)
    relative = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert relative == [], f"relative links break on PyPI: {relative}"
    assert RAW + "docs/demo.png" in targets


def test_every_repository_file_linked_from_the_readme_exists():
    paths = [p for p in map(repo_path, links(README)) if p is not None]
    assert any(p.startswith("docs/") for p in paths) and any(p.startswith("notebooks/") for p in paths)
    missing = [p for p in paths if not (ROOT / p).is_file() and p not in PENDING]
    assert missing == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {p for p in map(repo_path, links(README)) if p is not None}
    assert {f"docs/{page.name}" for page in PAGES} <= linked


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the file's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_of_docs_pages_point_to_existing_files(page):
    targets = [t for t in links(page) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    missing = [t for t in targets if not (page.parent / t.split("#")[0]).exists()]
    assert missing == []
    for target in (t for t in targets if "#" in t and t.split("#")[0].endswith(".md")):
        file, anchor = target.split("#")
        assert anchor in anchors(page.parent / file), target
    for target in filter(None, map(repo_path, links(page))):
        assert (ROOT / target).is_file(), target


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "cheatsheet.md"], ids=lambda p: p.name)
def test_each_page_starts_with_a_summary_and_links_back_to_the_readme(page):
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == "" and lines[2].strip()
    assert "](../README.md" in "\n".join(lines[:6])


def test_no_page_names_a_module_that_no_longer_exists():
    for path in [README, *PAGES]:
        text = path.read_text()
        assert [name for name in STALE if name in text] == [], path.name


def test_contributing_names_the_fast_tests_and_where_things_go():
    text = (DOCS / "contributing.md").read_text()
    assert "make test-fast" in text
    for part in ("A CAM method", "A metric", "A notebook", "An image format", "A model family's layout",
                 "cfcam/core/engine/", "CFCAM_ENGINE=plain"):
        assert part in text, part


def test_the_contributing_example_adds_a_method_with_one_class_and_one_line():
    from cfcam.methods.registry import METHODS, create, method_names
    from cfcam.world.architecture import build_demo_model

    text = (DOCS / "contributing.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "register(" in b)
    namespace: dict = {}
    try:
        exec(compile(block, "docs/contributing.md", "exec"), namespace)
        assert "absgradcam" in method_names()
        model = build_demo_model().eval()
        with create("absgradcam", model) as explainer:
            maps = explainer(torch.randn(2, 3, 64, 64), [0, 1])
        assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
        assert explainer.results[0].fallback is None and isinstance(explainer.results[0].notes, tuple)
    finally:
        METHODS.pop("absgradcam", None)


def test_the_readme_library_example_runs():
    """The README's taste of the library, as printed; its last line's core inputs are given here."""
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "import cfcam" in b)
    generator = torch.Generator().manual_seed(0)
    namespace: dict = {"activations": torch.rand(64, 7, 7, generator=generator),
                       "gradients": torch.randn(64, 7, 7, generator=generator)}
    exec(compile(block, "README.md", "exec"), namespace)
    maps = namespace["maps"]
    assert maps.shape == (1, 224, 224) and maps.dtype == np.float32 and 0 <= maps.min() <= maps.max() <= 1
    assert "layer4[-1]" in repr(namespace["explainer"])
    assert namespace["result"].cam.shape == (7, 7)
