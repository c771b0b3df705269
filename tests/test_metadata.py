"""The package page and its citation: one version number, the changelog, CITATION.cff, py.typed, the classifiers
and links, and floors that `make test-lowest` can pin (pyproject.toml, CHANGELOG.md, CITATION.cff, .ci/)."""

import json
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml
from test_packaging import pyproject

from conftest import FIXTURES, ROOT

CFF_SCHEMA = FIXTURES / "cff-schema-1.2.0.json"  # the Citation File Format 1.2.0 schema, as cffconvert ships it


def project() -> dict:
    return pyproject()["project"]


# -- one version --------------------------------------------------------------------------------------------

def test_the_version_lives_in_pyproject_and_the_package_reads_it():
    import cfcam
    from cfcam import _version

    assert cfcam.__version__ == project()["version"]
    assert not re.search(r"^__version__\s*=\s*['\"]", (ROOT / "cfcam" / "__init__.py").read_text(), re.M)
    out = subprocess.run([sys.executable, "-m", "cfcam", "--version"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert out.strip() == f"cfcam {project()['version']}"
    assert _version.source_tree_version(ROOT / "cfcam") == project()["version"]


def test_the_version_comes_from_metadata_outside_a_checkout(tmp_path, monkeypatch):
    """A folder with no cfcam pyproject.toml beside it: the installed metadata's number, else ``0+unknown``."""
    from importlib import metadata

    from cfcam import _version

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "9.9"\n')
    assert _version.source_tree_version(tmp_path / "cfcam") is None  # someone else's pyproject.toml
    assert _version.source_tree_version(tmp_path / "nowhere" / "cfcam") is None
    monkeypatch.setattr(_version, "__file__", str(tmp_path / "cfcam" / "_version.py"))
    monkeypatch.setattr(metadata, "version", lambda name: "1.2.3" if name == "cfcam" else None)
    assert _version.find_version() == "1.2.3"

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert _version.find_version() == _version.UNKNOWN


def test_the_changelog_starts_with_this_release():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\](?: - (\d{4}-\d{2}-\d{2}))?", text, re.M)
    assert releases[0][0] == project()["version"] and releases[0][1], "CHANGELOG.md: the newest entry, dated"
    assert "## [Unreleased]" in text
    assert re.search(rf"^\[{re.escape(project()['version'])}\]: https://", text, re.M)  # its link


# -- the citation -------------------------------------------------------------------------------------------

def cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def cff_errors(data: dict) -> list[str]:
    schema = json.loads(CFF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_citation_cff_is_valid():
    assert cff_errors(cff()) == []


def test_the_citation_check_can_fail():
    broken = cff()
    del broken["authors"]
    broken["date-released"] = "06/12/2026"
    errors = cff_errors(broken)
    assert any("authors" in e for e in errors) and any("date-released" in e for e in errors)


def test_citation_cites_this_release_and_the_paper():
    data = cff()
    assert data["cff-version"] == "1.2.0" and data["type"] == "software"
    assert str(data["version"]) == project()["version"] and data["license"] == project()["license"]
    assert data["authors"] == [{"name": a["name"]} for a in project()["authors"]]
    (paper,) = data["references"]
    assert paper["title"].startswith("CF-CAM: Cluster Filter Class Activation Mapping")
    assert [a["family-names"] for a in paper["authors"]] == ["He", "Pan", "Yao"] and paper["year"] == 2025
    assert "2504.00060" in paper["doi"] and "2504.00060" in paper["url"]


# -- the package page ---------------------------------------------------------------------------------------

def test_classifiers_links_and_typing_marker():
    meta = project()
    classifiers = meta["classifiers"]
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert {"Framework :: Jupyter", "Topic :: Scientific/Engineering :: Artificial Intelligence",
            "Intended Audience :: Education", "Intended Audience :: Science/Research"} <= set(classifiers)
    # setuptools>=77 refuses a license classifier beside an SPDX `license` expression
    assert meta["license"] == "MIT" and not any(c.startswith("License ::") for c in classifiers)
    assert {"Source", "Documentation", "Issues", "Changelog"} <= set(meta["urls"])
    assert all(url.startswith("https://github.com/cfcam/cfcam") for url in meta["urls"].values())
    assert meta["authors"] == [{"name": "cfcam contributors"}] and meta["keywords"]
    assert (ROOT / "cfcam" / "py.typed").is_file()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["cfcam"]


def test_no_extra_reinstalls_a_core_dependency():
    meta = project()
    core = {re.split(r"[<>=;\[ ]", s, maxsplit=1)[0] for s in meta["dependencies"]}
    assert "bench" not in meta["optional-dependencies"]
    assert "grad-cam" in core
    installs = (ROOT / "Makefile").read_text() + (ROOT / ".ci" / "install").read_text()
    assert not re.search(r"pip install.*grad-cam", installs)


# -- the floors, and the one install recipe -----------------------------------------------------------------

def lowest_constraints() -> dict[str, str]:
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "lowest-constraints")], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    return dict(line.split(";")[0].split("==") for line in out.splitlines())


def test_make_test_lowest_pins_every_direct_dependency_to_its_floor():
    pins = lowest_constraints()
    meta = project()
    specs = meta["dependencies"] + [s for extra in ("notebooks", "test") for s in meta["optional-dependencies"][extra]]
    for spec in specs:
        name, low = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9.]+)", spec.split(";")[0].strip()).groups()
        assert tuple(map(int, pins[name.lower()].split("."))) >= tuple(map(int, low.split("."))), spec
    assert pins["quantus"] == "0.6.0"
    assert pins["tqdm"] == "4.62.3"  # the core's floor is lower; Quantus's own wins
    assert pins["torch"] == "2.13" and pins["torchvision"] == "0.28" and pins["numpy"] == "2.0"


@pytest.mark.parametrize("floor", ["numpy>=2.0", "grad-cam>=1.5.7", "torch>=2.13", "torchvision>=0.28"])
def test_the_known_floors(floor):
    """numpy: np.bitwise_count and np.trapezoid; grad-cam: the first asking for the headless OpenCV; torch:
    what torchvision 0.28.0 requires (==2.13.0)."""
    assert floor in project()["dependencies"]


def test_make_test_and_the_other_pythons_install_the_same_way():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = (ROOT / ".ci" / "install").read_text(encoding="utf-8")
    assert re.search(r"^\t\.ci/install \$\(VENV\) \$\(PYTHON\)$", makefile, re.M)
    assert re.search(r"^\s*\.ci/install \"\$venv\" \"\$python\"$", (ROOT / ".ci" / "test-python").read_text(), re.M)
    assert '-m pip install --quiet --no-deps "$QUANTUS"' in recipe and 'QUANTUS="quantus==0.6.*"' in recipe
    assert re.search(r"^test-lowest:", makefile, re.M) and "lowest-constraints" in makefile
    assert "pip install" not in makefile  # every install goes through the recipe
    for script in ("install", "test-python", "lowest-constraints", "dist-check"):
        assert (ROOT / ".ci" / script).stat().st_mode & 0o111, script
