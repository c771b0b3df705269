"""environment.yml (Binder) and pyproject.toml name the same packages."""

import re
import tomllib

from conftest import ROOT

# pip name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch-cpu", "opencv-python-headless": "py-opencv", "matplotlib": "matplotlib-base"}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec.strip(), maxsplit=1)[0].lower()


def conda_packages() -> set[str]:
    names = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"\s*-\s*([A-Za-z0-9_.\-]+)", line.split("#")[0])
        if m and not line.strip().endswith(":"):
            names.add(m.group(1).lower())
    return names - {"python", "pip", "conda-forge"}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {requirement_name(s) for s in project["dependencies"] + project["optional-dependencies"]["notebooks"]}
    expected = {CONDA_NAMES.get(n, n) for n in pip_names}
    assert conda_packages() == expected


def test_environment_yml_has_no_local_references():
    text = (ROOT / "environment.yml").read_text()
    assert "conda-forge" in text
    assert not re.search(r"-e |file:|\./|\.\./|/work/", text)
