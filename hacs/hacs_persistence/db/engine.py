"""Engines, built lazily by a function: one per (database target, event loop).

An asyncpg connection belongs to the event loop that opened it, and the user guide calls
``asyncio.run`` several times in one program, so engines are cached per loop. When a loop shuts
down (``asyncio.run`` cancels the tasks still pending), a sentinel task disposes that loop's engines
so no connection outlives its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from hacs_persistence.db.config import (
    ConnectionTarget,
    DatabaseSettings,
    build_connection_target,
    load_settings,
    mask_url,
    redact,
    resolve_database_url,
)
from hacs_persistence.errors import (
    DRIVER_ERRORS,
    HacsPersistenceError,
    ServerEndpoint,
    translate_database_error,
    translating,
)

__all__ = [
    "ResolvedDatabase",
    "acquire_engine",
    "close_engines",
    "describe_failure",
    "dispose_engine",
    "get_engine",
    "one_off_connection",
    "pool_statistics",
    "release_engine",
    "resolve_database",
    "setting_label",
    "transactional",
]


@dataclass(frozen=True)
class ResolvedDatabase:
    """Where a program's database is: the URL, where it came from, and its connection target.

    ``url`` is the URL as configured, password included; ``repr`` and ``str`` show only the
    masked form, so logging or printing the object (``adapter.database``) reveals no password.
    """

    url: str
    source: str
    target: ConnectionTarget
    settings: DatabaseSettings

    def __repr__(self) -> str:
        return f"ResolvedDatabase({self.target.masked!r}, source={self.source!r})"

    __str__ = __repr__

    @property
    def endpoint(self) -> ServerEndpoint:
        """The server, database and setting, for the messages of connection errors."""
        return ServerEndpoint(
            server=self.target.server,
            database=self.target.url.database,
            setting=setting_label(self.source),
            connect_timeout=float(self.target.connect_args.get("timeout") or 0) or None,
        )


def setting_label(source: str) -> str:
    """Where a URL came from (``resolve_database_url``'s source), as the setting to fix."""
    if source == "argument":
        return "the database URL given (database_url argument, or --database-url)"
    if source == "embedded":
        return "DATABASE_URL (unset: the embedded server was used)"
    if source.startswith(".env:"):
        return f"{source.removeprefix('.env:')} in the .env file"
    return source


_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncEngine]] = (
    weakref.WeakKeyDictionary()
)
_sentinels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


async def resolve_database(
    database_url: str | None = None,
    settings: DatabaseSettings | None = None,
    *,
    embedded_role: Literal["app", "owner"] = "app",
) -> ResolvedDatabase:
    """Resolve the URL (argument, env, .env, else the embedded server) and translate it.

    On the embedded server the application connects as ``hacs_app``; migrations ask for
    ``embedded_role="owner"`` (``hacs_owner``), as in a production deployment.
    """
    settings = settings or load_settings()
    url, source = resolve_database_url(database_url)
    if url is None:
        from hacs_persistence.db.embedded import ensure_embedded_server

        server = await asyncio.to_thread(ensure_embedded_server)
        url = server.owner_url if embedded_role == "owner" else server.app_url
    return ResolvedDatabase(url, source, build_connection_target(url, settings), settings)


def describe_failure(exc: BaseException, resolved: ResolvedDatabase | None = None) -> str:
    """One line for a report (``doctor``, status): what failed, no password, no SQLAlchemy link.

    A driver error is first translated (naming the server and setting when ``resolved`` is
    known); this package's own errors are their message, anything else ``Type: message``.
    """
    if isinstance(exc, DRIVER_ERRORS):
        exc = translate_database_error(
            exc, endpoint=resolved.endpoint if resolved is not None else None
        )
    message = str(exc) if isinstance(exc, HacsPersistenceError) else f"{type(exc).__name__}: {exc}"
    message = " ".join(message.split())
    return redact(message, resolved.url) if resolved is not None else redact(message)


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed is never handed out (the pool takes another).

    The event loop reads an idle connection's socket, so a server restart or a terminated
    backend has marked it closed by the time it is checked out: free, where a pre-ping is a
    round trip on every operation (``pool_pre_ping`` for links that die silently).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _create_engine(
    target: ConnectionTarget, settings: DatabaseSettings, *, pre_ping: bool = True
) -> AsyncEngine:
    connect_args = dict(target.connect_args)
    url = target.url
    if settings.prepared_statements:
        url = url.update_query_dict(
            {"prepared_statement_cache_size": str(settings.prepared_statement_cache_size)}
        )
    else:
        # PgBouncer (transaction mode): no statement cache, and unique names for the unnamed
        # statements asyncpg still prepares, so two clients never collide on one server session.
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        connect_args["prepared_statement_name_func"] = lambda: f"__hacs_{uuid.uuid4().hex}__"
    # AUTOCOMMIT: the adapters open transactions themselves, at the driver level, only where a
    # unit needs one; a single audited statement then costs one round trip (and a pre-ping, if
    # asked for, one more instead of BEGIN/ping/ROLLBACK). Code that wants SQLAlchemy's usual
    # implicit transactions uses ``transactional(engine)``.
    engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.connection_pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=pre_ping and settings.pool_pre_ping,
        connect_args=connect_args,
        # Statement parameters are resource content and ids: never in logs or error texts.
        hide_parameters=True,
    )
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


async def _dispose_at_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        engines = _engines.pop(loop, {})
        for engine in engines.values():
            await engine.dispose()


async def get_engine(resolved: ResolvedDatabase, *, pre_ping: bool = True) -> AsyncEngine:
    """Return the engine for this target on the running loop, creating it on first use.

    ``pre_ping=False``: no liveness round trip on checkout, for a caller that runs its own
    check first (the read replicas' health query, db/replicas.py).
    """
    loop = asyncio.get_running_loop()
    key = resolved.target.cache_key + repr(resolved.settings.model_dump()) + f"|{pre_ping}"
    per_loop = _engines.setdefault(loop, {})
    engine = per_loop.get(key)
    if engine is None:
        engine = _create_engine(resolved.target, resolved.settings, pre_ping=pre_ping)
        per_loop[key] = engine
        if loop not in _sentinels or _sentinels[loop].done():
            _sentinels[loop] = loop.create_task(_dispose_at_shutdown(loop), name="hacs-dispose")
    return engine


def transactional(engine: AsyncEngine) -> AsyncEngine:
    """The same pool with SQLAlchemy's usual transactions (for ORM sessions and repositories)."""
    return engine.execution_options(isolation_level="READ COMMITTED")


# How many open adapters use each cached engine: the last one to close disposes it, so closing
# one adapter never drops the pool another adapter on the same loop and URL is using.
_users: weakref.WeakKeyDictionary[AsyncEngine, int] = weakref.WeakKeyDictionary()


async def acquire_engine(resolved: ResolvedDatabase, *, pre_ping: bool = True) -> AsyncEngine:
    """``get_engine`` for a long-lived user (an adapter) that will call ``release_engine``."""
    engine = await get_engine(resolved, pre_ping=pre_ping)
    _users[engine] = _users.get(engine, 0) + 1
    return engine


async def release_engine(engine: AsyncEngine) -> None:
    """Give back an engine from ``acquire_engine``; the last user disposes it."""
    remaining = _users.get(engine, 1) - 1
    if remaining > 0:
        _users[engine] = remaining
        return
    _users.pop(engine, None)
    await dispose_engine(engine)


def pool_statistics() -> dict[str, int]:
    """Connections checked out per cached engine (masked URL), for metrics."""
    stats: dict[str, int] = {}
    for per_loop in list(_engines.values()):
        for engine in list(per_loop.values()):
            pool: Any = engine.pool
            name = mask_url(engine.url)
            stats[name] = stats.get(name, 0) + int(pool.checkedout())
    return stats


async def dispose_engine(engine: AsyncEngine) -> None:
    """Dispose one engine and forget it, so the next ``get_engine`` builds a fresh one."""
    loop = asyncio.get_running_loop()
    per_loop = _engines.get(loop, {})
    for key, candidate in list(per_loop.items()):
        if candidate is engine:
            del per_loop[key]
    await engine.dispose()


async def close_engines() -> None:
    """Dispose every engine of the running loop."""
    loop = asyncio.get_running_loop()
    engines = _engines.pop(loop, {})
    for engine in engines.values():
        await engine.dispose()


@asynccontextmanager
async def one_off_connection(resolved: ResolvedDatabase) -> AsyncIterator[AsyncConnection]:
    """A single unpooled connection, for status checks that should leave no pool behind.

    Errors come out translated: opening it names the server, and the statements the caller
    runs on it raise this package's errors too.
    """
    engine = create_async_engine(
        resolved.target.url, poolclass=NullPool, connect_args=resolved.target.connect_args
    )
    try:
        async with translating(endpoint=resolved.endpoint):
            conn = await engine.connect()
        try:
            with translating():
                yield conn
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.close()
    finally:
        await engine.dispose()
