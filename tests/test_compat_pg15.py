"""PostgreSQL 15 (Debian's, from the machine image): what hacs promises there, on a real server.

PostgreSQL 15 without pgvector cannot hold the hacs schema, but hacs must still connect with its
settings, report the server and the schema state, and refuse to migrate with a message that says
why and how to fix it, without changing anything. TLS on PostgreSQL 15 is proven in test_tls.py.

These tests never skip: when /usr/lib/postgresql/15/bin/postgres is missing they fail, saying that
the machine image is expected to provide it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.config import load_settings
from hacs_persistence.db.engine import dispose_engine, get_engine, resolve_database
from hacs_persistence.errors import (
    DatabaseTimeoutError,
    SchemaNotMigratedError,
    translate_database_error,
)
from hacs_persistence.migrations import MigrationError, get_migration_status, run_migration, upgrade
from hacs_persistence.ops.inspection import verify_database_environment
from tests.pgservers import SYSTEM_PG15_BIN, PgServer, require_system_pg15, running_server

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

DATABASE = "hacs_pg15"
SUPERUSER_PASSWORD = "pg15-Super p@ss%-Q7"

# Everything a migration could leave behind, outside the system catalogs.
_SNAPSHOT = {
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname <> 'information_schema' ORDER BY 1",
    "relations": "SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\\_%' "
    "AND n.nspname <> 'information_schema' ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text FROM pg_proc p "
    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT LIKE 'pg\\_%' "
    "AND n.nspname <> 'information_schema' ORDER BY 1",
    "types": "SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n "
    "ON n.oid = t.typnamespace WHERE n.nspname NOT LIKE 'pg\\_%' "
    "AND n.nspname <> 'information_schema' ORDER BY 1",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


@pytest.fixture(scope="module")
def pg15() -> Iterator[PgServer]:
    with running_server(require_system_pg15(), superuser_password=SUPERUSER_PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
async def pg15_url(pg15: PgServer) -> AsyncIterator[str]:
    """A TCP URL (scram-sha-256 password) of an empty database on the PostgreSQL 15 server."""
    conn = await pg15.connect()
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    yield pg15.url("postgres", SUPERUSER_PASSWORD, DATABASE)


async def snapshot(pg15: PgServer) -> dict[str, list[str]]:
    conn = await pg15.connect(DATABASE)
    try:
        return {name: [r[0] for r in await conn.fetch(sql)] for name, sql in _SNAPSHOT.items()}
    finally:
        await conn.close()


def test_system_postgresql_15_is_in_the_machine_image() -> None:
    assert require_system_pg15() == SYSTEM_PG15_BIN


async def test_pg15_server_really_is_postgresql_15(pg15: PgServer) -> None:
    conn = await pg15.connect()
    try:
        assert int(await conn.fetchval("SHOW server_version_num")) // 10000 == 15
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
    finally:
        await conn.close()
    assert available == 0, "this server must lack pgvector for the migration tests to mean much"


async def test_settings_and_url_connect_to_pg15_with_session_settings_applied(
    pg15_url: str,
) -> None:
    settings = load_settings(
        application_name="hacs-pg15",
        statement_timeout=1234,
        idle_in_transaction_session_timeout=5678,
        connection_pool_size=2,
    )
    resolved = await resolve_database(pg15_url, settings)
    engine = await get_engine(resolved)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT current_setting('application_name'), "
                        "current_setting('statement_timeout'), "
                        "current_setting('idle_in_transaction_session_timeout'), "
                        "current_setting('TimeZone'), "
                        "(SELECT application_name FROM pg_stat_activity "
                        "WHERE pid = pg_backend_pid()), current_user, current_database()"
                    )
                )
            ).one()
    finally:
        await dispose_engine(engine)
    assert tuple(row) == ("hacs-pg15", "1234ms", "5678ms", "UTC", "hacs-pg15", "postgres", DATABASE)


async def test_url_forms_and_application_name_parameter_work_on_pg15(pg15: PgServer) -> None:
    urls = {
        "postgres://": pg15.url("postgres", SUPERUSER_PASSWORD, DATABASE).replace(
            "postgresql://", "postgres://", 1
        ),
        "asyncpg": pg15.url("postgres", SUPERUSER_PASSWORD, DATABASE).replace(
            "postgresql://", "postgresql+asyncpg://", 1
        ),
        "socket": pg15.socket_url("postgres", DATABASE) + "&application_name=from-url",
        "sslmode=disable": pg15.url(
            "postgres", SUPERUSER_PASSWORD, DATABASE, sslmode="disable", application_name="u"
        ),
    }
    seen: dict[str, tuple[Any, ...]] = {}
    for name, url in urls.items():
        resolved = await resolve_database(url)
        engine = await get_engine(resolved)
        try:
            async with engine.connect() as conn:
                seen[name] = tuple(
                    (
                        await conn.execute(
                            text("SELECT current_database(), current_setting('application_name')")
                        )
                    ).one()
                )
        finally:
            await dispose_engine(engine)
    assert seen == {
        "postgres://": (DATABASE, "hacs"),
        "asyncpg": (DATABASE, "hacs"),
        "socket": (DATABASE, "from-url"),
        "sslmode=disable": (DATABASE, "u"),
    }


async def test_statement_timeout_is_enforced_on_pg15_and_translated(pg15_url: str) -> None:
    resolved = await resolve_database(pg15_url, load_settings(statement_timeout=200))
    engine = await get_engine(resolved)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT pg_sleep(5)"))
    finally:
        await dispose_engine(engine)
    assert isinstance(translate_database_error(caught.value), DatabaseTimeoutError)


async def test_verify_database_environment_reports_postgresql_15_without_pgvector(
    pg15_url: str,
) -> None:
    report = await verify_database_environment(pg15_url)
    test = report["connection_test"]
    assert test["success"] is True, report
    assert test["postgresql_version"].startswith("PostgreSQL 15."), test
    assert test["pgvector_version"] is None
    assert test["database_name"] == DATABASE
    assert set(report["hacs_schemas"].values()) == {False}
    assert any("pgvector is not enabled" in r for r in report["recommendations"])
    assert SUPERUSER_PASSWORD not in repr(report)


async def test_migration_status_on_pg15_is_incomplete_and_pgvector_disabled(
    pg15_url: str,
) -> None:
    status = await get_migration_status(pg15_url)
    assert "error" not in status, status
    assert status["migration_complete"] is False
    assert status["pgvector_enabled"] is False
    assert status["current_revision"] is None
    assert status["total_tables"] == 0
    assert status["schemas_created"] == []
    assert len(status["missing_tables"]) == status["expected_tables"] > 0


async def test_adapter_on_pg15_says_the_schema_is_not_migrated(pg15_url: str) -> None:
    with pytest.raises(SchemaNotMigratedError, match="hacs db upgrade"):
        await create_postgres_adapter(pg15_url)


async def test_migrating_pg15_fails_saying_pgvector_is_missing_and_changes_nothing(
    pg15: PgServer, pg15_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await snapshot(pg15)
    assert before["extensions"] == ["plpgsql"]

    with caplog.at_level(logging.ERROR, logger="hacs_persistence.migrations"):
        assert await run_migration(pg15_url) is False
    assert "no 'vector' extension" in caplog.text

    with pytest.raises(MigrationError) as caught:
        await upgrade(pg15_url)
    message = str(caught.value)
    assert "no 'vector' extension" in message, message
    assert "Install pgvector 0.8" in message  # how to get it
    assert "postgresql-NN-pgvector" in message
    assert "Nothing was changed" in message
    assert SUPERUSER_PASSWORD not in message

    after = await snapshot(pg15)
    assert after == before
    assert after["schemas"] == ["public"]
    assert after["relations"] == []
    conn = await pg15.connect(DATABASE)
    try:
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = 'alembic_version' "
            "OR relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'hacs%')"
        )
        hacs_schemas = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'hacs%'"
        )
    finally:
        await conn.close()
    assert (leftovers, hacs_schemas) == (0, 0)


async def test_pg15_migration_as_a_non_superuser_owner_also_names_missing_pgvector(
    pg15: PgServer,
) -> None:
    """The missing extension is reported before any privilege question, and nothing changes."""
    conn = await pg15.connect()
    try:
        await conn.execute("CREATE ROLE hacs_pg15_owner LOGIN")
        await conn.execute("CREATE DATABASE hacs_pg15_owned OWNER hacs_pg15_owner")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="no 'vector' extension"):
        await upgrade(pg15.socket_url("hacs_pg15_owner", "hacs_pg15_owned"))
    conn = await pg15.connect("hacs_pg15_owned")
    try:
        schemas = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'hacs%'"
        )
    finally:
        await conn.close()
    assert schemas == 0
