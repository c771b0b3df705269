"""A real browser: JupyterLab on localhost, a notebook with the dashboard run in headless Chromium (Debian's
package, driven by Playwright); the latency from a key press (or a dropdown choice) to the new image decoded in
the page is measured there, and asserted with generous bounds.

Targets (benchmarks/bench_widgets.py reports them): 250 ms for a parameter move, 600 ms for a new image or class.
The bounds here are ten times looser, so a busy CI machine never turns this red; the measured numbers are
printed and, with CFCAM_LATENCY_OUT=file.json, written for the benchmark.

Robustness (it used to time out at random on a busy machine): the notebook is a small one (the dashboard only,
not a whole tutorial notebook that took 80-95 s), the test waits on explicit readiness signals (the server's
/api/status, the kernel's execution state from the REST API, the explorer's own status line with its update
counter) instead of fixed sleeps, every wait has a generous timeout, and only the server start is retried.

Chromium missing: the test skips locally, but fails when CFCAM_REQUIRE_BROWSER=1 (CI sets it).
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = os.environ.get("CFCAM_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = "latency.ipynb"
PARAMETER_BOUND_S, NEW_IMAGE_BOUND_S = 2.5, 6.0  # generous; the targets are 0.25 s and 0.6 s
CELLS = [
    "import torch\ntorch.set_num_threads(1)",
    "from cfcam.teaching.widgets import dashboard\n\nboard = dashboard()\nboard",
]

pytestmark = pytest.mark.browser


def require_chromium():
    if Path(CHROMIUM).exists():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CFCAM_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; CFCAM_REQUIRE_BROWSER=1 makes this a failure")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.loads(reply.read().decode())


def start_lab(root: Path, tmp: Path, attempt: int, settings: dict | None = None):
    """JupyterLab on a free port; (process, url, token) once /api/status answers, else None. ``settings``:
    ``{"plugin id": {setting: value}}`` written as the user's settings first."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / f"cfg{attempt}"), JUPYTER_RUNTIME_DIR=str(tmp / f"rt{attempt}"),
               JUPYTER_DATA_DIR=os.environ.get("JUPYTER_DATA_DIR", str(Path(sys.prefix) / "share" / "jupyter")),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / f"settings{attempt}"))
    for plugin, values in (settings or {}).items():
        package, name = plugin.rsplit(":", 1)
        path = tmp / f"settings{attempt}" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    log = open(tmp / f"lab{attempt}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            get_json(f"{url}/api/status?token={token}")
            return proc, url, token
        except OSError:
            time.sleep(0.5)
    stop(proc)
    return None


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab serving a folder with one small notebook: the dashboard of notebook 04."""
    root = tmp_path / "notebooks"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, root / NOTEBOOK)
    for attempt in range(3):  # the server start is the one step retried (a port race, a slow first start)
        started = start_lab(root, tmp_path, attempt)
        if started:
            break
    else:
        logs = "\n".join((tmp_path / f"lab{a}.log").read_text(errors="replace")[-1500:] for a in range(3))
        raise RuntimeError("JupyterLab did not start in 3 attempts of 180 s:\n" + logs)
    proc, url, token = started
    try:
        yield url, token
    finally:
        stop(proc)


def wait_for_idle_kernel(url: str, token: str, timeout: float = 180.0, notebook: str = NOTEBOOK) -> None:
    """Until the notebook's kernel exists and reports 'idle' (REST API, no guessing from the page)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            sessions = get_json(f"{url}/api/sessions?token={token}")
            states = [s["kernel"]["execution_state"] for s in sessions if s.get("path", "").endswith(notebook)]
            if states and all(s == "idle" for s in states):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the kernel of {notebook} was not idle within {timeout:.0f} s")


# In the page: the time of the last key press or dropdown change, and the time the CF-CAM picture (the
# dashboard's last panel) was replaced and decoded, or the status line changed.
INSTRUMENT = """() => {
  const roots = document.querySelectorAll('.cfcam-explorer');
  const root = roots[roots.length - 1];
  const cf = window.__cf = {t0: null, image: null, status: null};
  const start = () => { cf.t0 = performance.now(); cf.image = null; cf.status = null; };
  document.addEventListener('keydown', start, true);
  document.addEventListener('change', start, true);
  new MutationObserver(records => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (r.type === 'attributes' && el.matches('img.cfcam-panel-image')) {
        const imgs = root.querySelectorAll('img.cfcam-panel-image');
        if (el === imgs[imgs.length - 1] && cf.t0 !== null) {
          el.decode().then(() => { cf.image = performance.now() - cf.t0; }).catch(() => {});
        }
      } else if (el && el.closest('.cfcam-explorer-status') && cf.t0 !== null) {
        cf.status = performance.now() - cf.t0;
      }
    }
  }).observe(root, {subtree: true, attributes: true, attributeFilter: ['src'], childList: true,
                    characterData: true});
}"""

COUNTER = """() => { const s = document.querySelectorAll('.cfcam-explorer .cfcam-update');
  return s.length ? Number(s[s.length - 1].dataset.n) : 0; }"""


def measure(page, act, timeout_ms: int = 120_000) -> dict:
    """Run ``act`` (a key press or a dropdown choice); wait for the explorer's next update; the latencies."""
    before = page.evaluate(COUNTER)
    act()
    page.wait_for_function(f"() => ({COUNTER})() > {before}", timeout=timeout_ms)
    # the status changes after the pictures; give a changed picture time to decode (it is usually done)
    try:
        page.wait_for_function("() => window.__cf.image !== null", timeout=3_000)
    except Exception:  # noqa: BLE001 - no picture change: a move that left the map as it was
        pass
    cf = page.evaluate("() => window.__cf")
    status = page.locator(".cfcam-explorer-status").last.inner_text()
    return {"image_s": None if cf["image"] is None else cf["image"] / 1000,
            "status_s": None if cf["status"] is None else cf["status"] / 1000,
            "unchanged": "map unchanged" in status, "kernel": status.split("(")[0].strip()}


def test_dashboard_latency_in_a_real_browser(jupyterlab, tmp_path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    url, token = jupyterlab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}", timeout=180_000)
            page.wait_for_selector(".jp-NotebookPanel", timeout=180_000)
            wait_for_idle_kernel(url, token)
            if page.locator(".jp-Dialog").count():  # e.g. a kernel chooser: accept the default
                page.keyboard.press("Enter")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            # ready: the explorer exists and has drawn once (its status line carries an update counter)
            page.wait_for_function(f"() => ({COUNTER})() >= 1", timeout=300_000)
            page.evaluate(INSTRUMENT)
            page.screenshot(path=str(tmp_path / "before.png"))

            explorer = page.locator(".cfcam-explorer").last
            slider = explorer.locator(".widget-slider", has_text="important fraction").locator(".noUi-handle")
            slider.scroll_into_view_if_needed()
            slider.focus()
            parameter = [measure(page, lambda: page.keyboard.press("ArrowRight")) for _ in range(5)]
            selects = explorer.locator("select")
            image_select, class_select = selects.nth(0), selects.nth(2)
            images = image_select.locator("option").all_inner_texts()
            new_image = [measure(page, lambda k=k: image_select.select_option(index=k)) for k in (1, 2, 6)]
            new_class = [measure(page, lambda k=k: class_select.select_option(index=k)) for k in (1, 2, 0)]
            page.screenshot(path=str(tmp_path / "after.png"))
            shot_dir = os.environ.get("CFCAM_SCREENSHOTS")
            if shot_dir:
                for name in ("before.png", "after.png"):
                    shutil.copy(tmp_path / name, Path(shot_dir) / name)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, tracebacks[:1]
        finally:
            browser.close()

    report = {"parameter": parameter, "new_image": new_image, "new_class": new_class, "images": len(images)}
    print(json.dumps(report, indent=1))
    if os.environ.get("CFCAM_LATENCY_OUT"):
        Path(os.environ["CFCAM_LATENCY_OUT"]).write_text(json.dumps(report, indent=1))
    changed = [m for m in parameter if m["image_s"] is not None]
    assert changed, "no slider step changed the CF-CAM picture"
    assert all(m["status_s"] is not None for m in parameter + new_image + new_class), "every move updates the status"
    assert max(m["image_s"] for m in changed) < PARAMETER_BOUND_S, parameter
    for m in new_image + new_class:
        assert max(m["image_s"] or 0, m["status_s"]) < NEW_IMAGE_BOUND_S, m
    assert all(m["image_s"] is not None for m in new_image), "a new image redraws the CF-CAM picture"


# -- a laptop's screen: 1366 x 768 ------------------------------------------------------------------------------

LAPTOP = {"width": 1366, "height": 768}
EXPLORER_MAX_PX = 640  # what JupyterLab leaves of a 768 px high window below its menu and toolbar
FIT = "fit.ipynb"


def notebook_cell(name: str, cell_id: str) -> str:
    """The source of one cell of a course notebook (the browser test runs the notebooks' own code)."""
    nb = nbformat.read(Path(__file__).resolve().parents[2] / "notebooks" / f"{name}.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def fit_cells() -> list[str]:
    """Every explorer as the notebooks open it, and 06's two tables by 06's own code (its small evaluation
    replaced by the same methods' rows of the shipped full table, so the test stays quick)."""
    small_table = notebook_cell("06_evaluation", "5")
    display_small = small_table[small_table.index("display(Markdown(breakable_header("):]
    return [
        "from cfcam.teaching.threads import use_one_thread\nuse_one_thread()\n"
        "from cfcam.teaching.widgets import Session, clustering_explorer, dashboard, filtering_explorer, "
        "hooks_explorer\nsession = Session()",
        "hooks_explorer(session, layer='layer4[-1]', target=1, channel=300)",
        "clustering_explorer(session, important_fraction=0.25)",
        "filtering_explorer(session, layer='layer4[-1]', filter='reference', spatial_sigma=5.0, range_sigma=0.1)",
        "dashboard(session, preset='reference', target=1)",
        "from cfcam.evaluation.report import markdown_table\nfrom cfcam.evaluation.summary import read_summary\n"
        "from cfcam.teaching.tables import breakable_header, claims_table, tables_by_category\n"
        "from IPython.display import Markdown, display\n" + notebook_cell("06_evaluation", "10"),
        "small = [r for r in full if r[0] in ('gradcam', 'cfcam-reference', 'random')]\n" + display_small,
    ]


@pytest.fixture
def lab_at_laptop_size(tmp_path):
    """JupyterLab serving a copy of what `make lab` serves: notebook 00 with the cheat sheet next to it, and a
    notebook with every explorer and 06's tables."""
    root = tmp_path / "notebooks"
    root.mkdir()
    source = Path(__file__).resolve().parents[2] / "notebooks"
    for name in ("00_index.ipynb", "cheatsheet.md"):
        shutil.copy(source / name, root / name)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in fit_cells()]
    nbformat.write(nb, root / FIT)
    # every cell in the page (JupyterLab 4 leaves cells out of view out of the page by default; the layout
    # measured is the same either way)
    settings = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}
    for attempt in range(3):
        started = start_lab(root, tmp_path, attempt, settings)
        if started:
            break
    else:
        raise RuntimeError("JupyterLab did not start in 3 attempts of 180 s")
    proc, url, token = started
    try:
        yield url, token
    finally:
        stop(proc)


# Per explorer: its height, the tops of its panels, and whether its status line lies inside it.
EXPLORER_BOXES = """() => [...document.querySelectorAll('.cfcam-explorer')].map(e => {
  const box = e.getBoundingClientRect();
  const status = e.querySelector('.cfcam-explorer-status').getBoundingClientRect();
  return {height: box.height, tops: [...e.querySelectorAll('.cfcam-panel')].map(p => p.getBoundingClientRect().top),
          statusInside: status.height > 0 && status.bottom <= box.bottom + 1, width: box.width};
})"""

# Per rendered table in the outputs: its width against the output area that holds it.
TABLE_WIDTHS = """() => [...document.querySelectorAll('.jp-OutputArea-output table')].map(t => {
  const area = t.closest('.jp-OutputArea-output');
  return {table: t.getBoundingClientRect().width, scroll: t.scrollWidth, area: area.clientWidth,
          areaScroll: area.scrollWidth, rows: t.querySelectorAll('tr').length};
})"""


READY = """() => document.querySelectorAll('.cfcam-explorer .cfcam-update').length >= 4
  && document.querySelectorAll('.jp-OutputArea-output table').length >= 3"""
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
FAILED = f"""() => [...document.querySelectorAll("{STDERR}")].some(e => /Traceback|Error/.test(e.innerText))"""


def launch(pw):
    return pw.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-quic"])


def test_explorers_tables_and_cheat_sheet_at_1366x768(lab_at_laptop_size, tmp_path):
    """At a laptop's 1366 x 768, in JupyterLab as it opens (file browser shown): every explorer is at most 640 px
    tall with its panels in one row and its status line showing; 06's tables fit the notebook's width; 00's
    link to the cheat sheet opens the copy shipped next to the notebooks (offline: no GitHub needed)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    url, token = lab_at_laptop_size
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport=LAPTOP)
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab/tree/{FIT}?token={token}", timeout=180_000)
            page.wait_for_selector(".jp-NotebookPanel", timeout=180_000)
            wait_for_idle_kernel(url, token, notebook=FIT)
            if page.locator(".jp-Dialog").count():
                page.keyboard.press("Enter")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                page.wait_for_function(f"() => ({READY})() || ({FAILED})()", timeout=300_000)
            finally:
                page.screenshot(path=str(tmp_path / "laptop.png"), full_page=True)
            errors = [t for t in page.locator(STDERR).all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not errors and page.evaluate(READY), f"the explorers and tables did not all appear: {errors[:2]}"
            wait_for_idle_kernel(url, token, notebook=FIT)
            page.wait_for_timeout(1000)  # the last layout pass after the pictures arrived
            explorers = page.evaluate(EXPLORER_BOXES)
            tables = page.evaluate(TABLE_WIDTHS)
            page.screenshot(path=str(tmp_path / "laptop.png"), full_page=True)
            print(json.dumps({"explorers": explorers, "tables": tables}, indent=1))

            page.goto(f"{url}/lab/tree/00_index.ipynb?token={token}", timeout=180_000)
            page.wait_for_selector(".jp-NotebookPanel", timeout=180_000)
            # JupyterLab rewrites a relative link's href to the server's URL of the file
            link = page.locator(".jp-RenderedMarkdown a[href*='cheatsheet.md']:not([href*='github.com'])").first
            link.scroll_into_view_if_needed()
            link.click()
            sheet = page.locator(".lm-TabBar-tab", has_text="cheatsheet.md")
            sheet.first.wait_for(timeout=60_000)
            sheet_file = Path(__file__).resolve().parents[2] / "notebooks" / "cheatsheet.md"
            first_line = sheet_file.read_text().splitlines()[0]
            page.locator(".jp-FileEditor, .jp-RenderedMarkdown", has_text=first_line.lstrip("# ")).first.wait_for(
                timeout=60_000)
            shot_dir = os.environ.get("CFCAM_SCREENSHOTS")
            if shot_dir:
                shutil.copy(tmp_path / "laptop.png", Path(shot_dir) / "laptop.png")
        finally:
            browser.close()

    assert len(explorers) == 4, explorers
    for e in explorers:
        assert e["height"] <= EXPLORER_MAX_PX, f"an explorer is {e['height']:.0f} px tall: {explorers}"
        assert max(e["tops"]) - min(e["tops"]) <= 2, f"an explorer's panels wrap to a second row: {explorers}"
        assert e["statusInside"], explorers
    assert len(tables) >= 3, tables
    for t in tables:
        assert t["scroll"] <= t["area"] + 1 and t["areaScroll"] <= t["area"] + 1, f"a table is wider: {tables}"
