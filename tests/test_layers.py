"""The layer folders of hacs_persistence (docs/architecture.md) and the old import paths.

A module imports only from its own layer, the foundation modules and the layers listed before
its own in ``LAYERS``; the compatibility modules at the top are the real modules under their old
names, so code (and a test's monkeypatch) sees one module whichever path it imports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import hacs_persistence

PACKAGE = Path(hacs_persistence.__file__).parent
# docs/architecture.md, "Layers": each may import the ones before it (db and schema: neither).
LAYERS = [
    "db",
    "schema",
    "storage",
    "access",
    "query",
    "ops",
    "adapters",
    "interchange",
    "views",
    "langgraph",
]
FOUNDATION = {"errors", "limits", "ids"}
INDEPENDENT = {("db", "schema"), ("schema", "db")}
COMPATIBILITY = {
    "migrations": "ops.migrations",
    "inspection": "ops.inspection",
    "config": "db.config",
    "embedded": "db.embedded",
    "revocations": "access.revocations",
    "repositories": "query.repositories",
    "gate": "access.gate",
}


def _imported_layers(path: Path) -> set[str]:
    """The first name under ``hacs_persistence`` of every module the file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "hacs_persistence":
                names = [f"hacs_persistence.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hacs_persistence" and len(parts) > 1:
                found.add(parts[1])
    return found


def _violations() -> list[str]:
    wrong = []
    for layer in LAYERS:
        allowed = FOUNDATION | set(LAYERS[: LAYERS.index(layer) + 1])
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for used in _imported_layers(path) - allowed:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {used}")
            for used in _imported_layers(path) & set(LAYERS):
                if (layer, used) in INDEPENDENT:
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {used}")
    for name in FOUNDATION:
        for used in _imported_layers(PACKAGE / f"{name}.py") - {"errors", name}:
            wrong.append(f"{name}.py imports {used}")
    return wrong


def test_each_layer_imports_only_the_layers_before_it() -> None:
    assert _violations() == []


def test_every_module_is_in_a_layer_or_a_known_top_level_module() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top - {"__init__", "adapter", "distributions"} - FOUNDATION == set(COMPATIBILITY)
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS)


@pytest.mark.parametrize("old", sorted(COMPATIBILITY))
def test_an_old_import_path_is_the_module_itself(old: str) -> None:
    module = importlib.import_module(f"hacs_persistence.{old}")
    assert module is importlib.import_module(f"hacs_persistence.{COMPATIBILITY[old]}")
