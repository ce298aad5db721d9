"""Run Alembic from Python and report the migration status, the way the user guide does.

``run_migration`` is ``alembic upgrade head``; ``get_migration_status`` reports what the database
has against what this version of hacs expects. Neither raises for a database that is down: they
report the problem instead (with the password masked). Nothing else in the library runs DDL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from hacs_persistence.db.config import mask_url
from hacs_persistence.db.engine import (
    ResolvedDatabase,
    describe_failure,
    one_off_connection,
    resolve_database,
)
from hacs_persistence.errors import HacsPersistenceError
from hacs_persistence.ops.resources import MissingPackageFileError, alembic_scripts
from hacs_persistence.schema import ALEMBIC_VERSION_TABLE, HACS_SCHEMAS, SCHEMAS, metadata
from hacs_persistence.schema.audit import is_audit_partition

__all__ = [
    "MIGRATION_LOCK_KEY",
    "VERSION_TABLE_SCHEMA",
    "MigrationError",
    "alembic_config",
    "alembic_ini",
    "downgrade",
    "expected_tables",
    "get_migration_status",
    "head_revision",
    "include_name",
    "run_migration",
    "script_location",
    "upgrade",
]

logger = logging.getLogger("hacs_persistence.migrations")

VERSION_TABLE_SCHEMA = "hacs_admin"
# pg_advisory_xact_lock key shared by every process migrating the same database ("hacsmig").
MIGRATION_LOCK_KEY = 0x6861_6373_6D69_67


class MigrationError(HacsPersistenceError):
    """A migration could not run; the message says why and what to do."""


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic name filter: only hacs schemas; never Alembic's own version table.

    Nor the partitions of ``hacs_audit.audit_events`` (revision 0012): they are its months, not
    tables of the metadata.
    """
    if type_ == "schema":
        return name is None or name in SCHEMAS
    if type_ == "table":
        if parent_names.get("schema_name") == "hacs_audit" and is_audit_partition(name):
            return False
        return name != ALEMBIC_VERSION_TABLE
    return True


def script_location() -> Path:
    """The Alembic scripts of this install: packaged in a wheel, ``alembic/`` in a checkout."""
    try:
        return alembic_scripts()
    except MissingPackageFileError as exc:
        raise MigrationError(str(exc)) from None


def alembic_config(database_url: str | None = None, **attributes: Any) -> Config:
    """An Alembic ``Config`` for the hacs scripts, optionally bound to a URL or a connection."""
    location = script_location()
    # A checkout's alembic.ini sits next to alembic/; an installed package has none.
    ini = location.parent / "alembic.ini"
    config = Config(str(ini)) if ini.is_file() else Config()
    config.set_main_option("script_location", str(location))
    if database_url:
        config.attributes["database_url"] = database_url
    config.attributes.update(attributes)
    return config


# The checkout's alembic.ini without prepend_sys_path (an installed hacs is importable as it is);
# tests/test_packaging.py keeps the two in step.
_ALEMBIC_INI = """\
# Alembic configuration for an installed hacs, written by `hacs db alembic-ini`.
# The database URL is not stored here: env.py resolves it like the library does (DATABASE_URL,
# else HACS_DATABASE_URL, else the embedded PostgreSQL), or takes `-x database_url=...`.
# Choose the embedding dimension of a new schema with `-x vector_dim=384` (or HACS_VECTOR_DIM)
# on the first upgrade. Write it again after upgrading hacs if the install moved.
[alembic]
script_location = {script_location}
file_template = %%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s
timezone = UTC
path_separator = os

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""


def alembic_ini() -> str:
    """An ``alembic.ini`` pointing at this install's scripts, for the ``alembic`` command."""
    # ConfigParser interpolation: a literal % in the path must be doubled.
    return _ALEMBIC_INI.format(script_location=str(script_location()).replace("%", "%%"))


def head_revision() -> str | None:
    """The newest revision this version of hacs ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def expected_tables() -> dict[str, list[str]]:
    """Schema -> table names of our metadata (what a migrated database must have)."""
    result: dict[str, list[str]] = {schema: [] for schema in SCHEMAS}
    for table in metadata.tables.values():
        result[table.schema or "public"].append(table.name)
    return result


async def _run_command(resolved: ResolvedDatabase, fn: Any, *args: Any) -> None:
    # The embedded default is left to env.py, which migrates it as hacs_owner and then grants
    # hacs_app its privileges; a configured URL is used as given.
    config = alembic_config(None if resolved.source == "embedded" else resolved.url)
    # Alembic is synchronous and env.py drives its own event loop: run it on a worker thread.
    await asyncio.to_thread(fn, config, *args)


async def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """``alembic upgrade`` to ``revision``; raises ``MigrationError`` with the reason on failure.

    Without a URL (the embedded default) it migrates as ``hacs_owner`` and, at head, applies the
    application role's grants (``hacs_persistence.db.roles.APP_GRANTS_SQL``).
    """
    resolved = await resolve_database(database_url, embedded_role="owner")
    try:
        await _run_command(resolved, command.upgrade, revision)
    except HacsPersistenceError:
        raise
    except Exception as exc:
        raise MigrationError(_describe(exc, resolved)) from exc


async def downgrade(revision: str, database_url: str | None = None) -> None:
    """``alembic downgrade`` to ``revision`` (``base`` removes every hacs table)."""
    resolved = await resolve_database(database_url, embedded_role="owner")
    try:
        await _run_command(resolved, command.downgrade, revision)
    except Exception as exc:
        raise MigrationError(_describe(exc, resolved)) from exc


async def run_migration(database_url: str | None = None) -> bool:
    """Upgrade the database to head (idempotent); False, with the reason logged, on failure."""
    try:
        await upgrade(database_url)
    except HacsPersistenceError as exc:
        logger.error("Migration failed: %s", exc)
        return False
    return True


def _describe(exc: BaseException, resolved: ResolvedDatabase | None) -> str:
    return describe_failure(exc, resolved)


_TABLES_SQL = text(
    """
    SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname = ANY(:schemas) AND c.relname <> :version_table
    """
)


async def get_migration_status(database_url: str | None = None) -> dict[str, Any]:
    """What the database has against what hacs expects; ``{"error": ...}`` if unreachable."""
    resolved: ResolvedDatabase | None = None
    try:
        resolved = await resolve_database(database_url)
        async with one_off_connection(resolved) as conn:
            rows = (
                await conn.execute(
                    _TABLES_SQL,
                    {"schemas": list(SCHEMAS), "version_table": ALEMBIC_VERSION_TABLE},
                )
            ).all()
            pgvector = await conn.scalar(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
            )
            schemas = (
                (
                    await conn.execute(
                        text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:s)"),
                        {"s": list(HACS_SCHEMAS)},
                    )
                )
                .scalars()
                .all()
            )
            current = None
            version_table = f"{VERSION_TABLE_SCHEMA}.{ALEMBIC_VERSION_TABLE}"
            if await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": version_table}):
                # Identifiers are constants of this module, never user input.
                current = await conn.scalar(text(f"SELECT version_num FROM {version_table}"))
    except Exception as exc:
        url = resolved.target.masked if resolved else mask_url(database_url)
        return {"error": f"Cannot reach the database at {url}: {_describe(exc, resolved)}"}
    return _status(rows, bool(pgvector), list(schemas), current)


def _status(
    rows: Sequence[Any], pgvector: bool, schemas: list[str], current: str | None
) -> dict[str, Any]:
    expected = expected_tables()
    found: dict[str, set[str]] = {schema: set() for schema in SCHEMAS}
    for schema, name in rows:
        # In public only our own table counts: users may keep anything else there.
        if schema != "public" or name in expected["public"]:
            found[schema].add(name)
    missing = sorted(
        f"{schema}.{name}"
        for schema, names in expected.items()
        for name in names
        if name not in found[schema]
    )
    head = head_revision()
    total_expected = sum(len(names) for names in expected.values())
    return {
        "migration_complete": not missing and current is not None and current == head,
        "total_tables": sum(len(names) for names in found.values()),
        "expected_tables": total_expected,
        "pgvector_enabled": pgvector,
        "schema_breakdown": {schema: len(found[schema]) for schema in SCHEMAS},
        "schemas_created": [s for s in HACS_SCHEMAS if s in schemas],
        "current_revision": current,
        "head_revision": head,
        "missing_tables": missing,
    }
