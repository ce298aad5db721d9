"""Token revocations in the database: revoke (audited) and the list verification consults.

Rows live in ``hacs_admin.token_revocations`` (revision 0007). :func:`revoke_token` revokes one
access token by its ``jti``; :func:`revoke_actor` revokes every token of an actor issued before a
time ("deactivate this user"). Both need ``admin:*`` and write a ``token.revoke`` audit row
through the adapter's gate (a refusal is audited as denied).

:class:`DatabaseRevocationList` is the ``hacs_auth`` revocation list over that table: verification
reads a snapshot at most ``ttl`` old (``HACS_REVOCATION_TTL``, default 30 s), so a revocation
reaches every process within that staleness, and the revoking process at once. When the table
cannot be read, every token is refused (fail closed). :func:`enable_revocation_checks` installs it
for the whole process, so ``@require_permission`` and ``get_auth_manager()`` consult it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hacs_auth import Actor, CachedRevocationList, RevocationSnapshot, get_revocation_list
from hacs_auth.revocation import set_revocation_list
from hacs_persistence.access.gate import AccessGate
from hacs_persistence.db.config import load_settings
from hacs_persistence.db.engine import ResolvedDatabase, get_engine, one_off_connection
from hacs_persistence.db.unit import open_unit
from hacs_persistence.errors import PermissionDeniedError, ResourceValidationError, translating
from hacs_persistence.schema.admin import TokenRevocationTable


class Gated(Protocol):
    """What a revocation needs of an adapter (``PostgreSQLAdapter`` is one): its engine and its
    gate. A protocol, so this layer does not import the adapters built on it."""

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def gate(self) -> AccessGate: ...


__all__ = [
    "LOAD_TIMEOUT_SECONDS",
    "REVOKE_ACTION",
    "DatabaseRevocationList",
    "enable_revocation_checks",
    "load_snapshot",
    "revoke_actor",
    "revoke_token",
]

REVOKE_ACTION: Final = "token.revoke"
# A verification waits at most this long for the table; past it the token is refused.
LOAD_TIMEOUT_SECONDS: Final = 10.0
_MAX_TEXT: Final = 256

_TABLE: Final[Table] = TokenRevocationTable.__table__  # type: ignore[assignment]
_REVOKED_JTIS: Final = select(_TABLE.c.jti).where(_TABLE.c.jti.is_not(None))
_ACTOR_CUTOFFS: Final = (
    select(_TABLE.c.actor_id, func.max(_TABLE.c.issued_before))
    .where(_TABLE.c.actor_id.is_not(None))
    .group_by(_TABLE.c.actor_id)
)


async def load_snapshot(conn: AsyncConnection) -> RevocationSnapshot:
    """Every revoked ``jti`` and, per actor, the latest cutoff, read on ``conn``."""
    jtis = frozenset((await conn.execute(_REVOKED_JTIS)).scalars())
    actors = {row[0]: row[1].timestamp() for row in await conn.execute(_ACTOR_CUTOFFS)}
    return RevocationSnapshot(jtis, actors)


class DatabaseRevocationList(CachedRevocationList):
    """The revocation list of one database, cached for ``ttl``.

    Args:
        database_url: The database (default: as the library resolves it, see configuration).
        ttl: Staleness; default ``$HACS_REVOCATION_TTL`` seconds, else 30 s.
        clock: Monotonic seconds deciding staleness (tests pass a fake one instead of sleeping).
        settings: ``DatabaseSettings`` fields, as for ``create_postgres_adapter``.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        ttl: timedelta | None = None,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        super().__init__(ttl, clock=clock)
        self._url = database_url
        self._settings = load_settings(**settings)
        self._resolved: ResolvedDatabase | None = None

    async def _database(self) -> ResolvedDatabase:
        if self._resolved is None:
            from hacs_persistence.db.engine import resolve_database

            self._resolved = await resolve_database(self._url, self._settings)
        return self._resolved

    async def load_async(self) -> RevocationSnapshot:
        """Read the table through the pooled engine of the running loop."""
        async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
            engine = await get_engine(await self._database())
            with translating():
                async with engine.connect() as conn:
                    return await load_snapshot(conn)

    async def _load_unpooled(self) -> RevocationSnapshot:
        async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
            async with one_off_connection(await self._database()) as conn:
                return await load_snapshot(conn)

    def load(self) -> RevocationSnapshot:
        """Read the table from synchronous code, on a loop of its own in a worker thread.

        A thread because the caller may itself run inside an event loop (a plain ``def``
        decorated with ``@require_permission`` called from async code).
        """
        pool = ThreadPoolExecutor(1, thread_name_prefix="hacs-revocations")
        try:
            return pool.submit(asyncio.run, self._load_unpooled()).result()
        finally:
            pool.shutdown(wait=False)


def enable_revocation_checks(
    database_url: str | None = None, *, ttl: timedelta | None = None, **settings: Any
) -> DatabaseRevocationList:
    """Make every verification in this process consult the database's revocations.

    Returns:
        The installed list (``hacs_auth.set_revocation_list(None)`` turns it off again).
    """
    revocations = DatabaseRevocationList(database_url, ttl=ttl, **settings)
    set_revocation_list(revocations)
    return revocations


def _checked_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise ResourceValidationError(
            f"{what} must be a non-empty string of at most {_MAX_TEXT} characters; pass the "
            f"value shown for the token (its 'jti' claim) or the actor's id."
        )
    return value.strip()


def _checked_reason(reason: str | None) -> str | None:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 4 * _MAX_TEXT):
        raise ResourceValidationError(
            f"reason must be a string of at most {4 * _MAX_TEXT} characters; shorten it."
        )
    return reason


async def _authorize(adapter: Gated, acting: Actor, resource_type: str) -> None:
    gate = adapter.gate
    await gate.require_admin(acting, REVOKE_ACTION, resource_type, None)
    if acting.patient_ids is not None:
        # Revocation reaches actors of every patient: not for an actor limited to some.
        await gate.record(acting, REVOKE_ACTION, resource_type, None, "denied", "patient scope")
        raise PermissionDeniedError(
            f"Actor {acting.id} is limited to its patients; revoking tokens spans all.",
            actor_id=acting.id,
            permission="admin:*",
        )


async def revoke_token(
    adapter: Gated,
    jti: str,
    actor: Actor | None = None,
    *,
    reason: str | None = None,
) -> None:
    """Revoke one access token by its ``jti`` claim (idempotent); needs ``admin:*``.

    Every process refuses the token within its revocation staleness, this one at once.

    Raises:
        ResourceValidationError: If ``jti`` is empty or too long.
        PermissionDeniedError: If the acting actor lacks ``admin:*`` (audited as denied).
    """
    jti = _checked_text(jti, "jti")
    reason = _checked_reason(reason)
    acting = adapter.gate.actor(actor)
    await _authorize(adapter, acting, "AccessToken")
    statement = (
        insert(_TABLE)
        .values(jti=jti, revoked_by=acting.id, reason=reason)
        .on_conflict_do_nothing(index_elements=[_TABLE.c.jti])
    )
    async with open_unit(adapter.engine, transactional=False) as unit:
        await unit.execute(statement)
    local = get_revocation_list()
    if isinstance(local, CachedRevocationList):
        local.note_jti(jti)
    await adapter.gate.record(acting, REVOKE_ACTION, "AccessToken", jti, "success", "jti")


async def revoke_actor(
    adapter: Gated,
    actor_id: str,
    actor: Actor | None = None,
    *,
    issued_before: datetime | None = None,
    reason: str | None = None,
) -> datetime:
    """Revoke every token of ``actor_id`` issued before ``issued_before`` (default: now).

    Tokens issued later (after the actor is re-enabled upstream) are accepted again. Needs
    ``admin:*``; every process refuses the tokens within its revocation staleness.

    Returns:
        The cutoff stored (the database's clock when ``issued_before`` is omitted).

    Raises:
        ResourceValidationError: If ``actor_id`` is empty or too long, or the time is naive.
        PermissionDeniedError: If the acting actor lacks ``admin:*`` (audited as denied).
    """
    actor_id = _checked_text(actor_id, "actor_id")
    reason = _checked_reason(reason)
    if issued_before is not None and issued_before.tzinfo is None:
        raise ResourceValidationError(
            "issued_before must be timezone-aware (e.g. datetime.now(UTC)); a naive time is "
            "ambiguous."
        )
    acting = adapter.gate.actor(actor)
    await _authorize(adapter, acting, "Actor")
    cutoff: Any = func.now() if issued_before is None else issued_before.astimezone(UTC)
    statement = (
        insert(_TABLE)
        .values(actor_id=actor_id, issued_before=cutoff, revoked_by=acting.id, reason=reason)
        .returning(_TABLE.c.issued_before)
    )
    async with open_unit(adapter.engine, transactional=False) as unit:
        stored: datetime = (await unit.execute(statement)).scalar_one()
    local = get_revocation_list()
    if isinstance(local, CachedRevocationList):
        local.note_actor(actor_id, stored)
    await adapter.gate.record(acting, REVOKE_ACTION, "Actor", actor_id, "success", "actor")
    return stored
