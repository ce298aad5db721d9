"""A unit of work: one pooled connection, optionally one transaction, and error translation.

The engine runs in autocommit mode; a unit that needs atomicity across statements opens a
transaction on the asyncpg connection itself. A single audited statement needs none: PostgreSQL
runs one statement atomically, so a save or a read is one round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from hacs_persistence.db.executor import compiled
from hacs_persistence.errors import translate_database_error

__all__ = ["DRIVER_ERRORS", "Unit", "open_unit"]

# Errors that mean "the database said no" or "the connection broke"; anything else is a bug.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError, SQLAlchemyError)
try:  # asyncpg is a hard dependency; the import only keeps the tuple definition in one place.
    import asyncpg

    DRIVER_ERRORS = (*DRIVER_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)
except ImportError:  # pragma: no cover
    pass


class Unit:
    """A connection in use: the SQLAlchemy connection and the asyncpg connection beneath it."""

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self.conn = conn
        self.driver = driver
        # Tasks started inside a transaction share its connection; one statement at a time.
        self.lock = asyncio.Lock()

    async def fetchrow(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        """Run a hot-path statement as a prepared statement; the first row or None."""
        prepared = compiled(statement)
        try:
            async with self.lock:
                return await self.driver.fetchrow(prepared.sql, *prepared.arguments(params))
        except DRIVER_ERRORS as exc:
            raise translate_database_error(exc) from exc

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
        """Run a cached statement as a prepared statement; all rows."""
        prepared = compiled(statement)
        try:
            async with self.lock:
                return list(await self.driver.fetch(prepared.sql, *prepared.arguments(params)))
        except DRIVER_ERRORS as exc:
            raise translate_database_error(exc) from exc

    async def execute(self, statement: Any, params: Any = None) -> Any:
        """Run any statement through SQLAlchemy (rich queries, DDL-free utility statements)."""
        try:
            async with self.lock:
                return await self.conn.execute(statement, params)
        except DRIVER_ERRORS as exc:
            raise translate_database_error(exc) from exc


@asynccontextmanager
async def open_unit(engine: AsyncEngine, *, transactional: bool) -> AsyncIterator[Unit]:
    """Check out a connection; with ``transactional`` run the block in one transaction."""
    try:
        conn = await engine.connect()
        raw = await conn.get_raw_connection()
    except DRIVER_ERRORS as exc:
        raise translate_database_error(exc) from exc
    unit = Unit(conn, raw.driver_connection)
    try:
        if not transactional:
            yield unit
            return
        transaction = unit.driver.transaction()
        try:
            await transaction.start()
        except DRIVER_ERRORS as exc:
            raise translate_database_error(exc) from exc
        try:
            yield unit
        except BaseException:
            with suppress(*DRIVER_ERRORS):
                await transaction.rollback()
            raise
        try:
            await transaction.commit()
        except DRIVER_ERRORS as exc:
            raise translate_database_error(exc, during_commit=True) from exc
    finally:
        with suppress(*DRIVER_ERRORS):
            await conn.close()
