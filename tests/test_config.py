"""Settings and URL handling: resolution order, schemes, sockets, sslmode, masking, PgBouncer."""

from __future__ import annotations

import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from hacs_persistence.db.config import (
    DatabaseSettings,
    build_connection_target,
    load_settings,
    mask_url,
    resolve_database_url,
)
from hacs_persistence.db.engine import get_engine, resolve_database
from hacs_persistence.errors import ConfigurationError

PRODUCTION_CONFIG = {
    "connection_pool_size": 20,
    "max_overflow": 30,
    "pool_timeout": 30,
    "pool_recycle": 3600,
    "ssl_mode": "require",
    "application_name": "hacs-production",
    "statement_timeout": 30000,
    "idle_in_transaction_session_timeout": 60000,
}


def test_database_url_wins_over_hacs_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@h1/db")
    monkeypatch.setenv("HACS_DATABASE_URL", "postgresql://b@h2/db")
    assert resolve_database_url() == ("postgresql://a@h1/db", "DATABASE_URL")


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("HACS_DATABASE_URL", "postgresql://b@h2/db")
    assert resolve_database_url() == ("postgresql://b@h2/db", "HACS_DATABASE_URL")
    monkeypatch.setenv("HACS_DATABASE_URL", "")
    assert resolve_database_url() == (None, "embedded")


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://fromfile@h/db\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_database_url() == ("postgresql://fromfile@h/db", ".env:DATABASE_URL")
    monkeypatch.setenv("HACS_DATABASE_URL", "postgresql://env@h/db")
    # The file's DATABASE_URL still comes first in the guide's order.
    assert resolve_database_url()[0] == "postgresql://fromfile@h/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://realenv@h/db")
    assert resolve_database_url() == ("postgresql://realenv@h/db", "DATABASE_URL")


def test_explicit_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@h1/db")
    assert resolve_database_url("postgresql://x@y/z") == ("postgresql://x@y/z", "argument")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@db.example.org:5433/clinic",
        "postgres://u:pw@db.example.org:5433/clinic",
        "postgresql+asyncpg://u:pw@db.example.org:5433/clinic",
    ],
)
def test_accepted_schemes_normalise_to_asyncpg(url: str) -> None:
    target = build_connection_target(url, DatabaseSettings())
    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == (
        "db.example.org",
        5433,
        "clinic",
    )
    assert target.masked == "postgresql://u:***@db.example.org:5433/clinic".replace(
        "postgresql", url.split("://")[0]
    )


def test_unix_socket_host_goes_to_asyncpg() -> None:
    target = build_connection_target(
        "postgresql://postgres@/postgres?host=/tmp/pg", DatabaseSettings()
    )
    assert target.connect_args["host"] == "/tmp/pg"
    assert target.url.query == {}


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require"])
def test_plain_sslmodes_pass_through(mode: str) -> None:
    target = build_connection_target(f"postgresql://u@h/db?sslmode={mode}", DatabaseSettings())
    assert target.connect_args["ssl"] == mode and target.ssl_mode == mode


def _self_signed_ca(tmp_path: Path) -> Path:
    key, cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=hacs-test-ca",
        ],
        check=True,
        capture_output=True,
    )
    return cert


@pytest.mark.parametrize(("mode", "checks_host"), [("verify-ca", False), ("verify-full", True)])
def test_verify_modes_build_an_ssl_context_with_the_ca(
    tmp_path: Path, mode: str, checks_host: bool
) -> None:
    ca = _self_signed_ca(tmp_path)
    target = build_connection_target(
        f"postgresql://u@h/db?sslmode={mode}&sslrootcert={ca}", DatabaseSettings()
    )
    context = target.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is checks_host


def test_verify_mode_without_ca_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    with pytest.raises(ConfigurationError, match="sslrootcert") as info:
        build_connection_target(
            "postgresql://u:topsecret@h/db?sslmode=verify-full", DatabaseSettings()
        )
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:topsecret@h/db?sslmode=sometimes", "sslmode"),
        ("mysql://u:topsecret@h/db", "scheme"),
        ("not a url at all :// topsecret", "not a valid URL"),
        ("postgresql://u:topsecret@h/db?bogus=1", "bogus"),
    ],
)
def test_malformed_urls_name_the_problem_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        build_connection_target(url, DatabaseSettings())
    assert "topsecret" not in str(info.value)


def test_mask_url_never_shows_a_password() -> None:
    assert mask_url("postgresql://hacs:s3cret@db:5432/x") == "postgresql://hacs:***@db:5432/x"
    assert "s3cret" not in mask_url("postgresql://hacs@db/x?password=s3cret")
    assert mask_url(None) == "<embedded>"


def test_settings_accept_the_guides_production_config() -> None:
    settings = DatabaseSettings(**PRODUCTION_CONFIG)  # type: ignore[arg-type]
    assert settings.model_dump(include=set(PRODUCTION_CONFIG)) == PRODUCTION_CONFIG


def test_settings_defaults_and_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = DatabaseSettings()
    assert (defaults.connection_pool_size, defaults.ssl_mode, defaults.application_name) == (
        20,
        "prefer",
        "hacs",
    )
    monkeypatch.setenv("HACS_DB_CONNECTION_POOL_SIZE", "7")
    monkeypatch.setenv("HACS_DB_SSL_MODE", "REQUIRE")
    settings = load_settings()
    assert (settings.connection_pool_size, settings.ssl_mode) == (7, "require")


def test_bad_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="connection_pool_size"):
        load_settings(connection_pool_size=0)
    with pytest.raises(ConfigurationError, match="ssl_mode"):
        load_settings(ssl_mode="sometimes")
    with pytest.raises(ConfigurationError, match="pool_sise"):
        load_settings(pool_sise=3)
    monkeypatch.setenv("HACS_DB_STATEMENT_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="statement_timeout"):
        load_settings()


async def test_settings_are_applied_to_every_connection(database_url: str) -> None:
    settings = load_settings(
        statement_timeout=1234,
        idle_in_transaction_session_timeout=5678,
        application_name="hacs-test-app",
    )
    engine = await get_engine(await resolve_database(database_url, settings))
    async with engine.connect() as conn:
        values = (
            await conn.execute(
                text(
                    "SELECT current_setting('statement_timeout'), "
                    "current_setting('idle_in_transaction_session_timeout'), "
                    "current_setting('application_name'), current_setting('TimeZone')"
                )
            )
        ).one()
    assert tuple(values) == ("1234ms", "5678ms", "hacs-test-app", "UTC")
    await engine.dispose()


async def test_pgbouncer_switch_turns_prepared_statements_off(database_url: str) -> None:
    settings = load_settings(prepared_statements=False)
    resolved = await resolve_database(database_url, settings)
    assert resolved.target.connect_args["statement_cache_size"] == 0
    engine = await get_engine(resolved)
    assert engine.url.query["prepared_statement_cache_size"] == "0"
    async with engine.connect() as conn:
        for _ in range(3):
            assert await conn.scalar(text("SELECT 1 + :x"), {"x": 1}) == 2
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None and driver._stmt_cache.get_max_size() == 0
    await engine.dispose()


def test_asyncio_run_several_times_reuses_nothing_across_loops(database_url: str) -> None:
    """The guide calls asyncio.run more than once: each loop gets and disposes its own engine."""
    tag = f"hacs-loop-{uuid.uuid4().hex[:8]}"
    script = f"""
import asyncio
from hacs_models import Actor, Patient
from hacs_persistence.adapter import create_postgres_adapter
from tests.conftest import db_connect
actor = Actor(name="w", role="system", permissions=["patient:write"])
async def once():
    adapter = await create_postgres_adapter({database_url!r}, application_name={tag!r})
    saved = await adapter.save(Patient(full_name="Loop Test"), actor)
    return (await adapter.read(Patient, saved.id, actor)).full_name
async def open_connections():
    conn = await db_connect({database_url!r})
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", {tag!r})
    finally:
        await conn.close()
print(asyncio.run(once()), asyncio.run(once()), asyncio.run(open_connections()))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    # Both runs worked, and each loop's engine was disposed with it while the process lives on.
    assert result.stdout.strip() == "Loop Test Loop Test 0"
    assert "Event loop is closed" not in result.stderr
    assert "Traceback" not in result.stderr


# -- which .env is read ------------------------------------------------------------------------


def test_a_dotenv_in_a_parent_directory_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgresql://planted@attacker.example/db\nHACS_DB_CONNECTION_POOL_SIZE=3\n"
    )
    child = tmp_path / "project" / "src"
    child.mkdir(parents=True)
    monkeypatch.chdir(child)
    assert resolve_database_url() == (None, "embedded")
    assert load_settings().connection_pool_size == 20


def test_the_dotenv_of_the_working_directory_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "HACS_DATABASE_URL=postgresql://app@db/clinic\nHACS_DB_CONNECTION_POOL_SIZE=4\n"
    )
    monkeypatch.chdir(tmp_path)
    assert resolve_database_url() == ("postgresql://app@db/clinic", ".env:HACS_DATABASE_URL")
    assert load_settings().connection_pool_size == 4


def test_hacs_env_file_names_the_one_dotenv_to_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://cwd@db/cwd\n")
    chosen = tmp_path / "config" / "hacs.env"
    chosen.parent.mkdir()
    chosen.write_text("DATABASE_URL=postgresql://app@db/chosen\nHACS_DB_CONNECTION_POOL_SIZE=5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HACS_ENV_FILE", str(chosen))
    assert resolve_database_url() == ("postgresql://app@db/chosen", ".env:DATABASE_URL")
    assert load_settings().connection_pool_size == 5


def test_a_missing_hacs_env_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HACS_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigurationError, match="HACS_ENV_FILE"):
        resolve_database_url()
    with pytest.raises(ConfigurationError, match="HACS_ENV_FILE"):
        load_settings()


# -- the password file -------------------------------------------------------------------------


def test_password_file_supplies_the_password(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(" pa ss@/:w0rd \n")  # spaces and reserved characters are the password's
    target = build_connection_target(
        "postgresql://app@db.example.org/clinic", DatabaseSettings(password_file=secret)
    )
    assert target.url.password == " pa ss@/:w0rd "
    assert "w0rd" not in target.masked and "w0rd" not in repr(target)


def test_password_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("from-file\n")
    monkeypatch.setenv("HACS_DB_PASSWORD_FILE", str(secret))
    target = build_connection_target("postgresql://app@db/clinic", load_settings())
    assert target.url.password == "from-file"


@pytest.mark.parametrize(
    ("content", "url", "message"),
    [
        (None, "postgresql://app@db/clinic", "Cannot read the password file"),
        ("", "postgresql://app@db/clinic", "is empty"),
        ("from-file", "postgresql://app:in-url-pw@db/clinic", "remove the password from the URL"),
    ],
    ids=["missing", "empty", "both"],
)
def test_password_file_problems_are_configuration_errors(
    tmp_path: Path, content: str | None, url: str, message: str
) -> None:
    secret = tmp_path / "db-password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as info:
        build_connection_target(url, DatabaseSettings(password_file=secret))
    assert "in-url-pw" not in str(info.value) and "from-file" not in str(info.value)
    assert "HACS_DB_PASSWORD_FILE" in str(info.value)
