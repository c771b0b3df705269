"""The tutorial notebooks: their shape (as committed) and a full run, top to bottom, offline on the CPU, from the
repository and from a copy of notebooks/ anywhere; Run All never replaces a learner's function, and no output
credits the learner for a solution; every link opens something wherever the notebooks are opened."""

import json
import re
import shutil
import time

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.notebooks

NOTEBOOK_DIR = ROOT / "notebooks"
ORDER = [
    "00_index",
    "01_hooks_and_gradcam",
    "02_channel_clustering",
    "03_gradient_filtering",
    "04_composition",
    "05_your_own_images_and_models",
    "06_evaluation",
    "07_capstone",
    "08_a_model_that_cheats",
]
MINE = ORDER  # the notebooks this suite requires
PRESENT = [n for n in ORDER if (ROOT / "notebooks" / f"{n}.ipynb").exists()]
WITH_EXERCISES = ORDER[1:]  # every notebook after 00 has a stub, its check, a hidden solution and a chooser
# Paths a run may legitimately touch (caches, byte code); anything else new in the repository is a leak.
IGNORED_PARTS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}


def load(name):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def solution_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Solution")]


def learner_functions(nb):
    """The names of the stubs the learner writes (functions whose body raises NotImplementedError)."""
    return [m.group(1) for c in nb.cells if c.cell_type == "code" and not c.source.startswith("# Solution")
            for m in re.finditer(r"^def (\w+)\(.*\n(?:\s+\"\"\".*\n)?\s+raise NotImplementedError", c.source, re.M)]


def repository_files():
    files = set()
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if path.is_file() and not (IGNORED_PARTS & set(rel.parts)) and not rel.parts[0].endswith(".egg-info"):
            files.add(rel.as_posix())
    return files


def test_every_notebook_is_there():
    found = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert found == PRESENT and set(MINE) <= set(found)


def test_no_notebook_needs_the_repository():
    """The examples come from cfcam.load_examples(): no repo_folder, testimgs/ or manifest lookups."""
    for name in MINE:
        code = "\n".join(c.source for c in load(name).cells if c.cell_type == "code")
        assert "repo_folder" not in code and "manifest.csv" not in code and '"testimgs"' not in code, name
        if name not in ("00_index", "06_evaluation", "08_a_model_that_cheats"):  # 06, 08 draw fresh images
            assert "cfcam.load_examples()" in code, name


@pytest.mark.parametrize("name", MINE)
def test_key_takeaways(name):
    text = "\n".join(c.source for c in load(name).cells if c.cell_type == "markdown")
    assert "## Key takeaways" in text


@pytest.mark.parametrize("name", PRESENT)
def test_committed_without_outputs_and_with_the_python3_kernel(name):
    nb = load(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: stored outputs in a cell starting {cell.source[:40]!r}"
            assert cell.execution_count is None


@pytest.mark.parametrize("name", MINE)
def test_starts_with_title_objectives_prerequisites_and_time(name):
    first = load(name).cells[0]
    assert first.cell_type == "markdown"
    text = first.source
    assert text.startswith("# ")
    assert re.search(r"in this notebook you will|objectives", text, re.I)
    assert "Prerequisites" in text
    assert re.search(r"\*\*Time:\*\* about \d+ minutes", text)


@pytest.mark.parametrize("name", MINE)
def test_ends_with_questions_answers_and_a_link_to_the_next_notebook(name):
    last = load(name).cells[-1]
    assert last.cell_type == "markdown"
    assert "Check your understanding" in last.source
    assert "<details>" in last.source and "</details>" in last.source
    following = ORDER[(ORDER.index(name) + 1) % len(ORDER)]
    assert f"]({following}.ipynb)" in last.source


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_exercises_have_stubs_checks_and_hidden_solutions(name):
    nb = load(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    solutions = solution_cells(nb)
    assert len(solutions) >= 1
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True
        assert "def solution_" in cell.source
        assert not re.search(r"^def (?!solution_)", cell.source, re.M), "a solution defines only solution_... names"
    stubs = learner_functions(nb)
    assert len(stubs) >= (2 if name in ORDER[1:5] + ["06_evaluation"] else 1)
    for fn in stubs:
        chooser = [c for c in code if re.search(rf"^use_{fn} = checks\.yours_or_solution\({fn}, solution_{fn}",
                                                c.source, re.M)]
        assert len(chooser) == 1, f"{fn}: one cell picks yours or the solution"
        solution = next(c for c in solutions if f"def solution_{fn}(" in c.source)
        assert code.index(solution) < code.index(chooser[0])
    if name != "07_capstone":  # each stub is followed by its check, then the solution, then the chooser
        for stub_cell in [c for c in code if "raise NotImplementedError" in c.source and c not in solutions]:
            fn = re.search(r"def (\w+)\(", stub_cell.source).group(1)
            after = code[code.index(stub_cell) + 1:]
            assert after[0].source.strip().rstrip(";").endswith(f"({fn})"), f"{fn}: the check comes right after"
            assert after[1] in solutions and f"def solution_{fn}(" in after[1].source, f"{fn}: then its solution"
            assert after[2].source.startswith(f"use_{fn} = checks.yours_or_solution("), f"{fn}: then the chooser"


def test_08_scores_the_learners_energy_or_says_it_uses_the_solution():
    """08's section 5 scores the maps with the chosen function and names it; the package's version is the check."""
    nb = load("08_a_model_that_cheats")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "use_energy_in_mask = checks.yours_or_solution(energy_in_mask, solution_energy_in_mask)" in code
    assert "use_energy_in_mask(" in code and "use_energy_in_mask.__name__" in code


LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)|(?:href|src)\s*=\s*[\"']([^\"']+)[\"']")


def markdown_links(nb):
    return [a or b for c in nb.cells if c.cell_type == "markdown" for a, b in LINK_TARGET.findall(c.source)]


@pytest.mark.parametrize("name", MINE)
def test_every_link_opens_under_make_lab_binder_and_a_copy(name):
    """The server's root is notebooks/ under make lab, the repository on Binder, anything for a copy: a link is
    an absolute http(s) URL or a relative link to another notebook of notebooks/ or a file shipped next to them
    (the cheat sheet, which offline is the only copy a learner can open)."""
    links = markdown_links(load(name))
    assert links, f"{name}: no links found (the pattern is broken?)"
    for target in links:
        if re.match(r"https?://[^/\s]+\.[a-z]{2,}", target):
            continue
        path = target.split("#")[0]
        assert "/" not in path and path.endswith((".ipynb", ".md")) and (NOTEBOOK_DIR / path).is_file(), \
            f"{name}: the link {target!r} opens nothing outside the repository's layout"


def test_the_cheat_sheet_next_to_the_notebooks_is_the_one_in_docs():
    """notebooks/cheatsheet.md is what 00 links to (it opens under make lab, on Binder and in a copy of
    notebooks/, offline too); docs/cheatsheet.md is what the README links to: one text in both places."""
    assert (NOTEBOOK_DIR / "cheatsheet.md").read_text() == (ROOT / "docs" / "cheatsheet.md").read_text(), \
        "copy docs/cheatsheet.md to notebooks/cheatsheet.md"
    assert "](cheatsheet.md)" in "".join(c.source for c in load("00_index").cells if c.cell_type == "markdown")


def test_the_link_pattern_finds_relative_paths():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "[sheet](../docs/cheatsheet.md), [![b](https://x.org/b.svg)](https://y.org/a), <a href=\"table.md\">t</a>")])
    assert markdown_links(nb) == ["../docs/cheatsheet.md", "https://x.org/b.svg", "https://y.org/a", "table.md"]


@pytest.mark.parametrize("name", MINE)
def test_further_reading_with_absolute_links(name):
    cells = [c.source for c in load(name).cells if c.cell_type == "markdown"]
    text = "\n".join(cells)
    heading = re.search(r"^#+ Further reading\s*$", text, re.M)
    assert heading, f"{name}: no 'Further reading' heading"
    section = text[heading.end():]
    assert re.search(r"\]\(https://", section), f"{name}: the further reading has no link"
    assert "https://arxiv.org/abs/2504.00060" in text or name == "05_your_own_images_and_models"


def test_00_says_how_to_cite_cfcam():
    cells = [c.source for c in load("00_index").cells if c.cell_type == "markdown"]
    citing = [s for s in cells if re.search(r"^#+ .*Citing", s, re.M)]
    assert len(citing) == 1
    bib = re.search(r"```(?:bibtex)?\n(@article\{he2025cfcam,.*?)```", citing[0], re.S)
    assert bib and "arXiv:2504.00060" in bib.group(1) and "He, Hongjie and Pan, Xu and Yao, Yudong" in bib.group(1)
    assert bib.group(1).count("{") == bib.group(1).count("}")


def run_notebook(nb, cwd, timeout=900):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"failed:\n{err}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESENT)
def test_runs_top_to_bottom_without_error(name):
    nb = load(name)
    stubs = learner_functions(nb)
    if stubs:  # after Run All, every learner's function must still be the learner's stub
        nb.cells.append(nbformat.v4.new_code_cell(
            "untouched = []\n"
            f"for _fn in [{', '.join(stubs)}]:\n"
            "    try:\n        _fn(*[None] * _fn.__code__.co_argcount)\n"
            "    except NotImplementedError:\n        untouched.append(_fn.__name__)\n"
            "print('learner functions untouched:', sorted(untouched))"))
    before = repository_files()
    started = time.perf_counter()
    text = run_notebook(nb, NOTEBOOK_DIR)
    seconds = time.perf_counter() - started
    if name in WITH_EXERCISES:  # the unfinished stubs are reported, the solutions are used, nothing says Correct
        assert text.count("Not implemented yet:") == len(solution_cells(nb)) or name == "07_capstone"
        assert "Correct:" not in text, "Run All must not print Correct: for a solution under a stub"
        assert text.count("Using `solution_") == len(stubs) and "Using your" not in text
        assert f"learner functions untouched: {sorted(stubs)}" in text
    if name == "05_your_own_images_and_models":
        assert "skipped: offline" in text or "top classes:" in text
    if name == "07_capstone":  # with nothing filled in, the solution's assembly is what matched, and it says so
        assert "MATCH: `solution_my_cfcam` reproduces the package" in text and "your assembly" not in text
    if name == "08_a_model_that_cheats":  # the comparison of both models and the controls are printed
        assert "demo-shortcut" in text and "pointing_game_shortcut" in text
        assert "class-blind" in text and "energy by `solution_energy_in_mask`" in text
    new = repository_files() - before
    assert not new, f"{name} wrote into the repository: {sorted(new)}"
    print(json.dumps({"notebook": name, "seconds": round(seconds, 1)}))


@pytest.mark.slow
def test_runs_from_a_copy_outside_the_repository(tmp_path):
    """A copy of notebooks/ elsewhere (as a learner downloads it) runs: the images come from the package."""
    copy = tmp_path / "my_notebooks"
    shutil.copytree(NOTEBOOK_DIR, copy)
    nb = nbformat.read(copy / "01_hooks_and_gradcam.ipynb", as_version=4)
    text = run_notebook(nb, copy)
    assert "lesion_01.png" in text and "Using `solution_gradcam_weights`" in text


@pytest.mark.slow
def test_runs_with_a_non_editable_install(tmp_path, monkeypatch):
    """cfcam built as a wheel and installed into a folder of its own (no checkout behind it), notebooks copied
    elsewhere: the same example images, from the installed package, and the widgets see the same ones."""
    import subprocess
    import sys

    src = tmp_path / "src"
    shutil.copytree(ROOT / "cfcam", src / "cfcam", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("cfcam-*.whl"))
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    monkeypatch.setenv("PYTHONPATH", str(site))  # the kernel imports this copy, not the editable checkout

    copy = tmp_path / "elsewhere"
    shutil.copytree(NOTEBOOK_DIR, copy)
    nb = nbformat.read(copy / "02_channel_clustering.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import cfcam\nprint('cfcam from', cfcam.__file__)"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import numpy as np\n"
        "same = all(np.array_equal(np.asarray(e.image), session.image(k)) for k, e in enumerate(examples))\n"
        "print('widgets see the notebook images:', same)"))
    text = run_notebook(nb, copy)
    assert f"cfcam from {site}" in text
    assert "widgets see the notebook images: True" in text and "lesion_01.png" in text
