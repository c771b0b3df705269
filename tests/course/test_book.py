"""``make book``: the course as a static website. The site is built once from scratch (the notebooks executed
with the explorers as stills) into a temporary folder, then checked: one page per notebook with its pictures,
the README, the cheat sheet and the docs as pages in the course's order, every local link, anchor and image
resolving, nothing loaded from the network, a second build executing nothing, and every page opening in
Chromium without a console error or a request leaving the machine.

The site's tools (the ``book`` extra) missing is a failure, not a skip: CI installs them.
"""

import http.server
import re
import subprocess
import sys
import threading
import time
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from test_browser import CHROMIUM, require_chromium

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book"))

from execute import WIDGET_VIEW, input_key, strip_widgets, tree_hash  # noqa: E402
from stage import COURSE, Site  # noqa: E402

BUILD_TIMEOUT_S = 1500  # nine notebooks, two at a time, on a busy 2-core machine: generous
NETWORK = re.compile(r"^\s*(?:https?:)?//", re.I)
CSS_URL = re.compile(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)")
CSS_IMPORT = re.compile(r"@import\s+(?:url\()?\s*['\"]?((?:https?:)?//[^'\")]+)")
EXPLORERS = ["01_hooks_and_gradcam", "02_channel_clustering", "03_gradient_filtering", "04_composition"]


class Page(HTMLParser):
    """The tags, attributes and ids of one HTML page, and its inline styles."""

    def __init__(self, path: Path) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.ids: set[str] = set()
        self.styles: list[str] = []
        self._in_style = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if "style" in attrs:
            self.styles.append(attrs["style"] or "")
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag):
        self._in_style = False


def test_the_book_tools_are_installed():
    """The ``book`` extra (CI installs it with .ci/install): missing, the site cannot be built, so fail."""
    import myst_nb  # noqa: F401
    import sphinx  # noqa: F401
    import sphinx_book_theme  # noqa: F401


def test_links_become_site_links_and_no_image_comes_from_the_network():
    site = Site(ROOT)
    readme = site.rewrite("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert "raw.githubusercontent.com" not in readme and "](docs/demo.png)" in readme
    assert "badge_logo.svg" not in readme  # 9 notebooks and the explorer:
    assert readme.count("[launch on Binder](https://mybinder.org/v2/gh/") == 10
    assert "](docs/cheatsheet.md)" in readme and "](notebooks/04_composition.ipynb)" in readme
    assert "https://github.com/cfcam/cfcam/blob/main/CITATION.cff" in readme  # a file, not a page: on GitHub
    page = site.rewrite("docs/notebooks.md", "[a](../README.md#the-notebooks) [b](install.md#binder) "
                        "[c](evaluation/table.md) ![d](demo.png) <img src=\"shortcut.png\"> [e](https://x.org/a)")
    assert page == ("[a](../index.md#the-notebooks) [b](../docs/install.md#binder) "
                    "[c](https://github.com/cfcam/cfcam/blob/main/docs/evaluation/table.md) ![d](../docs/demo.png) "
                    "<img src=\"../docs/shortcut.png\"> [e](https://x.org/a)")
    assert {"docs/demo.png", "docs/shortcut.png"} <= site.images
    assert site.binder_url("00_index") == "https://mybinder.org/v2/gh/cfcam/cfcam/HEAD?urlpath=lab/tree/notebooks/00_index.ipynb"


def test_widget_views_are_stripped_and_other_forms_kept():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "1"}}),
                    nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "2"}, "text/plain": "bar"}),
                    nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells = [cell]
    strip_widgets(nb)
    assert "widgets" not in nb.metadata
    assert [o.get("data") for o in cell.outputs] == [{"text/plain": "bar"}, None]


def test_the_execution_key_follows_the_notebook(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_text("one")
    first = input_key(nb, "deps")
    assert first == input_key(nb, "deps") != input_key(nb, "other deps")
    nb.write_text("two")
    assert input_key(nb, "deps") != first
    package = tmp_path / "package"
    package.mkdir()
    (package / "m.py").write_text("x = 1")
    before = tree_hash(package)
    (package / "m.py").write_text("x = 2")
    assert tree_hash(package) != before


def build(out: Path, work: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "book" / "build.py"), "--out", str(out), "--work", str(work)],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=ROOT)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from scratch: ``(folder, seconds, build output)``."""
    base = tmp_path_factory.mktemp("book")
    started = time.perf_counter()
    done = build(base / "site", base / "work")
    seconds = time.perf_counter() - started
    assert done.returncode == 0, f"make book failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    print(f"book built from scratch in {seconds:.0f} s:\n{done.stdout}")
    return base / "site", base / "work", done.stdout + done.stderr


def pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.html") if "_static" not in p.parts)


def local_target(page: Path, folder: Path, ref: str) -> tuple[Path, str] | None:
    """A local href/src as (file, fragment); None for a link out, mail, javascript: or data: URL."""
    if NETWORK.match(ref) or re.match(r"^[a-z][a-z0-9+.-]*:", ref, re.I):
        return None
    parts = urlsplit(ref)
    path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    if path.is_dir():
        path = path / "index.html"
    return path, parts.fragment


@pytest.mark.slow
@pytest.mark.notebooks
def test_one_page_per_notebook_with_its_pictures_and_a_binder_link(site):
    folder, _, _ = site
    assert (folder / "index.html").is_file()
    sphinx_said = [line for line in site[2].splitlines() if re.search(r"(WARNING|ERROR|CRITICAL): ", line)]
    assert not sphinx_said, "\n".join(sphinx_said[:20])  # no broken reference, no unreadable page or formula
    for name in COURSE:
        page = folder / "notebooks" / f"{name}.html"
        assert page.is_file(), f"no page for {name}"
        parsed = Page(page)
        text = page.read_text(encoding="utf-8")
        binder = f"https://mybinder.org/v2/gh/cfcam/cfcam/HEAD?urlpath=lab/tree/notebooks/{name}.ipynb"
        assert f'href="{binder}"' in text.replace("&amp;", "&"), f"{name}: no Binder link"
        images = [a["src"] for t, a in parsed.tags if t == "img" and "_images/" in a.get("src", "")]
        if name != "00_index":  # every lesson draws figures; the index page is text
            assert images, f"{name}: no figure on the page"
        for src in images:
            assert (page.parent / src).resolve().is_file(), f"{name}: missing image {src}"
        assert "Traceback" not in text, f"{name}: an error in the executed notebook"
    for name in EXPLORERS:  # each explorer as a still: a picture, its note, no dead widget
        text = (folder / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert "cfcam-still-note" in text and "A still of the interactive explorer" in text, name
        assert "make lab" in text and "widget-view" not in text and "jupyter-widgets" not in text, name
    for name in ("01_hooks_and_gradcam", "08_a_model_that_cheats"):  # the formulas, as MathML
        assert "<math" in (folder / "notebooks" / f"{name}.html").read_text(encoding="utf-8"), name


@pytest.mark.slow
@pytest.mark.notebooks
def test_readme_cheatsheet_and_docs_are_pages_in_the_course_order(site):
    folder, _, _ = site
    site_pages = Site(ROOT)
    for name in site_pages.reference():
        assert (folder / "docs" / f"{name}.html").is_file(), name
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert "cfcam: CF-CAM, taught step by step" in index and "_images/demo.png" in index
    nav = re.findall(r'toctree-l1[^>]*><a class="reference internal" href="([^"]+)\.html"', index)
    expected = [f"notebooks/{n}" for n in COURSE] + [f"docs/{n}" for n in site_pages.reference()]
    assert nav == expected, "the navigation: the course in order, then the cheat sheet and the docs"


@pytest.mark.slow
@pytest.mark.notebooks
def test_every_local_link_anchor_and_image_resolves(site):
    folder, _, _ = site
    broken, parsed = [], {}
    for page in pages(folder):
        for tag, attrs in Page(page).tags:
            for key in ("href", "src"):
                ref = attrs.get(key)
                if not ref or (tag == "a" and key == "src"):
                    continue
                target = local_target(page, folder, ref)
                if target is None:
                    continue
                path, fragment = target
                where = f"{page.relative_to(folder)}: {tag} {key}={ref}"
                if not path.is_file():
                    broken.append(where)
                elif fragment and path.suffix == ".html":
                    if path not in parsed:
                        parsed[path] = Page(path).ids
                    if unquote(fragment) not in parsed[path]:
                        broken.append(where + " (no such anchor)")
    assert not broken, "\n".join(broken[:30])


@pytest.mark.slow
@pytest.mark.notebooks
def test_nothing_is_loaded_from_the_network(site):
    """Scripts, styles, fonts, images and frames are local; links out (<a href>) are fine."""
    folder, _, _ = site
    found = []
    for page in pages(folder):
        parsed = Page(page)
        for tag, attrs in parsed.tags:
            refs = [attrs.get("src")] + ([attrs.get("href")] if tag == "link" else [])
            refs += [attrs.get("data")] if tag == "object" else []
            found += [f"{page.relative_to(folder)}: <{tag}> {r}" for r in refs if r and NETWORK.match(r)]
        for style in parsed.styles:
            found += [f"{page.relative_to(folder)}: style {u}" for u in CSS_URL.findall(style)]
    for css in folder.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        found += [f"{css.relative_to(folder)}: {u}" for u in CSS_URL.findall(text) + CSS_IMPORT.findall(text)]
    assert not found, "\n".join(map(str, found[:30]))
    assert not (folder / "_static" / "MathJax.js").exists()


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_second_build_executes_nothing(site):
    folder, work, _ = site
    again = build(folder, work)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"executed 0 notebook(s), {len(COURSE)} unchanged" in again.stdout, again.stdout
    assert (folder / "notebooks" / "04_composition.html").is_file()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.browser
def test_every_page_loads_in_chromium_without_errors_or_network(site):
    require_chromium()
    from playwright.sync_api import sync_playwright

    folder, _, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems, visited = [], 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
            try:
                context = browser.new_context(viewport={"width": 1366, "height": 768})

                def route(r):  # anything not from the local server is refused, and counted
                    if r.request.url.startswith(base):
                        r.continue_()
                    else:
                        problems.append(f"network request: {r.request.url}")
                        r.abort()

                context.route("**/*", route)
                page = context.new_page()
                page.set_default_timeout(60_000)
                current = {"url": ""}
                page.on("console", lambda m: m.type == "error" and problems.append(
                    f"{current['url']}: console error: {m.text}"))
                page.on("pageerror", lambda e: problems.append(f"{current['url']}: page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"{current['url']}: failed: {r.url}"))
                page.on("response", lambda r: r.status >= 400 and problems.append(
                    f"{current['url']}: HTTP {r.status} {r.url}"))
                for html_file in pages(folder):
                    current["url"] = html_file.relative_to(folder).as_posix()
                    page.goto(base + current["url"], wait_until="load", timeout=120_000)
                    visited += 1
                    if html_file.parent.name == "notebooks":  # the figures were decoded, not only referenced
                        broken = page.evaluate("() => [...document.images].filter(i => i.complete && "
                                               "i.naturalWidth === 0).map(i => i.src)")
                        problems += [f"{current['url']}: image not shown: {s}" for s in broken]
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert visited >= len(COURSE) + len(Site(ROOT).reference()) + 1
    assert not problems, "\n".join(problems[:30])
