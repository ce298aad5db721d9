"""A unit of work: one pooled connection, optionally one transaction, and error translation.

The engine runs in autocommit mode; a unit that needs atomicity across statements opens a
transaction on the asyncpg connection itself. A single audited statement needs none: PostgreSQL
runs one statement atomically, so a save or a read is one round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from hacs_persistence.db.executor import compiled
from hacs_persistence.errors import DRIVER_ERRORS, ServerEndpoint, translating

# DRIVER_ERRORS is defined in hacs_persistence.errors; re-exported here for older imports.
__all__ = ["DRIVER_ERRORS", "Unit", "open_unit"]


class Unit:
    """A connection in use: the SQLAlchemy connection and the asyncpg connection beneath it.

    ``replica``: the (masked) read replica it is on, None on the primary; a replica is read-only,
    so statements that write their own audit row must not run there.
    """

    def __init__(self, conn: AsyncConnection, driver: Any, *, replica: str | None = None) -> None:
        self.conn = conn
        self.driver = driver
        self.replica = replica
        # Tasks started inside a transaction share its connection; one statement at a time.
        self.lock = asyncio.Lock()

    async def fetchrow(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        """Run a hot-path statement as a prepared statement; the first row or None."""
        prepared = compiled(statement)
        with translating():
            async with self.lock:
                return await self.driver.fetchrow(prepared.sql, *prepared.arguments(params))

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
        """Run a cached statement as a prepared statement; all rows."""
        prepared = compiled(statement)
        with translating():
            async with self.lock:
                return list(await self.driver.fetch(prepared.sql, *prepared.arguments(params)))

    async def execute(self, statement: Any, params: Any = None) -> Any:
        """Run any statement through SQLAlchemy (rich queries, DDL-free utility statements)."""
        with translating():
            async with self.lock:
                return await self.conn.execute(statement, params)


@asynccontextmanager
async def open_unit(
    engine: AsyncEngine,
    *,
    transactional: bool,
    endpoint: ServerEndpoint | None = None,
    after_commit: Callable[[Unit], Awaitable[None]] | None = None,
) -> AsyncIterator[Unit]:
    """Check out a connection; with ``transactional`` run the block in one transaction.

    ``endpoint``: where the engine connects, so that a failure to connect names the server.
    ``after_commit``: run on the same connection once the block has committed (the read
    replicas note the write's WAL position there); never when the block failed.
    """
    with translating(endpoint=endpoint):
        conn = await engine.connect()
        raw = await conn.get_raw_connection()
    unit = Unit(conn, raw.driver_connection)
    try:
        if not transactional:
            yield unit
            if after_commit is not None:
                await after_commit(unit)
            return
        transaction = unit.driver.transaction()
        with translating():
            await transaction.start()
        try:
            yield unit
        except BaseException:
            with suppress(*DRIVER_ERRORS):
                await transaction.rollback()
            raise
        with translating(during_commit=True):
            await transaction.commit()
        if after_commit is not None:
            await after_commit(unit)
    finally:
        with suppress(*DRIVER_ERRORS):
            await conn.close()
