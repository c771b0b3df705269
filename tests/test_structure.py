"""The package's shape: subpackages that do not import each other in a circle, short modules, no borrowed
private names. Read from the source with ``ast``, nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cfcam"
SUBPACKAGES = ("core", "methods", "evaluation", "images", "world", "cli", "teaching", "integrations")
MAX_LINES = 500


def module_name(path: Path) -> str:
    """``cfcam.world.train`` for ``cfcam/world/train.py``; ``cfcam.cli`` for ``cfcam/cli/__init__.py``."""
    parts = ("cfcam",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py" or (PACKAGE.joinpath(*name.split(".")[1:])).is_dir()


def package_of(name: str) -> str:
    """The package a module's relative imports start from."""
    return name if name in MODULES and MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def module_level_imports(tree: ast.Module):
    """The import statements run when the module is imported: not those in functions, nor under
    ``if TYPE_CHECKING:``."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def resolve(importer: str, node) -> list[str]:
    """The cfcam modules an import statement in module ``importer`` loads (the deepest existing module)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = package_of(importer)
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        targets = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name in ``base``
        targets = [t if t in MODULES else base for t in targets]
    found = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("cfcam"):
            found.append(target)
    return found


def node_of(module: str) -> str:
    """A subpackage's modules are one node (its name); a top-level module is a node of its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else module


def import_graph() -> dict[str, set[str]]:
    """Edges between nodes (subpackages, top-level modules) from module-level imports."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in module_level_imports(tree):
            for target in resolve(name, node):
                a, b = node_of(name), node_of(target)
                if a != b:
                    graph.setdefault(a, set()).add(b)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert "images" in graph["world"]  # world/synthetic.py: from ..images.writing import ...
    assert "core" in graph["methods"]
    assert "world" in graph["evaluation"]  # evaluation/model_card.py builds its sets in the demo world
    # and the finder finds a cycle where there is one
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_subpackages():
    found = cycles(import_graph())
    graph = import_graph()
    detail = {c: sorted(graph.get(c, set()) & set(cyc)) for cyc in found for c in cyc}
    assert found == [], f"subpackages import each other in a circle: {found}; edges {detail}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_short(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)} has {lines} lines (at most {MAX_LINES})"


def test_no_private_name_is_imported_from_another_module():
    borrowed = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.endswith("__")
                    if private:
                        borrowed.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                        f"from {'.' * node.level}{node.module or ''} import {alias.name}")
    assert borrowed == [], "private names imported across modules:\n" + "\n".join(borrowed)


# -- old module paths -------------------------------------------------------------------------------------

#: The top-level modules of earlier versions (``git log --name-status``: renamed into subpackages) and their
#: new homes. ``cfcam.core`` and ``cfcam.cli`` became packages at the same path and need no shim.
MOVED = {
    "cfcam.capture": "cfcam.core.capture", "cfcam.checks": "cfcam.teaching.checks",
    "cfcam.clustering": "cfcam.core.clustering", "cfcam.compose": "cfcam.core.compose",
    "cfcam.config": "cfcam.core.config", "cfcam.explainers": "cfcam.methods.base",
    "cfcam.filtering": "cfcam.core.filtering", "cfcam.imageio": "cfcam.images.imageio",
    "cfcam.metrics": "cfcam.evaluation.metrics", "cfcam.models": "cfcam.world.models",
    "cfcam.synthetic": "cfcam.world.synthetic", "cfcam.train": "cfcam.world.train",
    "cfcam.viz": "cfcam.images.viz", "cfcam.widgets": "cfcam.teaching.widgets",
    "cfcam.core.threads": "cfcam.core.engine.threads", "cfcam.core.kernels": "cfcam.core.engine.kernels",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_warns_once_and_gives_the_new_module(old, monkeypatch):
    import importlib
    import sys
    import warnings


    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)  # as in a fresh interpreter
    parent, _, name = old.rpartition(".")
    monkeypatch.delattr(importlib.import_module(parent), name, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = importlib.import_module(old)
        again = importlib.import_module(old)
    assert first is new and again is new
    moved = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(moved) == 1, [str(w.message) for w in caught]
    assert f"{old} moved to {MOVED[old]}" in str(moved[0].message)


def test_the_warning_names_the_line_that_imported_the_old_path(monkeypatch):
    import sys
    import warnings

    import cfcam

    monkeypatch.delitem(sys.modules, "cfcam.imageio", raising=False)
    monkeypatch.delattr(cfcam, "imageio", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import cfcam.imageio  # noqa: F401
    assert [(w.category, w.filename) for w in caught] == [(DeprecationWarning, __file__)]


def test_names_import_from_an_old_path():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cfcam.imageio import load_image
        from cfcam.synthetic import make_dataset
        from cfcam.train import to_input
    from cfcam.images.preprocess import to_input as new_to_input
    from cfcam.images.reading import load_image as new_load_image
    from cfcam.world.scenes import make_dataset as new_make_dataset

    assert (load_image, make_dataset, to_input) == (new_load_image, new_make_dataset, new_to_input)


def test_every_old_top_level_module_has_a_shim():
    shims = {".".join(("cfcam", *p.relative_to(PACKAGE).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")
             if "replace_with(" in p.read_text(encoding="utf-8") and p.stem != "_moved"}
    assert shims == set(MOVED)
