"""One error translator: ``translating()`` around every database call, the caller's SQL included.

Real errors from the real database: a unique violation, a statement timeout, a missing table. The
SQL the caller runs on the connection ``adapter.transaction()`` yields, or on the session of
``repositories.session()``, fails with this package's errors like the adapter's own calls.
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, NoResultFound

from hacs_models import Actor
from hacs_persistence.adapters.factory import create_postgres_adapter
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.db.engine import one_off_connection, resolve_database
from hacs_persistence.errors import (
    DRIVER_ERRORS,
    DatabaseTimeoutError,
    HacsPersistenceError,
    SchemaNotMigratedError,
    UniqueViolationError,
    sqlstate_of,
    translating,
)
from hacs_persistence.query.repositories import session_scope
from tests.factories import make_patient

ADMIN = Actor(name="admin", role="admin", permissions=["admin:*"])
HACS = Path(__file__).resolve().parents[1] / "hacs"


async def _duplicate_key(conn: Any) -> None:
    await conn.execute(text("CREATE TEMP TABLE keys (k int PRIMARY KEY)"))
    await conn.execute(text("INSERT INTO keys VALUES (1), (1)"))


@pytest.fixture
async def adapter(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    created = await create_postgres_adapter(database_url)
    try:
        yield created
    finally:
        await created.close()


async def test_the_callers_sql_in_a_transaction_is_translated(adapter: PostgreSQLAdapter) -> None:
    await adapter.save(make_patient(), ADMIN)
    with pytest.raises(UniqueViolationError) as caught:
        async with adapter.transaction() as conn:
            await _duplicate_key(conn)
    # Chained to the driver's error: the SQLSTATE is still there for a caller that wants it.
    assert sqlstate_of(caught.value) == "23505"
    assert isinstance(caught.value.__cause__, DBAPIError)


async def test_a_nested_transaction_block_sees_the_translated_error(
    adapter: PostgreSQLAdapter,
) -> None:
    await adapter.save(make_patient(), ADMIN)
    seen: list[BaseException] = []
    with pytest.raises(UniqueViolationError):
        async with adapter.transaction():
            try:
                async with adapter.transaction() as conn:
                    await _duplicate_key(conn)
            except HacsPersistenceError as exc:
                seen.append(exc)
                raise
    assert len(seen) == 1


async def test_the_transaction_rolls_back_what_the_callers_sql_did(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    with pytest.raises(SchemaNotMigratedError):
        async with adapter.transaction() as conn:
            await adapter.save(make_patient(), ADMIN)
            await conn.execute(text("SELECT * FROM hacs_core.no_such_table"))
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients") == 0


async def test_the_callers_sql_on_a_repository_session_is_translated(database_url: str) -> None:
    with pytest.raises(SchemaNotMigratedError):
        async with session_scope(database_url) as session:
            await session.execute(text("SELECT * FROM hacs_core.no_such_table"))


async def test_one_off_connections_translate_the_callers_sql(database_url: str) -> None:
    resolved = await resolve_database(database_url)
    with pytest.raises(DatabaseTimeoutError, match="statement_timeout"):
        async with one_off_connection(resolved) as conn:
            await conn.execute(text("SET statement_timeout = 50"))
            await conn.execute(text("SELECT pg_sleep(1)"))


async def test_translating_works_with_and_async_with(db: asyncpg.Connection) -> None:
    with pytest.raises(SchemaNotMigratedError) as sync_form, translating():
        await db.fetch("SELECT * FROM hacs_core.no_such_table")
    with pytest.raises(SchemaNotMigratedError) as async_form:
        async with translating():
            await db.fetch("SELECT * FROM hacs_core.no_such_table")
    for caught in (sync_form, async_form):
        assert isinstance(caught.value.__cause__, asyncpg.UndefinedTableError)


async def test_translating_leaves_other_errors_alone(database_url: str) -> None:
    resolved = await resolve_database(database_url)
    # SQLAlchemy's own "no row" is the caller's business, not a database error.
    with pytest.raises(NoResultFound):
        async with one_off_connection(resolved) as conn:
            (await conn.execute(text("SELECT 1 WHERE false"))).one()
    with pytest.raises(KeyError), translating():
        raise KeyError("not a database error")


def test_driver_errors_cover_what_every_former_site_caught() -> None:
    import sqlalchemy.exc

    for error in (
        sqlalchemy.exc.DBAPIError,
        sqlalchemy.exc.SQLAlchemyError,
        sqlalchemy.exc.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        OSError,
        ConnectionResetError,
        TimeoutError,
    ):
        assert issubclass(error, DRIVER_ERRORS), error


def _calls(name: str) -> list[str]:
    found = []
    for path in sorted(HACS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called == name:
                    found.append(f"{path.relative_to(HACS)}:{node.lineno}")
    return found


def test_database_errors_are_translated_in_one_place() -> None:
    # The hand-written `except ...: raise translate_database_error(exc)` sites are gone: only
    # errors.py (translating itself) and the report helpers that turn a caught error into text.
    sites = _calls("translate_database_error")
    allowed = {"hacs_persistence/errors.py", "hacs_persistence/db/engine.py", "hacs_cli/common.py"}
    assert all(site.split(":")[0] in allowed for site in sites), sites
