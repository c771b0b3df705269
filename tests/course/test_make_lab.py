"""`make lab` is the learner's path: it installs cfcam with the notebooks extra only (no test tools, no
Quantus), marks that with its own stamp, and starts JupyterLab on notebook 00. Checked with a stand-in
python that records what .ci/install asks of it (no network, no real install)."""

import os
import stat
import subprocess

from conftest import ROOT


def fake_venv(tmp_path):
    """A venv folder whose bin/python logs its arguments instead of running."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls.log'}\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return venv


def test_the_lab_install_takes_the_notebooks_extra_only(tmp_path):
    venv = fake_venv(tmp_path)
    env = dict(os.environ, CFCAM_EXTRAS="notebooks", CFCAM_STAMP=".lab-stamp")
    subprocess.run([str(ROOT / ".ci" / "install"), str(venv), "python3"], env=env, check=True, timeout=60)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    installs = [c for c in calls if "install" in c and "--upgrade pip" not in c]
    assert installs == ["-m pip install --quiet -e .[notebooks]"], calls
    assert (venv / ".lab-stamp").exists() and not (venv / ".installed-stamp").exists()


def test_the_developer_install_is_unchanged(tmp_path):
    venv = fake_venv(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("CFCAM_EXTRAS", "CFCAM_STAMP")}
    subprocess.run([str(ROOT / ".ci" / "install"), str(venv), "python3"], env=env, check=True, timeout=60)
    calls = (tmp_path / "calls.log").read_text()
    assert "-e .[notebooks,test,classroom,grading,book]" in calls and "--no-deps quantus==0.6.*" in calls
    assert (venv / ".installed-stamp").exists()


def test_make_lab_uses_its_own_stamp_and_opens_notebook_00():
    plan = subprocess.run(["make", "-n", "-B", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True).stdout
    assert "CFCAM_EXTRAS=notebooks CFCAM_STAMP=.lab-stamp .ci/install" in plan
    assert "jupyter lab" in plan and "notebooks/00_index.ipynb" in plan
    assert "[notebooks,test]" not in plan
