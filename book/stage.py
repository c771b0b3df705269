"""The book's sources, staged from the repository: the README as the front page, docs/*.md as pages, their
images, and the links between them rewritten so that every one resolves inside the site (or is a plain link out).

The repository's pages link each other by their GitHub addresses (so they work on GitHub, PyPI and Binder);
on the site those become links to its own pages, images the README loads from GitHub become the local file,
and the Binder badge (an image on mybinder.org) becomes a text link: a page must load nothing from the network.
A link to a repository file that is no page of the site (a script, a CSV) goes to that file on GitHub.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["COURSE", "REFERENCE", "Site", "write_if_changed"]

# the order of the navigation: the course, then the reference pages (the README's Documentation table)
COURSE = ["00_index", "01_hooks_and_gradcam", "02_channel_clustering", "03_gradient_filtering", "04_composition",
          "05_your_own_images_and_models", "06_evaluation", "07_capstone", "08_a_model_that_cheats"]
REFERENCE = ["cheatsheet", "install", "notebooks", "method", "cli", "guarantees", "architectures", "evaluating",
             "demo-world", "performance", "contributing"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
BADGE = re.compile(r"\[!\[([^\]]*)\]\(https://mybinder\.org/badge[^)]*\)\]\(([^)\s]+)\)")
LINK = re.compile(r"(!?\[[^\]]*\]\()\s*<?([^)\s>]+)>?((?:\s+\"[^\"]*\")?\))")
HTML_REF = re.compile(r"((?:href|src)\s*=\s*[\"'])([^\"']+)([\"'])")


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write ``path`` (atomically) only when its content differs, so Sphinx rebuilds only what changed."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


class Site:
    """Where each repository page lands in the site, and how a link from one repository file is rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root
        urls = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
        self.repo_url = urls["Source"].rstrip("/")  # https://github.com/OWNER/NAME
        owner_name = self.repo_url.split("github.com/", 1)[1]
        self.blob = f"{self.repo_url}/blob/main/"
        self.raw = f"https://raw.githubusercontent.com/{owner_name}/main/"
        self.binder = f"https://mybinder.org/v2/gh/{owner_name}/HEAD?urlpath=lab/tree/"
        # repository path -> site path
        self.pages = {"README.md": "index.md"}
        self.pages.update({f"docs/{n}.md": f"docs/{n}.md" for n in self.reference()})
        self.pages.update({f"notebooks/{n}.ipynb": f"notebooks/{n}.ipynb" for n in COURSE})
        self.images: set[str] = set()  # repository paths of the images the pages show (copied as they are)

    def reference(self) -> list[str]:
        """The docs pages in navigation order: the listed ones first, any other docs/*.md after them."""
        present = {p.stem for p in (self.root / "docs").glob("*.md")}
        return [n for n in REFERENCE if n in present] + sorted(present - set(REFERENCE))

    def binder_url(self, notebook: str) -> str:
        """The Binder address that opens ``notebooks/<notebook>.ipynb`` in JupyterLab (as the README's badges)."""
        return f"{self.binder}notebooks/{notebook}.ipynb"

    def _target(self, source: str, target: str, image: bool) -> str:
        """``target`` as written in repository file ``source``, rewritten for the site page of ``source``."""
        if target.startswith(self.blob) or target.startswith(self.raw):
            path, _, anchor = target.split("/main/", 1)[1].partition("#")
        elif re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "//")):
            return target  # another site, mail, or an anchor on this page
        else:
            rel, _, anchor = target.partition("#")
            parts = []
            for part in PurePosixPath(source).parent.joinpath(rel).parts:
                if part == "..":
                    if not parts:
                        return target  # outside the repository: leave it (the link check will say)
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            path = "/".join(parts)
        here = PurePosixPath(self.pages.get(source, source)).parent
        suffix = f"#{anchor}" if anchor else ""
        if path in self.pages:
            return _relative(self.pages[path], here) + suffix
        if PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES and (self.root / path).is_file():
            self.images.add(path)
            return _relative(path, here)
        if image:
            return target  # an image that is not in the repository: left for the network check to refuse
        return self.blob + path + suffix  # a file that is no page: its page on GitHub

    def rewrite(self, source: str, text: str) -> str:
        """Markdown (or a notebook's markdown cell) from repository file ``source``, its links made site links."""
        text = BADGE.sub(lambda m: f"[launch on Binder]({m[2]})", text)
        text = LINK.sub(lambda m: m[1] + self._target(source, m[2], m[1].startswith("!")) + m[3], text)
        return HTML_REF.sub(lambda m: m[1] + self._target(source, m[2], m[1].lstrip().startswith("src")) + m[3],
                            text)


def _relative(path: str, here: PurePosixPath) -> str:
    """``path`` (from the site's root) as seen from the folder ``here``."""
    up = len(here.parts) if str(here) != "." else 0
    return "../" * up + path
