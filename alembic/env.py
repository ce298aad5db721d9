"""Alembic environment for hacs: async, schema allow-list, advisory lock, no statement timeouts.

A caller may hand over what to migrate in ``config.attributes["connection"]``: a ``Connection``
(used as it is, inside its transaction if it has one), an ``Engine`` or anything else with a
``connect()`` context manager, or an ``AsyncEngine`` (run on a loop of its own), as
pytest-alembic's fixtures do. Otherwise the URL is ``-x database_url=...``,
``config.attributes["database_url"]`` or the library's resolution. Without any URL the embedded
default is migrated as ``hacs_owner``, and once at head ``hacs_app`` gets the grants of
``docs/operations.md`` Step 3 (``hacs_persistence.db.roles``).
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, cast

from alembic import context
from pgvector.sqlalchemy import Vector
from sqlalchemy import pool, text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

config = context.config
# Run as the `alembic` command (it sets cmd_opts), the logging of alembic.ini applies, as in
# Alembic's own templates: its INFO lines say what ran ("Running upgrade 0006 -> 0007").
# Called from Python (hacs db upgrade, run_migration, test fixtures) the caller's logging stays.
if (
    config.cmd_opts is not None
    and config.config_file_name is not None
    and config.file_config.has_section("loggers")
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
x_args = context.get_x_argument(as_dictionary=True)
if x_args.get("vector_dim"):
    # Picked on the first upgrade; later runs read the dimension back from the database.
    os.environ["HACS_VECTOR_DIM"] = x_args["vector_dim"]

from hacs_persistence.db.roles import apply_analyst_grants, apply_app_grants  # noqa: E402
from hacs_persistence.migrations import (  # noqa: E402
    MIGRATION_LOCK_KEY,
    VERSION_TABLE_SCHEMA,
    include_name,
)
from hacs_persistence.schema import ALEMBIC_VERSION_TABLE, metadata  # noqa: E402
from hacs_persistence.schema.vectors import apply_vector_dim  # noqa: E402


def _database_dim(connection: Connection) -> int | None:
    row = connection.execute(
        text(
            "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'hacs_agents' AND c.relname = 'memory_blocks' "
            "AND a.attname = 'embedding' AND NOT a.attisdropped"
        )
    ).first()
    return int(row[0]) if row and row[0] > 0 else None


def do_run_migrations(connection: Connection) -> None:
    # Let autogenerate and `alembic check` reflect pgvector columns as Vector, not NullType.
    # (Migrations run on PostgreSQL only: the dialect is asyncpg's PGDialect.)
    cast(PGDialect, connection.dialect).ischema_names["vector"] = Vector
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_schemas=True,
        include_name=include_name,
        version_table=ALEMBIC_VERSION_TABLE,
        version_table_schema=VERSION_TABLE_SCHEMA,
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        # Migrations and index builds may take longer than the application's timeouts.
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        # Two processes migrating at once: the second waits here, then finds nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        dim = _database_dim(connection)
        if dim is not None:
            apply_vector_dim(metadata, dim)
        # Alembic's version table lives in hacs_admin, which must exist before Alembic writes it.
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}"))
        context.run_migrations()
        if config.attributes.get("embedded") and _at_head():
            # The embedded default has production's roles: hacs_app gets docs/operations.md's
            # Step 3 grants and hacs_analyst its Step 4 grants, in the migration's transaction
            # (idempotent, so on every upgrade).
            apply_app_grants(connection)
            apply_analyst_grants(connection)


def _at_head() -> bool:
    """Whether this run moved (or kept) the database at head; ``alembic check`` does not count."""
    migration = context.get_context()
    if migration.opts.get("destination_rev") is None:
        return False
    return set(migration.get_current_heads()) == set(context.script.get_heads())


async def run_async_migrations(url: str) -> None:
    from hacs_persistence.db.config import build_connection_target, load_settings

    target = build_connection_target(url, load_settings())
    engine = create_async_engine(
        target.url, poolclass=pool.NullPool, connect_args=target.connect_args
    )
    await migrate_with_async_engine(engine)


async def migrate_with_async_engine(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        # The loop this ran on ends with asyncio.run: no pooled connection may outlive it. The
        # engine stays usable (dispose() gives it a fresh pool).
        await engine.dispose()


def migrate_with(connectable: Any) -> None:
    """Migrate what the caller handed over in ``config.attributes["connection"]``."""
    if isinstance(connectable, AsyncEngine):
        asyncio.run(migrate_with_async_engine(connectable))
    elif isinstance(connectable, AsyncConnection):
        # Its driver connection belongs to the caller's running loop: it cannot be driven from
        # here, only from inside that loop through run_sync.
        raise TypeError(
            "env.py was handed an AsyncConnection: call Alembic inside "
            "`await connection.run_sync(...)` and pass the sync Connection it receives."
        )
    elif isinstance(connectable, Connection):
        do_run_migrations(connectable)
    elif callable(getattr(connectable, "connect", None)):
        # An Engine, or a wrapper that hands out an open connection (pytest-alembic's).
        with connectable.connect() as connection:
            do_run_migrations(connection)
    else:
        raise TypeError(
            f"config.attributes['connection'] must be a Connection, an Engine or an AsyncEngine, "
            f"not {type(connectable).__name__}."
        )


def _resolve_url() -> str:
    """The URL to migrate; without one, the embedded server's owner role (``hacs_owner``)."""
    from hacs_persistence.db.config import resolve_database_url
    from hacs_persistence.db.embedded import ensure_embedded_server

    url: Any = x_args.get("database_url") or config.attributes.get("database_url")
    url, _source = resolve_database_url(url)
    if url:
        return str(url)
    config.attributes["embedded"] = True
    return ensure_embedded_server().owner_url


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        migrate_with(connectable)
        return
    asyncio.run(run_async_migrations(_resolve_url()))


if context.is_offline_mode():
    raise SystemExit("hacs migrations run online only: they check pgvector on the live server.")
run_migrations_online()
