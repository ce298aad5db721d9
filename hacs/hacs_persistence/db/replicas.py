"""Read replicas: reads go to a streaming standby, writes and transactions to the primary.

``HACS_READ_REPLICA_URLS`` (or ``create_postgres_adapter(read_replica_urls=...)``) names the
standbys. The adapter asks :meth:`ReadRouter.reading` for a unit for each read outside a
``transaction()``; it gets a replica's connection, or None and reads the primary. The rules:

- Health: every checkout runs one query on the replica (it replaces the pool's pre-ping): still
  in recovery, its replay position, its replay lag. A replica that cannot be reached, is not a
  standby (promoted) or lags more than ``replica_max_lag`` seconds is left out for
  ``replica_retry_interval`` seconds; the read goes to the next replica or the primary. A replica
  being down is never an error for the caller, and a statement it breaks off runs again on the
  primary (outside a similarity search's read-only transaction).
- Read your writes, per caller: the caller is the actor's id plus its ``session_id`` (an access
  token's ``jti``), so two sessions of one actor are two callers. After a caller's write commits,
  the primary's WAL insert position is remembered for that caller; a later read of the caller's
  uses a replica only once it has replayed that far (``pg_last_wal_replay_lsn()``), waiting at
  most ``read_your_writes_timeout`` seconds, else it reads the primary.
- Lag is ``now() - pg_last_xact_replay_timestamp()`` while the standby has received WAL it has
  not replayed yet, else 0 (the usual standby-side measure; it over-estimates after an idle
  primary, which only sends a read to the primary sooner).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from hacs_auth import Actor
from hacs_persistence.db.config import (
    DatabaseSettings,
    build_connection_target,
    redact,
    resolve_replica_urls,
)
from hacs_persistence.db.engine import (
    ResolvedDatabase,
    acquire_engine,
    describe_failure,
    release_engine,
)
from hacs_persistence.db.unit import Unit
from hacs_persistence.errors import (
    DRIVER_ERRORS,
    DatabaseUnavailableError,
    HacsPersistenceError,
    TransientDatabaseError,
    translating,
)

__all__ = ["PRIMARY", "CallerKey", "ReadRouter", "caller_key", "create_read_router"]

logger = logging.getLogger("hacs_persistence.replicas")

CallerKey = tuple[str, str | None]
# The name ``ReadRouter.served`` counts the reads of the primary under.
PRIMARY = "primary"
# Callers whose last write position is remembered (the oldest is forgotten past this).
MAX_CALLERS = 100_000
# How often a read waiting for its caller's write polls the replica's replay position.
_POLL_SECONDS = 0.01
# A write whose position could not be read: the caller reads the primary for this long.
_UNKNOWN = -1
_HEALTH = (
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, "
    "CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() "
    "THEN 0 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8"
)
# What a replica that is down or unreachable raises (refused, reset, timed out, a server error).
_UNREACHABLE: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, OSError, TimeoutError)
# A replica statement that failed with these runs again on the primary (a lost connection; a
# recovery conflict, SQLSTATE 40001, which the translation reports as transient).
_BROKE_OFF = (DatabaseUnavailableError, TransientDatabaseError)
_REPLAYED = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
_INSERT_LSN = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


def caller_key(actor: Actor) -> CallerKey:
    """Whose writes a read must see: the actor's id and session (see the module docstring)."""
    return (actor.id, actor.session_id)


@dataclass(eq=False)
class _Replica:
    database: ResolvedDatabase
    engine: AsyncEngine
    skip_until: float = 0.0
    replayed: int = 0

    @property
    def name(self) -> str:
        return self.database.target.masked


@dataclass(eq=False)
class _Pending:
    lsn: int
    at: float


@dataclass(eq=False)
class ReadRouter:
    """Chooses a replica (or the primary) for each read; remembers each caller's last write.

    ``served`` counts the reads handed out per replica (masked URL) and ``primary``.
    """

    replicas: list[_Replica]
    max_lag: float
    wait: float
    retry_interval: float
    served: Counter[str] = field(default_factory=Counter)
    _pending: OrderedDict[CallerKey, _Pending] = field(default_factory=OrderedDict)
    _next: int = 0

    def __repr__(self) -> str:
        return f"ReadRouter({[r.name for r in self.replicas]!r})"

    __str__ = __repr__

    @property
    def names(self) -> list[str]:
        """The replicas, masked (no password), in the configured order."""
        return [r.name for r in self.replicas]

    async def close(self) -> None:
        """Release the replicas' engines."""
        replicas, self.replicas = self.replicas, []
        for replica in replicas:
            await release_engine(replica.engine)

    # -- writes ----------------------------------------------------------------------------

    def after_write(self, callers: Iterable[CallerKey]) -> Callable[[Unit], Awaitable[None]]:
        """An ``open_unit(after_commit=...)`` hook: note the WAL position for ``callers``."""

        async def note(unit: Unit) -> None:
            keys = list(callers)
            if not keys:
                return
            try:
                lsn = int(await unit.driver.fetchval(_INSERT_LSN))
            except DRIVER_ERRORS:
                # Committed, but where is unknown: these callers read the primary for a while.
                lsn = _UNKNOWN
            self.note_write(keys, lsn)

        return note

    def note_write(self, callers: Iterable[CallerKey], lsn: int) -> None:
        """Remember that ``callers`` wrote up to ``lsn`` (their next reads must see it)."""
        now = time.monotonic()
        for key in callers:
            previous = self._pending.pop(key, None)
            if previous is not None and previous.lsn != _UNKNOWN and lsn != _UNKNOWN:
                lsn = max(lsn, previous.lsn)
            self._pending[key] = _Pending(lsn, now)
            while len(self._pending) > MAX_CALLERS:
                self._pending.popitem(last=False)

    def _needed(self, caller: CallerKey | None) -> int | None:
        """The position a caller's read must see; -1: read the primary; None: anything goes."""
        pending = self._pending.get(caller) if caller is not None else None
        if pending is None:
            return None
        if pending.lsn == _UNKNOWN and time.monotonic() - pending.at > self.max_lag:
            del self._pending[caller]  # type: ignore[arg-type]
            return None
        return pending.lsn

    # -- reads -----------------------------------------------------------------------------

    @asynccontextmanager
    async def reading(
        self,
        caller: CallerKey | None,
        *,
        transactional: bool = False,
        primary: Callable[[], AbstractAsyncContextManager[Unit]] | None = None,
    ) -> AsyncIterator[Unit | None]:
        """A unit on a replica fit for ``caller``'s read, or None: read the primary.

        ``primary`` opens a unit on the primary: a statement of a non-transactional unit that
        the replica breaks off (connection lost, a recovery conflict) then runs again there.
        """
        chosen = await self._checkout(caller)
        if chosen is None:
            self.served[PRIMARY] += 1
            yield None
            return
        replica, conn = chosen
        self.served[replica.name] += 1
        fallback = contextlib.AsyncExitStack()
        try:
            driver = await _driver(conn)
            if not transactional:
                if primary is None:
                    yield Unit(conn, driver, replica=replica.name)
                else:
                    yield _ReplicaUnit(conn, driver, self, replica, primary, fallback)
                return
            unit = Unit(conn, driver, replica=replica.name)
            transaction = unit.driver.transaction(readonly=True)
            with translating():
                await transaction.start()
            try:
                yield unit
            except BaseException:
                with contextlib.suppress(*DRIVER_ERRORS):
                    await transaction.rollback()
                raise
            with translating():
                await transaction.commit()
        finally:
            try:
                await fallback.aclose()
            finally:
                await _close(conn)

    def _candidates(self) -> list[_Replica]:
        now = time.monotonic()
        ready = [r for r in self.replicas if r.skip_until <= now]
        if not ready:
            return []
        start = self._next % len(ready)
        self._next += 1
        return ready[start:] + ready[:start]

    async def _checkout(self, caller: CallerKey | None) -> tuple[_Replica, AsyncConnection] | None:
        needed = self._needed(caller)
        if needed == _UNKNOWN:
            return None
        behind: tuple[_Replica, AsyncConnection] | None = None
        for replica in self._candidates():
            conn = await self._healthy(replica)
            if conn is None:
                continue
            if needed is None or replica.replayed >= needed:
                if behind is not None:
                    await _close(behind[1])
                return replica, conn
            if behind is None:
                behind = (replica, conn)
            else:
                await _close(conn)
        if behind is None:
            return None
        assert needed is not None
        # Healthy but not there yet: wait a bounded time for the caller's write to replay.
        replica, conn = behind
        deadline = time.monotonic() + self.wait
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(_POLL_SECONDS)
                replayed = await (await _driver(conn)).fetchval(_REPLAYED)
                replica.replayed = max(replica.replayed, int(replayed or 0))
                if replica.replayed >= needed:
                    return replica, conn
        except DRIVER_ERRORS as exc:
            self._skip(replica, describe_failure(exc, replica.database))
        await _close(conn)
        return None

    async def _healthy(self, replica: _Replica) -> AsyncConnection | None:
        """A connection to ``replica`` if it answers, is a standby and keeps up; else None."""
        for attempt in (1, 2):
            conn: AsyncConnection | None = None
            try:
                conn = await replica.engine.connect()
                row = await (await _driver(conn)).fetchrow(_HEALTH)
                break
            except _UNREACHABLE as exc:
                if conn is not None:
                    with contextlib.suppress(*_UNREACHABLE):
                        await conn.invalidate()
                    await _close(conn)
                if conn is None or attempt == 2:
                    self._skip(replica, describe_failure(exc, replica.database))
                    return None
                # A pooled connection that broke (the standby restarted, a proxy dropped it
                # while idle): the pool's other idle ones likely too. A fresh pool, one retry.
                with contextlib.suppress(*_UNREACHABLE):
                    await replica.engine.dispose()
        assert conn is not None
        in_recovery, replayed, lag = row[0], row[1], row[2]
        if not in_recovery:
            await _close(conn)
            self._skip(replica, "it is not a standby (promoted, or not a replica at all)")
            return None
        if lag is not None and float(lag) > self.max_lag:
            await _close(conn)
            self._skip(replica, f"its replay lags {float(lag):.1f} s (> {self.max_lag} s)")
            return None
        replica.replayed = max(replica.replayed, int(replayed or 0))
        return conn

    def _skip(self, replica: _Replica, reason: str) -> None:
        replica.skip_until = time.monotonic() + self.retry_interval
        logger.warning(
            "read replica %s left out for %.0f s: %s", replica.name, self.retry_interval, reason
        )


class _ReplicaUnit(Unit):
    """A replica's unit whose statements run again on the primary if the replica breaks off.

    Reads only, outside a transaction, so running a statement again is safe; from the first
    break on, the rest of the unit's statements run on the primary too.
    """

    def __init__(
        self,
        conn: AsyncConnection,
        driver: Any,
        router: ReadRouter,
        replica: _Replica,
        primary: Callable[[], AbstractAsyncContextManager[Unit]],
        stack: contextlib.AsyncExitStack,
    ) -> None:
        super().__init__(conn, driver, replica=replica.name)
        self._router = router
        self._source = replica
        self._primary = primary
        self._stack = stack
        self._fallback: Unit | None = None

    async def _again(self, exc: HacsPersistenceError) -> Unit:
        if self._fallback is None:
            if isinstance(exc, DatabaseUnavailableError):
                self._router._skip(self._source, redact(str(exc), self._source.database.url))
            self._router.served[PRIMARY] += 1
            self._fallback = await self._stack.enter_async_context(self._primary())
        return self._fallback

    async def fetchrow(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        if self._fallback is None:
            try:
                return await super().fetchrow(statement, params)
            except _BROKE_OFF as exc:
                await self._again(exc)
        assert self._fallback is not None
        return await self._fallback.fetchrow(statement, params)

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
        if self._fallback is None:
            try:
                return await super().fetch(statement, params)
            except _BROKE_OFF as exc:
                await self._again(exc)
        assert self._fallback is not None
        return await self._fallback.fetch(statement, params)

    async def execute(self, statement: Any, params: Any = None) -> Any:
        if self._fallback is None:
            try:
                return await super().execute(statement, params)
            except _BROKE_OFF as exc:
                await self._again(exc)
        assert self._fallback is not None
        return await self._fallback.execute(statement, params)


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection beneath a SQLAlchemy one."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _close(conn: AsyncConnection) -> None:
    with contextlib.suppress(*_UNREACHABLE):
        await conn.close()


async def create_read_router(
    urls: str | Sequence[str] | None, settings: DatabaseSettings
) -> ReadRouter | None:
    """The router for ``urls`` (else ``HACS_READ_REPLICA_URLS``); None when there are none.

    No connection is opened here: a replica that is down now is only left out when a read
    first tries it.
    """
    found, source = resolve_replica_urls(urls)
    if not found:
        return None
    if source == "argument":
        source = "the read_replica_urls argument"  # what a connection error names to fix
    replicas: list[_Replica] = []
    try:
        for url in found:
            database = ResolvedDatabase(
                url, source, build_connection_target(url, settings), settings
            )
            # No pre-ping: the health query of each checkout is the liveness check.
            replicas.append(_Replica(database, await acquire_engine(database, pre_ping=False)))
    except BaseException:
        for replica in replicas:
            await release_engine(replica.engine)
        raise
    return ReadRouter(
        replicas,
        max_lag=settings.replica_max_lag,
        wait=settings.read_your_writes_timeout,
        retry_interval=settings.replica_retry_interval,
    )
