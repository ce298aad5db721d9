"""Every way a database password could leak, one test each, against real PostgreSQL servers.

The command line (the process list), ``repr`` of the objects that hold a URL, a password with an
unencoded ``@``, masking (a one-letter password, a password that is part of the host or the user
name) and the messages of a failing connection. The passwords of a throwaway server with
``scram-sha-256`` authentication prove the password file and ``PGPASSFILE`` are really used.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import text as sql_text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

import hacs_tools
from hacs_auth import Actor, acting_as
from hacs_cli.common import CliState, ExitCode
from hacs_cli.common import redact as cli_redact
from hacs_cli.main import app
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.config import (
    DatabaseSettings,
    build_connection_target,
    mask_url,
    redact,
)
from hacs_persistence.db.engine import one_off_connection, resolve_database
from hacs_persistence.errors import ConfigurationError, HacsPersistenceError
from hacs_persistence.migrations import get_migration_status
from hacs_persistence.ops.inspection import verify_database_environment
from tests.pgservers import PgServer, embedded_bin_dir, running_server

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

ROLE = "leak_app"
ROLE_PASSWORD = "Leak pw@/:%-Q7"  # reserved characters: it must be percent-encoded in a URL
# asyncpg's pgpass reader splits on ':' but does not undo the '\\:' escape: no ':' in this one.
PGPASS_ROLE, PGPASS_PASSWORD = "leak_pgpass", "Pgpass-pw@9"
WRONG_PASSWORD = "Wrong-pw-4x"
runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


async def ainvoke(*args: str) -> Result:
    """``invoke`` from a test coroutine: each command runs its own ``asyncio.run``."""
    return await asyncio.to_thread(invoke, *args)


def output(result: Result) -> str:
    return result.stdout + result.stderr


def assert_no_password(text: str, *passwords: str) -> None:
    for password in passwords:
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            assert form not in text, f"password ({form!r}) leaked into: {text[:400]}"


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL 18 that checks passwords on TCP (scram-sha-256)."""
    with running_server(embedded_bin_dir()) as pg:
        yield pg


@pytest.fixture(scope="module")
async def role(server: PgServer) -> AsyncIterator[str]:
    conn = await server.connect()
    try:
        escaped = ROLE_PASSWORD.replace("'", "''")
        await conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{escaped}'")
        await conn.execute(f"CREATE ROLE {PGPASS_ROLE} LOGIN PASSWORD '{PGPASS_PASSWORD}'")
    finally:
        await conn.close()
    yield ROLE


def _url(server: PgServer, password: str | None = None) -> str:
    return server.url(ROLE, password, "postgres")


async def _connects(url: str, settings: DatabaseSettings | None = None) -> str:
    """Connect once and return ``current_user``."""
    resolved = await resolve_database(url, settings)
    async with one_off_connection(resolved) as conn:
        return str(await conn.scalar(sql_text("SELECT current_user")))


# -- the command line --------------------------------------------------------------------------

ARGV_URLS = {
    "userinfo": "postgresql://hacs:Argv-pw-91@127.0.0.1:1/hacs",
    "query": "postgresql://hacs@127.0.0.1:1/hacs?password=Argv-pw-91",
    "unparseable": "postgresql://hacs:Argv-pw-91@127.0.0.1:port/hacs",
    "unencoded-at": "postgresql://hacs:Argv@pw-91@127.0.0.1:1/hacs",
}


@pytest.mark.parametrize("placement", ["global", "command"])
@pytest.mark.parametrize("url", sorted(ARGV_URLS))
def test_the_cli_refuses_a_password_on_its_command_line(placement: str, url: str) -> None:
    value = ARGV_URLS[url]
    args = (
        ("--database-url", value, "db", "status")
        if placement == "global"
        else ("db", "status", "--database-url", value)
    )
    result = invoke(*args)
    text = " ".join(output(result).split())
    # Exit 2 before connecting (port 1 would otherwise be exit 3, unreachable).
    assert result.exit_code == ExitCode.USAGE, text
    assert "with a password is refused" in text
    assert "HACS_DB_PASSWORD_FILE" in text and "DATABASE_URL" in text
    assert "Argv-pw-91" not in text and "pw-91" not in text


def test_the_installed_hacs_refuses_it_too() -> None:
    hacs = Path(sys.executable).parent / "hacs"
    completed = subprocess.run(
        [str(hacs), "doctor", "--database-url", ARGV_URLS["userinfo"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == ExitCode.USAGE, completed.stderr
    assert "Argv-pw-91" not in completed.stdout + completed.stderr


async def test_the_cli_takes_the_password_from_a_file_instead(
    server: PgServer, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(ROLE_PASSWORD + "\n")
    monkeypatch.setenv("HACS_DB_PASSWORD_FILE", str(secret))
    result = await ainvoke("doctor", "--json", "--database-url", _url(server))
    report = json.loads(result.stdout)
    # Connected (exit 1 only because the database has no hacs schema), as the file's role.
    assert report["connection_test"]["success"] is True, report
    assert report["connection_test"]["user"] == role
    assert result.exit_code == ExitCode.FAILED
    assert_no_password(output(result), ROLE_PASSWORD)


# -- repr and str ------------------------------------------------------------------------------


def _suite_password(user: str) -> str:
    """The suite server's password of ``user``, from the password file conftest sets up."""
    for line in Path(os.environ["PGPASSFILE"]).read_text().splitlines():
        *_, name, password = line.split(":")
        if name == user:
            return password
    raise AssertionError(f"no password for {user} in PGPASSFILE")


async def test_objects_holding_a_url_show_it_masked(database_url: str) -> None:
    # The suite's URL has no password (conftest puts it in PGPASSFILE): put the real one back in
    # the URL, so the objects below hold a password that really connects.
    parsed = make_url(database_url)
    password = _suite_password(str(parsed.username))
    url = parsed.set(password=password).render_as_string(hide_password=False)
    resolved = await resolve_database(url)
    adapter = await create_postgres_adapter(url)
    try:
        for obj in (resolved, resolved.target, adapter.database, CliState(database_url=url)):
            for rendered in (repr(obj), str(obj), f"{obj}", repr([obj])):
                assert password not in rendered, type(obj).__name__
                assert "***" in rendered, rendered
        assert adapter.database is not None
        assert adapter.database.url == url  # the object still has what it needs to connect
    finally:
        await adapter.close()
    with hacs_tools.configure_tools(url) as configured:
        assert password not in repr(configured)


# -- an unencoded '@' in the password ----------------------------------------------------------

UNENCODED = "postgresql://app:Sec@ret-77@db.example.org:5432/clinic"


def test_an_unencoded_at_sign_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_connection_target(UNENCODED, DatabaseSettings())
    message = str(info.value)
    assert "%40" in message and "percent-encode" in message
    assert "ret-77" not in message and "Sec" not in message
    assert "ret-77" not in mask_url(UNENCODED)
    assert "ret-77" not in redact(f"cannot connect to {UNENCODED}: refused", UNENCODED)
    assert "ret-77" not in redact(f"cannot connect to {UNENCODED}: refused")


async def test_an_unencoded_at_sign_is_refused_by_every_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigurationError, match="%40") as info:
        await create_postgres_adapter(UNENCODED)
    assert "ret-77" not in str(info.value)
    monkeypatch.setenv("DATABASE_URL", UNENCODED)
    for args in (("db", "status"), ("doctor", "--json")):
        result = await ainvoke(*args)
        assert result.exit_code == ExitCode.USAGE, output(result)
        assert "ret-77" not in output(result)
    report = await verify_database_environment()
    assert "ret-77" not in json.dumps(report)


async def test_a_percent_encoded_at_sign_connects(server: PgServer, role: str) -> None:
    url = _url(server, ROLE_PASSWORD)
    assert "%40" in url  # pgservers renders it encoded, as a user must write it
    assert make_url(url).password == ROLE_PASSWORD
    assert await _connects(url) == role


# -- masking works on the parsed URL, never on the password's text -----------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),  # one letter, in 'postgresql'
        (
            "postgresql://admin:example@db.example.org/example",  # part of the host and database
            "postgresql://admin:***@db.example.org/example",
        ),
        ("postgresql://hacs:hacs@hacs/hacs", "postgresql://hacs:***@hacs/hacs"),  # the user name
        ("postgresql://u:1@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),  # the port
    ],
)
def test_masking_replaces_the_password_and_nothing_else(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    message = f"Cannot connect to {url}: postgresql server at db refused (port 1)"
    expected = f"Cannot connect to {masked}: postgresql server at db refused (port 1)"
    assert redact(message, url) == expected
    assert cli_redact(message, url) == expected


async def test_a_failing_connection_with_a_one_letter_password_keeps_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://p:p@127.0.0.1:1/p"  # nothing listens on port 1
    monkeypatch.setenv("DATABASE_URL", url)
    texts = {
        "cli": " ".join(output(await ainvoke("db", "status")).split()),
        "doctor": output(await ainvoke("doctor", "--json")),
        "inspection": json.dumps(await verify_database_environment()),
        "migrations": (await get_migration_status())["error"],
    }
    for where, text in texts.items():
        assert "postgresql://p:***@127.0.0.1:1/p" in text, (where, text)
        assert "***ostgresql" not in text and ":p@" not in text, (where, text)
    assert "ConnectionRefusedError" in texts["cli"]


# -- messages of a failing connection ----------------------------------------------------------


async def test_a_wrong_password_is_reported_without_any_password(
    server: PgServer, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(server, WRONG_PASSWORD)
    monkeypatch.setenv("DATABASE_URL", url)
    texts: dict[str, str] = {}
    with pytest.raises(HacsPersistenceError) as raised:
        await create_postgres_adapter()
    texts["adapter"] = f"{raised.value} {raised.value!r}"
    texts["inspection"] = json.dumps(await verify_database_environment())
    texts["migrations"] = (await get_migration_status())["error"]
    texts["cli"] = output(await ainvoke("db", "status"))
    texts["doctor"] = output(await ainvoke("doctor", "--json"))
    clinician = Actor(name="a", role="physician", permissions=["*:*"])
    with hacs_tools.configure_tools(), acting_as(clinician):
        result = await hacs_tools.aread_resource("patient-1", "Patient")
    texts["tool"] = result.model_dump_json()
    assert result.error == "database_unavailable", result
    for where, text in texts.items():
        assert_no_password(text, WRONG_PASSWORD, ROLE_PASSWORD)
        assert f"{ROLE}:***@127.0.0.1" in text or "authentication failed" in text.lower(), where
    assert "password authentication failed" in texts["inspection"]


# -- the password outside the URL --------------------------------------------------------------


async def test_the_password_file_is_used_and_needed(
    server: PgServer, role: str, tmp_path: Path
) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(ROLE_PASSWORD + "\n")
    assert await _connects(_url(server), DatabaseSettings(password_file=secret)) == role
    with pytest.raises(Exception, match="password") as failed:
        await _connects(_url(server), DatabaseSettings())
    assert_no_password(str(failed.value), ROLE_PASSWORD)


async def test_pgpassfile_is_used_when_the_url_has_no_password(
    server: PgServer, role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{server.port}:*:{PGPASS_ROLE}:{PGPASS_PASSWORD}\n")
    passfile.chmod(0o600)  # libpq and asyncpg ignore a pgpass file others can read
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = server.url(PGPASS_ROLE, None, "postgres")
    assert await _connects(url) == PGPASS_ROLE
    passfile.write_text(f"127.0.0.1:{server.port}:*:{PGPASS_ROLE}:{WRONG_PASSWORD}\n")
    with pytest.raises(Exception, match="password authentication failed"):
        await _connects(url)  # it really is the file that supplies the password
