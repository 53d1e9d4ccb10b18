"""Imports go one way: layouts -> ids; callbacks -> ids, dashapp; dashapp -> neither."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / folder).glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
        found[path.name] = names
    return found


def test_core_imports_neither_layouts_nor_callbacks_nor_dash_views():
    for name, imported in _imports("dashapp").items():
        assert not imported & {"layouts", "callbacks"}, name
        # The app's server side: services, the accounts layer on Flask, the JSON API.
        if name not in {"services.py", "auth.py", "api.py"}:
            assert not imported & {"dash", "dash_bootstrap_components", "flask"}, name


def test_layouts_do_not_import_callbacks():
    for name, imported in _imports("layouts").items():
        assert "callbacks" not in imported, name
