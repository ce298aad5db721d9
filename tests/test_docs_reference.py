"""Reference pages that must follow the code: configuration, schema, command line, site nav.

- docs/configuration.md names every `DatabaseSettings` field (with its `HACS_DB_*` variable and
  its real default) and every environment variable the code reads;
- docs/schema.md is exactly what `hacs docs schema` generates from the metadata;
- docs/cli.md names every command, option and exit code;
- mkdocs.yml lists every page of docs/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import typer

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_cli.schema_doc import default_schema_doc_path, hacs_schema_markdown
from hacs_persistence.db.config import DatabaseSettings
from tests.docs_blocks import tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
# Code whose environment variables users and developers may set (tests: only the fixtures).
SOURCES = [
    *sorted((ROOT / "hacs").rglob("*.py")),
    *sorted((ROOT / "alembic").rglob("*.py")),
    *sorted((ROOT / "bench").rglob("*.py")),
    ROOT / "tests" / "conftest.py",
]
_HACS_NAME = re.compile(r"\bHACS_[A-Z0-9_]*[A-Z0-9]\b")
_ENV_CALLS = {"get", "getenv", "setdefault", "pop"}


def _string_constants(tree: ast.AST) -> list[str]:
    """Every string constant except the names listed in `__all__`."""
    exported: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value:
                exported.update(id(n) for n in ast.walk(node.value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in exported
    ]


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _environment_reads(tree: ast.AST) -> set[str]:
    """Literal names in `os.environ.get("X")`, `os.getenv("X")`, `os.environ["X"]`..."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            reads_env = (func.attr in _ENV_CALLS and _is_environ(func.value)) or (
                func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"
            )
            if reads_env and node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript)
            and _is_environ(node.value)
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


def environment_variables() -> set[str]:
    """Every variable the code reads, and every `HACS_*` name its strings mention."""
    names: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names |= _environment_reads(tree)
        for value in _string_constants(tree):
            names.update(_HACS_NAME.findall(value))
    return names


def test_the_scan_finds_the_known_variables() -> None:
    found = environment_variables()
    assert {
        "DATABASE_URL",
        "HACS_DATABASE_URL",
        "HACS_EMBEDDED_DIR",
        "HACS_VECTOR_DIM",
        "HACS_JWT_SECRET",
        "HACS_TEST_DATABASE_URL",
        "HACS_ALEMBIC_DIR",
        "PGSSLROOTCERT",
    } <= found
    assert "HACS_SCHEMAS" not in found  # a Python constant, not a variable


def test_every_environment_variable_is_documented() -> None:
    page = CONFIGURATION.read_text(encoding="utf-8")
    missing = sorted(name for name in environment_variables() if f"`{name}`" not in page)
    assert not missing, f"add these environment variables to docs/configuration.md: {missing}"


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def test_every_database_setting_is_documented_with_its_variable_and_default() -> None:
    page = CONFIGURATION.read_text(encoding="utf-8")
    [table] = [
        t for t in tables(page) if t.header[:3] == ["Setting", "Environment variable", "Default"]
    ]
    rows = {row[0].strip("`"): row for row in table.rows}
    fields = DatabaseSettings.model_fields
    assert set(rows) == set(fields), "the settings table lists exactly the DatabaseSettings fields"
    for name, field in fields.items():
        row = rows[name]
        assert row[1] == f"`HACS_DB_{name.upper()}`", name
        assert row[2] == _default_text(field.default), f"{name}: documented default {row[2]}"


def test_schema_reference_is_generated_from_the_metadata() -> None:
    page = default_schema_doc_path()
    assert page == DOCS / "schema.md"
    current = page.read_text(encoding="utf-8") if page.is_file() else ""
    assert current == hacs_schema_markdown(), (
        "docs/schema.md is out of date: run `hacs docs schema --write` (then commit it)"
    )


def test_schema_reference_covers_every_table_and_column() -> None:
    from hacs_persistence.schema import metadata

    page = (DOCS / "schema.md").read_text(encoding="utf-8")
    assert page.count("```mermaid\nerDiagram") == len({t.schema for t in metadata.tables.values()})
    for table in metadata.tables.values():
        section = page.split(f"### {table.schema}.{table.name}\n", 1)[1].split("\n### ", 1)[0]
        for column in table.columns:
            assert f"| `{column.name}` |" in section, f"{table.fullname}.{column.name}"


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(prefix, command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found += _commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize(
    ("path", "command"),
    _commands(typer.main.get_command(app)),
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_cli_reference_names_every_command_and_option(path: tuple[str, ...], command: Any) -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert " ".join(("hacs", *path)) in page
    for param in command.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert f"`{option}" in page or f" {option}" in page, f"{path}: {option}"


def test_cli_reference_lists_every_exit_code() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    [table] = [t for t in tables(page) if t.header == ["Code", "Meaning"]]
    assert [row[0] for row in table.rows] == [f"`{int(code)}`" for code in ExitCode]


def test_mkdocs_nav_lists_every_page() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config.split("\nnav:\n", 1)[1]
    listed = re.findall(r"^\s+- [^:]+: (\S+\.md)\s*$", nav, flags=re.MULTILINE)
    assert len(listed) == len(set(listed))
    for page in ("index.md", "connect_postgres.md", "configuration.md", "schema.md", "cli.md"):
        assert page in listed and (DOCS / page).is_file(), page
    orphans = sorted(p.name for p in DOCS.glob("*.md") if p.name not in listed)
    assert not orphans, f"add these pages to the nav of mkdocs.yml: {orphans}"
