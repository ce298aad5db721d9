"""``create_postgres_adapter``: connect, check the schema is at the Alembic head, build the adapter.

It lives apart from the adapter classes because it needs the migrations (for the head revision),
and the migrations must not import the adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hacs_persistence.adapters.granular import GranularPostgreSQLAdapter
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.db.config import load_settings
from hacs_persistence.db.engine import acquire_engine, release_engine, resolve_database
from hacs_persistence.db.replicas import create_read_router
from hacs_persistence.errors import (
    ConfigurationError,
    SchemaNotMigratedError,
    translating,
)
from hacs_persistence.ops.migrations import head_revision

__all__ = ["create_postgres_adapter"]


async def _schema_state(engine: AsyncEngine) -> tuple[str | None, int | None]:
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('hacs_admin.alembic_version')"))
        revision = None
        if exists:
            revision = await conn.scalar(text("SELECT version_num FROM hacs_admin.alembic_version"))
        dim = await conn.scalar(
            text(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = "
                "to_regclass('hacs_agents.memory_blocks') AND attname = 'embedding'"
            )
        )
    return revision, dim


async def create_postgres_adapter(
    database_url: str | None = None,
    *,
    kind: Literal["auto", "granular", "jsonb"] = "auto",
    request_id: str | None = None,
    purpose_of_use: str | None = None,
    embedder: Callable[[str], Sequence[float]] | None = None,
    read_replica_urls: str | Sequence[str] | None = None,
    **settings: Any,
) -> PostgreSQLAdapter:
    """A connected adapter for the configured database (granular unless ``kind="jsonb"``).

    ``settings`` are ``DatabaseSettings`` fields (the guide's ``production_config`` works as is).
    Raises ``SchemaNotMigratedError`` on a database that is not at the Alembic head: this never
    runs DDL. ``read_replica_urls`` (a list, or comma-separated; default
    ``HACS_READ_REPLICA_URLS``): streaming standbys that serve reads (``db.replicas``).
    """
    if kind not in ("auto", "granular", "jsonb"):
        raise ConfigurationError(f"kind must be 'auto', 'granular' or 'jsonb', not {kind!r}.")
    resolved = await resolve_database(database_url, load_settings(**settings))
    engine = await acquire_engine(resolved)
    replicas = None
    try:
        # The first connection: its errors name the server and the setting to fix.
        async with translating(endpoint=resolved.endpoint):
            revision, dim = await _schema_state(engine)
        head = head_revision()
        if revision != head:
            state = "has no hacs schema" if revision is None else f"is at revision {revision}"
            raise SchemaNotMigratedError(
                f"The database {resolved.target.masked} {state}, not {head}: run `hacs db "
                "upgrade` (or `await hacs_persistence.migrations.run_migration()`) first."
            )
        replicas = await create_read_router(read_replica_urls, resolved.settings)
    except BaseException:
        await release_engine(engine)
        raise
    cls = PostgreSQLAdapter if kind == "jsonb" else GranularPostgreSQLAdapter
    return cls(
        engine,
        resolved,
        vector_dim=int(dim) if dim and dim > 0 else None,
        request_id=request_id,
        purpose_of_use=purpose_of_use,
        embedder=embedder,
        replicas=replicas,
    )
