"""Error edges a new user meets (issue 12, point 10): one clear line each, the right exit code.

Against the real test server: a database that does not exist on it, a local TCP socket that
accepts connections and never answers (a silent host), a port nothing listens on. Commands run
in-process through Typer's CliRunner, or in a subprocess where the exit code of the process
itself is the point (Ctrl-C, ``python -m hacs_persistence.ops.demo``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_persistence.adapters.factory import create_postgres_adapter
from hacs_persistence.errors import (
    ConfigurationError,
    ConnectTimeoutError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
)
from hacs_persistence.ops.inspection import verify_database_environment
from hacs_persistence.schema.vectors import MAX_VECTOR_DIM, configured_vector_dim
from hacs_persistence.schema.views import create_current_view_sql, drop_current_view_sql

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PREFIX = re.compile(r"(?<![A-Za-z])Error: ")
CLI = [sys.executable, "-c", "from hacs_cli.main import app; app(prog_name='hacs')"]
DEAD_URL = "postgresql://hacs@127.0.0.1:1/hacs"  # nothing listens on port 1


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


def text_of(result: Result) -> str:
    return ANSI.sub("", result.stdout + result.stderr)


def assert_one_clear_line(stderr: str) -> str:
    lines = ANSI.sub("", stderr).strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    # One "Error: " prefix (a type name such as ConnectionRefusedError is not a prefix).
    assert line.startswith("Error: ") and len(PREFIX.findall(line)) == 1, line
    for noise in ("Traceback", "Background on this error", "DBAPIError", "sqlalche.me"):
        assert noise not in line, line
    return line


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    env.update(extra)
    return env


@contextmanager
def silent_host() -> Iterator[tuple[int, threading.Event]]:
    """A local TCP port that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    accepted = threading.Event()
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never read from or written to
            accepted.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def missing_database_url(server_url: str) -> str:
    return make_url(server_url).set(database="hacs_no_such_db").render_as_string(False)


# -- a database that does not exist (SQLSTATE 3D000) -------------------------------------


def test_a_missing_database_names_it_and_the_server(missing_database_url: str) -> None:
    async def connect() -> None:
        await create_postgres_adapter(missing_database_url)

    with pytest.raises(DatabaseUnavailableError) as caught:
        asyncio.run(connect())
    message = str(caught.value)
    assert "database hacs_no_such_db does not exist on " in message
    assert "socket" in message or "host " in message
    assert "create it or fix" in message and "--database-url" in message
    assert "3D000" not in message


def test_a_missing_database_from_the_environment_names_that_variable(
    missing_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACS_DATABASE_URL", missing_database_url)
    result = invoke("db", "status")
    assert result.exit_code == ExitCode.UNREACHABLE
    line = assert_one_clear_line(result.stderr)
    assert "does not exist on" in line and "fix HACS_DATABASE_URL" in line


def test_db_status_of_a_missing_database_is_one_line(missing_database_url: str) -> None:
    result = invoke("--database-url", missing_database_url, "db", "status")
    assert result.exit_code == ExitCode.UNREACHABLE, text_of(result)
    assert result.stdout == ""
    line = assert_one_clear_line(result.stderr)
    assert "database hacs_no_such_db does not exist on" in line


def test_doctor_reports_a_missing_database_without_driver_text(
    missing_database_url: str,
) -> None:
    result = invoke("doctor", "--database-url", missing_database_url)
    out = text_of(result)
    assert result.exit_code == ExitCode.UNREACHABLE, out
    assert "does not exist on" in " ".join(out.split())
    for noise in ("DBAPIError", "Background on this error", "sqlalche.me", "asyncpg.Error"):
        assert noise not in out


def test_a_dead_port_is_one_line_without_a_doubled_prefix() -> None:
    result = invoke("--database-url", DEAD_URL, "db", "status")
    assert result.exit_code == ExitCode.UNREACHABLE
    line = assert_one_clear_line(result.stderr)
    assert "Host 127.0.0.1 port 1 is not reachable" in line


# -- a silent host (connect timeout) --------------------------------------------------------


def test_a_silent_host_is_a_connect_timeout_naming_the_host() -> None:
    with silent_host() as (port, accepted):
        url = f"postgresql://hacs@127.0.0.1:{port}/hacs"

        async def connect() -> None:
            await create_postgres_adapter(url, connect_timeout=0.5)

        with pytest.raises(ConnectTimeoutError) as caught:
            asyncio.run(connect())
        assert accepted.is_set()
    assert isinstance(caught.value, DatabaseTimeoutError)
    message = str(caught.value)
    assert f"Host 127.0.0.1 port {port} did not answer within 0.5 s" in message
    assert "HACS_DB_CONNECT_TIMEOUT" in message


def test_the_cli_against_a_silent_host_exits_3_naming_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HACS_DB_CONNECT_TIMEOUT", "0.5")
    with silent_host() as (port, _accepted):
        result = invoke(
            "--database-url", f"postgresql://hacs@127.0.0.1:{port}/hacs", "db", "status"
        )
    assert result.exit_code == ExitCode.UNREACHABLE
    line = assert_one_clear_line(result.stderr)
    assert f"127.0.0.1 port {port} did not answer within 0.5 s" in line


def test_ctrl_c_exits_130() -> None:
    with silent_host() as (port, accepted):
        process = subprocess.Popen(
            [*CLI, "--database-url", f"postgresql://hacs@127.0.0.1:{port}/hacs", "db", "status"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(HACS_DB_CONNECT_TIMEOUT="60"),
        )
        try:
            # Interrupt while the command waits for the silent server.
            assert accepted.wait(60), "the command never connected"
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert int(ExitCode.INTERRUPTED) == 130
    assert assert_one_clear_line(err) == "Error: Interrupted."


# -- the demo against a dead server --------------------------------------------------------


def test_the_demo_module_against_a_dead_server_prints_one_line_and_exits_3() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hacs_persistence.ops.demo"],
        capture_output=True,
        text=True,
        env=_env(DATABASE_URL=DEAD_URL, HACS_JWT_SECRET="x" * 64),
        timeout=120,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    line = assert_one_clear_line(done.stderr)
    assert "127.0.0.1 port 1" in line and "DATABASE_URL" in line
    assert done.stdout == ""


# -- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["global", "command"])
def test_an_empty_database_url_is_a_usage_error(where: str) -> None:
    args = ("--database-url", "", "db", "status")
    if where == "command":
        args = ("db", "status", "--database-url", "")
    result = invoke(*args)
    assert result.exit_code == ExitCode.USAGE
    assert "the URL is empty" in " ".join(text_of(result).split())


def test_an_empty_database_url_starts_no_server(tmp_path: Path) -> None:
    # Before: `--database-url ''` fell back to the embedded server and started it (slow, and
    # another server left running). Now the command line is refused before anything runs.
    embedded = tmp_path / "embedded"
    done = subprocess.run(
        [*CLI, "--database-url", "", "db", "status"],
        capture_output=True,
        text=True,
        env=_env(HACS_EMBEDDED_DIR=str(embedded)),
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "Traceback" not in done.stderr
    assert not embedded.exists()


def test_export_into_a_missing_directory_is_one_line(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "patients.ndjson"
    result = invoke(
        "export", "--type", "Patient", "--out", str(out), "--database-url", database_url
    )
    assert result.exit_code == ExitCode.USAGE, text_of(result)
    line = assert_one_clear_line(result.stderr)
    assert "does not exist" in line and str(out.parent) in line
    assert "Unexpected" not in line and ".partial" not in line
    assert not out.parent.exists()


# -- HACS_VECTOR_DIM -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "2001", "16000", "abc", "1.5"])
def test_an_invalid_vector_dim_is_a_configuration_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACS_VECTOR_DIM", value)
    with pytest.raises(ConfigurationError, match="HACS_VECTOR_DIM must be a whole number"):
        configured_vector_dim()


@pytest.mark.parametrize("value", ["1", "384", str(MAX_VECTOR_DIM)])
def test_vector_dims_up_to_the_hnsw_limit_are_accepted(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACS_VECTOR_DIM", value)
    assert configured_vector_dim() == int(value)


def test_an_invalid_vector_dim_in_the_cli_is_exit_2_not_a_traceback() -> None:
    # In a subprocess: the tables are declared at import time, which used to raise ValueError.
    done = subprocess.run(
        [*CLI, "--database-url", DEAD_URL, "db", "status"],
        capture_output=True,
        text=True,
        env=_env(HACS_VECTOR_DIM="0"),
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr[-2000:]
    line = assert_one_clear_line(done.stderr)
    assert "HACS_VECTOR_DIM" in line and "2,000" in line


async def test_doctors_report_names_an_invalid_vector_dim(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACS_VECTOR_DIM", "0")
    report = await verify_database_environment(database_url)
    assert report["connection_test"]["success"] is True
    assert any("HACS_VECTOR_DIM must be" in r for r in report["recommendations"])


async def test_migrating_with_a_vector_dim_above_the_hnsw_limit_is_refused(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hacs_persistence.ops.migrations import upgrade

    monkeypatch.setenv("HACS_VECTOR_DIM", "4096")
    with pytest.raises(ConfigurationError, match="HACS_VECTOR_DIM"):
        await upgrade(empty_database_url)


# -- verify_database_environment with an invalid URL ---------------------------------------


async def test_an_invalid_url_is_reported_as_given_with_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:s3cr3t@db.example.org/app")
    report = await verify_database_environment()
    assert report["database_url_source"] == "DATABASE_URL"
    assert report["database_url"] == "mysql://user:***@db.example.org/app"
    assert report["connection_test"]["success"] is False
    assert "Unsupported database URL scheme" in report["connection_test"]["error"]
    assert "s3cr3t" not in str(report)


# -- the _current views' DDL ---------------------------------------------------------------


def test_the_current_view_ddl_is_what_revision_0001_always_ran() -> None:
    # The text revision 0001 inlined before the helper existed: the DDL must not change.
    schema, table = "hacs_clinical", "conditions"
    assert create_current_view_sql(schema, table) == (
        f"CREATE VIEW {schema}.{table}_current AS "
        f"SELECT t.*, v.document FROM {schema}.{table} t "
        "JOIN hacs_core.resource_versions v "
        "ON v.resource_type = t.resource_type AND v.id = t.id AND v.version = t.version"
    )
    assert drop_current_view_sql(schema, table, if_exists=True) == (
        f"DROP VIEW IF EXISTS {schema}.{table}_current"
    )
    assert drop_current_view_sql("hacs_core", "patients") == "DROP VIEW hacs_core.patients_current"
