"""Installs that work everywhere: pyproject.toml, environment.yml (Binder), postBuild, the sdist, CI, Python 3.10.

The slow checks build a real sdist and run tests from it unpacked, and run postBuild into a throwaway venv.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (the test extra installs it there)
    import tomli as tomllib

from conftest import ROOT

# pip name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base"}
# installed from PyPI by environment.yml's `- pip:` section (conda-forge's grad-cam pulls the GUI OpenCV)
FROM_PYPI = {"grad-cam", "opencv-python-headless"}
OLDEST_PYTHON = (3, 10)
BINDER_EXTRAS = ("notebooks", "classroom")  # what Binder installs from environment.yml besides the core


def requirement(spec: str) -> tuple[str, str | None]:
    """``(name, lowest version or None)`` of a requirement such as ``torch>=2.13`` or ``python=3.11``."""
    spec = spec.split("#")[0].split(";")[0].strip()
    name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower()
    low = re.search(r">=\s*([0-9][0-9.]*)", spec)
    return name, low.group(1) if low else None


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pip_requirements() -> dict[str, str | None]:
    """The dependencies plus the ``notebooks`` and ``classroom`` extras: the packages Binder must have (the
    notebooks, and the explorer at ``voila/render/...``), by conda-forge name."""
    project = pyproject()["project"]
    specs = project["dependencies"] + [s for extra in BINDER_EXTRAS for s in project["optional-dependencies"][extra]]
    return {CONDA_NAMES.get(n, n): v for n, v in map(requirement, specs)}


def environment_yml() -> tuple[dict[str, str | None], dict[str, str | None]]:
    """``(conda packages, pip packages)`` of environment.yml, each ``{name: lowest version or None}``."""
    conda: dict[str, str | None] = {}
    pip: dict[str, str | None] = {}
    pip_indent = None  # the indentation of the `- pip:` line while inside its list
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        m = re.match(r"(\s*)-\s*(\S.*)$", line.split("#")[0].rstrip())
        if not m:
            continue
        indent, item = len(m[1]), m[2]
        if item == "pip:":
            pip_indent = indent
            continue
        if pip_indent is not None and indent <= pip_indent:
            pip_indent = None
        name, low = requirement(item)
        (pip if pip_indent is not None else conda)[name] = low
    return conda, pip


def test_environment_yml_lists_the_same_packages_with_the_same_lowest_versions():
    conda, pip = environment_yml()
    conda.pop("python")
    conda.pop("pip")
    assert set(pip) == FROM_PYPI and not set(conda) & set(pip)
    assert {**conda, **pip} == pip_requirements()  # names *and* lowest versions
    assert pip_requirements()["torchvision"] == "0.28"  # conda-forge's newest; pip picks newer where it can


def test_environment_yml_floors_exist_on_conda_forge():
    """The newest conda-forge releases, read from the feedstocks' recipes (CHANGELOG.md, 0.2.0): a floor above
    them makes Binder's environment unsolvable."""
    conda_forge_newest = {"pytorch-cpu": "2.13.0", "torchvision": "0.28.0", "grad-cam": "1.5.5"}
    conda, pip = environment_yml()
    for name, newest in conda_forge_newest.items():
        if name in conda:
            assert version_key(conda[name]) <= version_key(newest), (name, conda[name], newest)
    assert version_key(pip["grad-cam"]) > version_key(conda_forge_newest["grad-cam"])  # hence from PyPI


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_environment_yml_pins_a_supported_python_and_one_headless_opencv():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    pinned = re.search(r"-\s*python=(\d+)\.(\d+)", text)
    low = re.fullmatch(r">=(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert pinned and low and (int(pinned[1]), int(pinned[2])) >= (int(low[1]), int(low[2]))
    conda, pip = environment_yml()
    assert "opencv-python-headless" in pip  # one cv2, the headless one, from PyPI ...
    assert not {"opencv", "py-opencv", "libopencv"} & set(conda)  # ... and no conda OpenCV beside it


def test_environment_yml_has_no_local_references():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "conda-forge" in text
    assert not re.search(r"-e |file:|\./|\.\./|/work/", text)


def test_code_and_tests_run_on_the_oldest_supported_python():
    """No syntax newer than 3.10, and no 3.11-only module imported without a fallback."""
    assert pyproject()["project"]["requires-python"] == ">={}.{}".format(*OLDEST_PYTHON)
    for path in [*ROOT.glob("cfcam/**/*.py"), *ROOT.glob("tests/**/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=OLDEST_PYTHON)
        guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for n in ast.walk(t)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
                assert id(node) in guarded, f"{path}: import tomllib without a fallback for Python 3.10"
    test_extra = pyproject()["project"]["optional-dependencies"]["test"]
    assert any(s.startswith("tomli") and "python_version < '3.11'" in s for s in test_extra)


def test_make_test_pythons_covers_the_oldest_and_newest_python():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pythons = re.search(r"^PYTHONS \?= (.+)$", makefile, re.M).group(1).split()
    assert pythons[0] == "{}.{}".format(*OLDEST_PYTHON) and "3.13" in pythons
    assert re.search(r"^test-pythons:", makefile, re.M) and (ROOT / ".ci" / "test-python").stat().st_mode & 0o111


def test_ci_looks_for_chromium_where_the_browser_test_does():
    browser_test = (ROOT / "tests" / "course" / "test_browser.py").read_text()
    default = re.search(r'CFCAM_CHROMIUM", "([^"]+)"', browser_test).group(1)
    assert f'"${{CFCAM_CHROMIUM:-{default}}}"' in (ROOT / ".ci" / "run").read_text()


def test_make_strip_has_its_tool(tmp_path):
    """``make strip`` runs nbstripout, which an extra that ``make`` installs must bring (a no-op here)."""
    assert "nbstripout" in " ".join(pyproject()["project"]["optional-dependencies"]["test"])
    notebook = tmp_path / "00_index.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_index.ipynb", notebook)
    subprocess.run([sys.executable, "-m", "nbstripout", str(notebook)], check=True, timeout=300)
    assert notebook.read_bytes() == (ROOT / "notebooks" / "00_index.ipynb").read_bytes()


# -- slow: a real sdist, a real postBuild ------------------------------------------------------------------

def tracked_copy(dest: Path) -> Path:
    """The files git tracks (plus new ones not ignored), copied to ``dest``: a clean source tree."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, listed):
        src = ROOT / os.fsdecode(rel)
        if src.is_file():
            (dest / os.fsdecode(rel)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(rel))
    return dest


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    if not (ROOT / ".git").exists():
        pytest.skip("building the sdist needs the git checkout (this may be the unpacked sdist itself)")
    tree = tracked_copy(tmp_path_factory.mktemp("tree"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"],
                   cwd=tree, check=True, capture_output=True, timeout=600)
    (archive,) = dist.glob("cfcam-*.tar.gz")
    return archive


@pytest.mark.slow
def test_sdist_ships_what_its_tests_need(sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {"tests/conftest.py", "tests/published_oracle.py", "testimgs/manifest.csv", "environment.yml",
              "postBuild", "Makefile", ".ci/run", "notebooks/00_index.ipynb", "cfcam/data/demo_model.pt",
              "explorer/cfcam_explorer.ipynb", "explorer/serve.py", "explorer/jupyter/voila/templates/cfcam/conf.json",
              "explorer/jupyter/voila/templates/cfcam/index.html.j2",
              "cfcam/py.typed", "CHANGELOG.md", "CITATION.cff", ".ci/install", ".ci/lowest-constraints"}
    assert needed <= names, needed - names
    assert {f"tests/fixtures/{p.name}" for p in (ROOT / "tests" / "fixtures").iterdir()} <= names
    assert {f"testimgs/{p.name}" for p in (ROOT / "testimgs").glob("*.png")} <= names
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")} <= names


@pytest.mark.slow
def test_the_wheel_ships_py_typed_and_the_package_page(tmp_path):
    """What pip installs and PyPI shows: the typing marker, the version, classifiers and links, no tests."""
    if not (ROOT / ".git").exists():
        pytest.skip("building the wheel needs the git checkout")
    tree = tracked_copy(tmp_path / "tree")
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta; build_meta.build_wheel('../dist')"],
                   cwd=tree, check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("cfcam-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(info).decode()
    assert "cfcam/py.typed" in names and "cfcam/data/demo_model.pt" in names
    assert not any(n.startswith("tests/") for n in names)
    assert f"Version: {pyproject()['project']['version']}" in meta and "License-Expression: MIT" in meta
    assert "Classifier: Programming Language :: Python :: 3.13" in meta and "Classifier: License ::" not in meta
    assert "Project-URL: Changelog, https://github.com/cfcam/cfcam/blob/main/CHANGELOG.md" in meta


@pytest.mark.slow
def test_tests_run_from_the_unpacked_sdist(sdist, tmp_path):
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp_path)
    (unpacked,) = tmp_path.iterdir()
    where = subprocess.run([sys.executable, "-c", "import cfcam; print(cfcam.__file__)"], cwd=unpacked,
                           capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(unpacked)  # the sdist's own code is what gets tested
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/core/test_parity.py",
                           "tests/world/test_examples.py", "tests/images/test_imageio.py", "-k", "not sigkill"],
                          cwd=unpacked, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\d+ passed", proc.stdout) and "error" not in proc.stdout.splitlines()[-1]
    collected = subprocess.run([sys.executable, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider"],
                               cwd=unpacked, capture_output=True, text=True, timeout=900)
    assert collected.returncode == 0, collected.stdout[-3000:]  # every test module imports from the sdist


@pytest.mark.slow
def test_postbuild_installs_cfcam_and_leaves_no_build_artefacts(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    tree = tracked_copy(tmp_path / "repo")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "env")], check=True, timeout=600)
    env = {**os.environ, "PATH": f"{tmp_path / 'env' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(["bash", "postBuild"], cwd=tree, env=env, check=True, capture_output=True, timeout=900)
    shown = subprocess.run([str(tmp_path / "env" / "bin" / "python"), "-m", "pip", "show", "cfcam"],
                           capture_output=True, text=True, timeout=300)
    assert "Name: cfcam" in shown.stdout
    assert not list(tree.glob("*.egg-info")) and not (tree / "build").exists()


def test_the_shipped_evaluation_table_is_the_committed_one():
    """Notebook 06 reads the full table from the package (it must run outside the repository too); it must be
    the one `make evaluate` committed under docs/evaluation/."""
    shipped = ROOT / "cfcam" / "data" / "evaluation_summary.csv"
    assert shipped.read_bytes() == (ROOT / "docs" / "evaluation" / "summary.csv").read_bytes()
