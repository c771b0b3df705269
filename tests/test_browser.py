"""A real browser: JupyterLab on localhost, the composition notebook run in headless Chromium (Debian's
package, driven by Playwright), a dashboard slider moved with the keyboard, the heatmap image changed.

Chromium missing: the test skips locally, but fails when CFCAM_REQUIRE_BROWSER=1 (CI sets it).
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = os.environ.get("CFCAM_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = "04_composition.ipynb"

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


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab serving a copy of notebooks/ (so nothing in the repository is touched)."""
    root = tmp_path / "notebooks"
    shutil.copytree(Path(os.environ.get("CFCAM_NOTEBOOKS_DIR", ROOT / "notebooks")), root)
    assert (root / NOTEBOOK).exists(), f"notebooks/{NOTEBOOK} is missing"
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_DATA_DIR=os.environ.get("JUPYTER_DATA_DIR", str(Path(sys.prefix) / "share" / "jupyter")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                log = proc.stdout.read().decode(errors="replace")[-3000:]
                raise RuntimeError("JupyterLab exited: " + log) from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("JupyterLab did not start within 90 s")
    try:
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_composition_notebook_slider_changes_image(jupyterlab, tmp_path):
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
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-NotebookPanel", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   ".jp-Toolbar-kernelStatus", timeout=120_000)
            time.sleep(2)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=30_000)
            explorer = page.locator(".cfcam-explorer").filter(has_text="eps percentile").last
            explorer.wait_for(timeout=240_000)
            image = explorer.locator(".cfcam-explorer-image")
            image.wait_for(timeout=60_000)
            deadline = time.time() + 60
            while not (image.get_attribute("src") or "").startswith("blob:") and time.time() < deadline:
                time.sleep(0.5)
            before = image.get_attribute("src")
            page.screenshot(path=str(tmp_path / "before.png"))
            handle = explorer.locator(".widget-slider", has_text="eps percentile").locator(".noUi-handle")
            handle.scroll_into_view_if_needed()
            handle.focus()
            for _ in range(10):
                page.keyboard.press("ArrowRight")
            deadline = time.time() + 60
            after = before
            while after == before and time.time() < deadline:
                time.sleep(0.5)
                after = image.get_attribute("src")
            page.screenshot(path=str(tmp_path / "after.png"))
            shot_dir = os.environ.get("CFCAM_SCREENSHOTS")
            if shot_dir:
                for name in ("before.png", "after.png"):
                    shutil.copy(tmp_path / name, Path(shot_dir) / name)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, tracebacks[:1]
            assert before and after and after != before, "the heatmap image did not change after the slider moved"
        finally:
            browser.close()
