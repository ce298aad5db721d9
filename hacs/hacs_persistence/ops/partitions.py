"""The monthly partitions of ``hacs_audit.audit_events`` (revision 0012), kept ahead of time.

``ensure_audit_partitions`` (``hacs db maintain``) runs the owner's database function
``hacs_audit.ensure_audit_partitions``: it creates every missing UTC month from the oldest row of
the DEFAULT partition to ``months_ahead`` months after the current one, and moves the rows that
landed in the DEFAULT partition (a month nobody created in time) into their month, ids and all.
Idempotent: a second run creates nothing. Writes never wait for it to have run: a row of a month
without a partition lands in the DEFAULT partition. ``audit_partitions`` lists what is there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hacs_persistence.db.engine import one_off_connection, resolve_database
from hacs_persistence.errors import (
    HacsPersistenceError,
    PermissionDeniedError,
    ResourceValidationError,
    SchemaNotMigratedError,
    sqlstate_of,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_SECONDS",
    "DEFAULT_MONTHS_AHEAD",
    "AuditPartition",
    "MaintainReport",
    "audit_partitions",
    "ensure_audit_partitions",
]

DEFAULT_MONTHS_AHEAD = 3
DEFAULT_LOCK_TIMEOUT_SECONDS = 10.0
_FUNCTION = "hacs_audit.ensure_audit_partitions(integer, timestamptz)"
_ENSURE = text(
    "SELECT partition_name, moved_rows FROM hacs_audit.ensure_audit_partitions(:ahead, NULL)"
)
_PARTITIONS = text(
    """
    SELECT c.relname AS name,
           substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid)
                     FROM 'FROM \\(''([^'']+)''\\)')::timestamptz AS starts,
           substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid)
                     FROM 'TO \\(''([^'']+)''\\)')::timestamptz AS ends,
           (SELECT count(*) FROM hacs_audit.audit_events_default) AS default_rows
    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'hacs_audit.audit_events'::regclass
    ORDER BY starts NULLS FIRST
    """
)


@dataclass(frozen=True)
class AuditPartition:
    """One partition: its name and its month (``starts``/``ends`` None for the DEFAULT one)."""

    name: str
    starts: datetime | None
    ends: datetime | None


@dataclass
class MaintainReport:
    """What a maintain run did: the partitions created, the rows moved, what is there now."""

    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    partitions: list[AuditPartition] = field(default_factory=list)
    default_rows: int = 0  # rows in the DEFAULT partition after the run (0 after any run)

    @property
    def through(self) -> datetime | None:
        """The end of the last month with a partition (exclusive)."""
        ends = [p.ends for p in self.partitions if p.ends is not None]
        return max(ends) if ends else None


async def ensure_audit_partitions(
    database_url: str | None = None,
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> MaintainReport:
    """Create the audit trail's months up to ``months_ahead`` ahead; run as the schema owner.

    Adding a month locks ``audit_events`` for a moment; writers queue behind the lock while it
    waits for the transactions using the table, so it waits at most ``lock_timeout_seconds``
    and then gives up (``DatabaseTimeoutError``; run it again later), creating nothing.
    Raises ``PermissionDeniedError`` for a role that may not run the owner's function,
    ``SchemaNotMigratedError`` before revision 0012.
    """
    if not 0 <= months_ahead <= 120:
        raise ResourceValidationError(
            f"months_ahead must be between 0 and 120 (got {months_ahead})."
        )
    if lock_timeout_seconds <= 0:
        raise ResourceValidationError("lock_timeout_seconds must be positive.")
    report = MaintainReport()
    async with _owner_connection(database_url) as conn:
        await conn.execute(
            text("SELECT set_config('lock_timeout', :t, true)"),
            {"t": f"{max(1, round(lock_timeout_seconds * 1000))}ms"},
        )
        for name, moved in (await conn.execute(_ENSURE, {"ahead": months_ahead})).all():
            report.created.append(str(name))
            report.moved_rows += int(moved)
        await conn.commit()
        report.partitions, report.default_rows = await _listing(conn)
    return report


async def audit_partitions(database_url: str | None = None) -> list[AuditPartition]:
    """The partitions of ``hacs_audit.audit_events``, the DEFAULT one first, then by month."""
    async with _owner_connection(database_url, require_execute=False) as conn:
        partitions, _ = await _listing(conn)
    return partitions


async def _listing(conn: AsyncConnection) -> tuple[list[AuditPartition], int]:
    rows = (await conn.execute(_PARTITIONS)).all()
    partitions = [AuditPartition(str(r.name), r.starts, r.ends) for r in rows]
    return partitions, int(rows[0].default_rows) if rows else 0


@asynccontextmanager
async def _owner_connection(
    database_url: str | None, *, require_execute: bool = True
) -> AsyncIterator[AsyncConnection]:
    """An unpooled connection of a role that may run the owner's partition function."""
    try:
        # Without a URL, the embedded server's owner: maintenance is the owner's job.
        resolved = await resolve_database(database_url, embedded_role="owner")
        async with one_off_connection(resolved) as conn:
            if not await conn.scalar(
                text("SELECT to_regprocedure(:f) IS NOT NULL"), {"f": _FUNCTION}
            ):
                raise SchemaNotMigratedError(
                    "The audit trail is not partitioned yet: run `hacs db upgrade` (revision 0012)."
                )
            if require_execute and not await conn.scalar(
                text("SELECT has_function_privilege(:f, 'EXECUTE')"), {"f": _FUNCTION}
            ):
                raise PermissionDeniedError(_OWNER_ONLY)
            yield conn
    except HacsPersistenceError as exc:
        # one_off_connection translated the driver's error; its SQLSTATE is still in the chain.
        if sqlstate_of(exc) == "42501":
            raise PermissionDeniedError(_OWNER_ONLY) from exc
        raise


_OWNER_ONLY = (
    "hacs db maintain runs a function only the schema owner may run: connect as the owner "
    "(the role that runs migrations)."
)
