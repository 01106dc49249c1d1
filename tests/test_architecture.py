"""Layout rules that keep the library usable without the web app."""

from __future__ import annotations

import ast
from pathlib import Path

import genviz

LIBRARY = Path(genviz.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_ui_package_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(LIBRARY))
        for path in LIBRARY.rglob("*.py")
        if "streamlit" in imported_modules(path) and path.relative_to(LIBRARY).parts[0] != "ui"
    ]
    assert offenders == []
    assert "streamlit" in imported_modules(LIBRARY / "ui" / "state.py")


def test_the_models_compute_and_never_draw() -> None:
    """Families return views as data; only genviz.views.render turns them into figures."""
    drawing = {"plotly", "genviz.views.render", "matplotlib"}
    offenders = {
        str(path.relative_to(LIBRARY)): found
        for path in (LIBRARY / "models").rglob("*.py")
        if (found := full_imports(path) & drawing)
    }
    assert offenders == {}
    assert "plotly" not in imported_modules(LIBRARY / "views" / "layers.py")


def full_imports(path: Path) -> set[str]:
    """Every imported module's dotted name and its parents, e.g. {"genviz", "genviz.views", ...}."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        names |= {".".join(m.split(".")[: i + 1]) for m in modules for i in range(m.count(".") + 1)}
    return names


def test_nothing_in_the_library_is_evaluated_from_text() -> None:
    for path in LIBRARY.rglob("*.py"):
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & {"eval", "exec"}, path
