"""The `hacs` command line against a real PostgreSQL: exit codes, reports, masking, help.

Commands run in-process through Typer's CliRunner (the tests are synchronous so each command can
use `asyncio.run`); the `hacs` executable itself runs once in a subprocess to prove the entry point.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_persistence.schema import SCHEMAS, metadata
from tests.conftest import db_connect

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PASSWORD = "s3cr3t-pw"
# Nothing listens on port 1: connection refused at once. A URL with a password is refused on the
# command line (the process list shows it), so that one goes in DATABASE_URL.
UNREACHABLE_URL = f"postgresql://hacs:{PASSWORD}@127.0.0.1:1/hacs"
UNREACHABLE_ARGV_URL = "postgresql://hacs@127.0.0.1:1/hacs"
# Every hacs table of the metadata (a migrated database has them all).
TABLES = len(metadata.tables)


def invoke(*args: str, input: str | None = None) -> Result:
    """Run `hacs ARGS...` in-process; stdout and stderr are kept apart."""
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def text_of(result: Result) -> str:
    return ANSI.sub("", result.stdout + result.stderr)


def sql(url: str, statement: str) -> None:
    async def execute() -> None:
        conn = await db_connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute())


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(app))


def test_every_expected_command_is_registered() -> None:
    assert {" ".join(p) for p in COMMAND_PATHS} >= {
        "",
        "db",
        "db upgrade",
        "db downgrade",
        "db status",
        "db check",
        "doctor",
        "demo",
        "docs",
        "docs schema",
    }


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "hacs")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    first_line = (command.help or "").strip().splitlines()[0].replace("`", "")
    assert first_line and " ".join(first_line.split()) in " ".join(text_of(result).split())
    assert "Usage: hacs" in text_of(result)


def test_status_of_a_migrated_database(database_url: str) -> None:
    result = invoke("--database-url", database_url, "db", "status")
    out = text_of(result)
    assert result.exit_code == ExitCode.OK, out
    assert "Migration complete   True" in out
    assert f"{TABLES}/{TABLES}" in out
    assert "pgvector enabled     True" in out
    positions = [out.index(f"  {schema} ") for schema in SCHEMAS]
    assert positions == sorted(positions), "schemas are listed in the guide's order"
    assert re.search(r"hacs_clinical\s+21\s+21", out)
    assert re.search(r"Current revision\s+(\w+)", out)


def test_status_as_json(database_url: str) -> None:
    result = invoke("db", "status", "--json", "--database-url", database_url)
    assert result.exit_code == ExitCode.OK, result.output
    status = json.loads(result.stdout)
    assert status["migration_complete"] is True
    assert (status["total_tables"], status["expected_tables"]) == (TABLES, TABLES)
    assert list(status["schema_breakdown"]) == list(SCHEMAS)


def test_status_of_an_empty_database_reports_incomplete(empty_database_url: str) -> None:
    result = invoke("--database-url", empty_database_url, "db", "status")
    out = text_of(result)
    assert result.exit_code == ExitCode.FAILED, out
    assert "Migration complete   False" in out
    assert f"0/{TABLES}" in out
    assert "none (not migrated)" in out
    assert "hacs db upgrade" in out


def test_upgrade_an_empty_database_then_status_is_complete(empty_database_url: str) -> None:
    result = invoke("--database-url", empty_database_url, "db", "upgrade")
    assert result.exit_code == ExitCode.OK, text_of(result)
    assert f"{TABLES}/{TABLES} tables" in result.stdout
    again = invoke("--database-url", empty_database_url, "db", "upgrade", "head")
    assert again.exit_code == ExitCode.OK, text_of(again)
    status = invoke("--database-url", empty_database_url, "db", "status")
    assert status.exit_code == ExitCode.OK
    assert "Migration complete   True" in text_of(status)


def test_check_finds_no_drift_on_a_migrated_database(database_url: str) -> None:
    result = invoke("--database-url", database_url, "db", "check")
    assert result.exit_code == ExitCode.OK, text_of(result)
    assert "No drift" in result.stdout


def test_check_reports_drift(database_url: str) -> None:
    sql(database_url, "ALTER TABLE hacs_core.patients DROP COLUMN postal_code CASCADE")
    result = invoke("--database-url", database_url, "db", "check")
    out = text_of(result)
    assert result.exit_code == ExitCode.FAILED, out
    assert "Schema drift" in out
    assert "add_column: hacs_core.patients.postal_code" in out


def test_check_on_an_unmigrated_database_fails(empty_database_url: str) -> None:
    result = invoke("--database-url", empty_database_url, "db", "check")
    assert result.exit_code == ExitCode.FAILED
    assert "hacs db upgrade" in result.stderr
    assert "Traceback" not in text_of(result)


def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    result = invoke("--database-url", database_url, "db", "downgrade", "base", "--yes")
    assert result.exit_code == ExitCode.OK, text_of(result)
    assert f"0/{TABLES} tables" in result.stdout
    status = invoke("--database-url", database_url, "db", "status", "--json")
    assert status.exit_code == ExitCode.FAILED
    assert json.loads(status.stdout)["total_tables"] == 0


def test_downgrade_asks_before_dropping(database_url: str) -> None:
    result = invoke("--database-url", database_url, "db", "downgrade", "base", input="n\n")
    assert result.exit_code == ExitCode.FAILED
    assert "cancelled" in result.stderr
    assert invoke("--database-url", database_url, "db", "status").exit_code == ExitCode.OK


def test_doctor_on_a_migrated_database(database_url: str) -> None:
    result = invoke("doctor", "--database-url", database_url)
    out = text_of(result)
    assert result.exit_code == ExitCode.OK, out
    for expected in (
        "Connection",
        "PostgreSQL 1",
        "--database-url option",
        f"{TABLES}/{TABLES} tables",
    ):
        assert expected in out
    assert all(f"Schema {schema}" in out for schema in SCHEMAS if schema != "public")


def test_doctor_on_an_empty_database_fails_the_check(empty_database_url: str) -> None:
    result = invoke("doctor", "--database-url", empty_database_url, "--json")
    assert result.exit_code == ExitCode.FAILED
    report = json.loads(result.stdout)
    assert report["connection_test"]["success"] is True
    assert report["migration_status"]["migration_complete"] is False


@pytest.mark.parametrize(
    "args",
    [
        ("doctor",),
        ("doctor", "--json"),
        ("db", "status"),
        ("db", "upgrade"),
        ("db", "check"),
        ("db", "downgrade", "base", "--yes"),
        ("demo",),
    ],
    ids=" ".join,
)
def test_unreachable_database_exits_3_without_the_password(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_URL)
    result = invoke(*args)
    out = text_of(result)
    assert result.exit_code == ExitCode.UNREACHABLE, out
    assert PASSWORD not in out
    assert "hacs:***@127.0.0.1" in out
    assert "Traceback" not in out
    if args[-1] != "--json" and args[0] != "doctor":
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_dotenv_in_a_parent_directory_does_not_redirect_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={UNREACHABLE_URL}\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HACS_DATABASE_URL", database_url)
    result = invoke("db", "status", "--json")
    assert result.exit_code == ExitCode.OK, text_of(result)
    monkeypatch.setenv("HACS_ENV_FILE", str(tmp_path / ".env"))  # named explicitly: it counts
    assert invoke("db", "status").exit_code == ExitCode.UNREACHABLE


def test_a_missing_hacs_env_file_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HACS_ENV_FILE", str(tmp_path / "missing.env"))
    for args in (("db", "status"), ("doctor",)):
        result = invoke(*args)
        assert result.exit_code == ExitCode.USAGE, text_of(result)
        assert "HACS_ENV_FILE" in text_of(result)


def test_url_from_the_environment_is_used_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_URL)
    result = invoke("doctor", "--json")
    assert result.exit_code == ExitCode.UNREACHABLE
    report = json.loads(result.stdout)
    assert report["database_url_source"] == "DATABASE_URL"
    status = invoke("db", "status")
    assert status.exit_code == ExitCode.UNREACHABLE
    assert PASSWORD not in text_of(result) + text_of(status)


@pytest.mark.parametrize(
    "url",
    [f"mysql://hacs:{PASSWORD}@db/hacs", f"postgresql://hacs:{PASSWORD}@db:port/hacs"],
    ids=["scheme", "unparseable"],
)
def test_invalid_url_is_a_usage_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    for args in (("db", "status"), ("doctor",)):
        result = invoke(*args)
        assert result.exit_code == ExitCode.USAGE
        assert PASSWORD not in text_of(result)


def test_invalid_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HACS_DB_CONNECTION_POOL_SIZE", "0")
    result = invoke("--database-url", UNREACHABLE_ARGV_URL, "db", "status")
    assert result.exit_code == ExitCode.USAGE
    assert "connection_pool_size" in result.stderr


def test_command_option_overrides_the_global_one(database_url: str) -> None:
    result = invoke(
        "--database-url", UNREACHABLE_ARGV_URL, "db", "status", "--database-url", database_url
    )
    assert result.exit_code == ExitCode.OK, text_of(result)


def test_usage_errors_exit_2() -> None:
    assert invoke("db", "no-such-command").exit_code == ExitCode.USAGE
    assert invoke("db", "downgrade").exit_code == ExitCode.USAGE  # REVISION is required


def test_docs_schema_prints_the_generated_page() -> None:
    from hacs_cli.schema_doc import hacs_schema_markdown

    result = invoke("docs", "schema")
    assert result.exit_code == ExitCode.OK
    assert result.stdout == hacs_schema_markdown()


def test_docs_schema_write_and_check(tmp_path: Path) -> None:
    target = tmp_path / "schema.md"
    assert invoke("docs", "schema", "--check", "-o", str(target)).exit_code == ExitCode.FAILED
    assert invoke("docs", "schema", "--write", "-o", str(target)).exit_code == ExitCode.OK
    assert invoke("docs", "schema", "--check", "-o", str(target)).exit_code == ExitCode.OK


def _hacs_executable() -> str:
    path = Path(sys.executable).parent / "hacs"
    assert path.is_file(), f"{path} is missing: run `pip install -e .` to create the entry point"
    return str(path)


def test_the_installed_hacs_executable(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    done = subprocess.run(
        [_hacs_executable(), "--database-url", database_url, "db", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{TABLES}/{TABLES}" in done.stdout


def test_demo_runs_the_guide(database_url: str) -> None:
    # In a subprocess: the guide exports DATABASE_URL and HACS_DATABASE_URL into its process.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    done = subprocess.run(
        [_hacs_executable(), "demo", "--database-url", database_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Running 7 blocks of connect_postgres.md" in done.stdout
    assert "Patient & Observation persisted" in done.stdout
