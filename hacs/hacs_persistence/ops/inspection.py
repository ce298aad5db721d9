"""Inspect a database without writing SQL: environment check and the JSONB table's contents.

Both functions report problems in their result instead of raising, so they are safe to call from a
health check or a notebook when the database is down.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import func, select, text

from hacs_persistence.db.config import URL_ENV_VARS, mask_url, resolve_database_url
from hacs_persistence.db.engine import (
    ResolvedDatabase,
    describe_failure,
    one_off_connection,
    resolve_database,
)
from hacs_persistence.errors import ConfigurationError
from hacs_persistence.schema import HACS_SCHEMAS, ResourceDocumentTable
from hacs_persistence.schema.vectors import configured_vector_dim

__all__ = ["get_generic_table_status", "verify_database_environment"]

_ENV_VARS = (
    *URL_ENV_VARS,
    "HACS_ENV_FILE",
    "HACS_DB_PASSWORD_FILE",
    "PGPASSFILE",
    "PGPASSWORD",
    "HACS_EMBEDDED_DIR",
    "HACS_JWT_SECRET",
    "HACS_VECTOR_DIM",
    "HACS_DB_SSL_MODE",
    "HACS_DB_CONNECTION_POOL_SIZE",
)


async def verify_database_environment(database_url: str | None = None) -> dict[str, Any]:
    """Where the URL comes from, whether the server answers, its version, and what to fix."""
    result: dict[str, Any] = {
        "environment_variables": {
            name: ("set" if os.environ.get(name) else "not set") for name in _ENV_VARS
        },
        "recommendations": [],
    }
    recommendations: list[str] = result["recommendations"]
    resolved: ResolvedDatabase | None = None
    try:
        # Where the URL comes from is known before it is parsed: an invalid URL is still
        # reported as given (masked), with its source.
        given, source = resolve_database_url(database_url)
        result["database_url_source"] = source
        result["database_url"] = mask_url(given)
        resolved = await resolve_database(database_url)
        result["database_url"] = resolved.target.masked
        async with one_off_connection(resolved) as conn:
            version_num = int(await conn.scalar(text("SHOW server_version_num")) or 0)
            row = (
                await conn.execute(
                    text(
                        "SELECT current_database(), current_user, "
                        "coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), "
                        "false), (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
                    )
                )
            ).one()
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
        major, minor = version_num // 10000, version_num % 10000
        result["connection_test"] = {
            "success": True,
            "postgresql_version": f"PostgreSQL {major}.{minor}",
            "database_name": row[0],
            "user": row[1],
            "ssl": bool(row[2]),
            "pgvector_version": row[3],
        }
        result["hacs_schemas"] = {s: s in schemas for s in HACS_SCHEMAS}
        if resolved.source == "embedded":
            recommendations.append(
                "Using the embedded database: set DATABASE_URL to use your own PostgreSQL server."
            )
        if not row[2] and resolved.target.ssl_mode not in ("disable", "allow", "prefer"):
            recommendations.append("TLS was requested but the session is not encrypted.")
        if not row[2] and "host" not in resolved.target.connect_args:
            recommendations.append(
                "The connection is not encrypted: use ?sslmode=require (or verify-full) for any "
                "server reached over a network."
            )
        if row[3] is None:
            recommendations.append(
                "pgvector is not enabled: run `hacs db upgrade` (needs pgvector 0.8 installed on "
                "the server)."
            )
        if len(schemas) < len(HACS_SCHEMAS):
            recommendations.append("Some hacs schemas are missing: run `hacs db upgrade`.")
        if not os.environ.get("HACS_JWT_SECRET"):
            recommendations.append(
                "HACS_JWT_SECRET is not set: tokens cannot be issued or verified until it is."
            )
        try:
            configured_vector_dim()
        except ConfigurationError as exc:
            recommendations.append(str(exc))
    except Exception as exc:
        result.setdefault("database_url_source", "unresolved")
        result.setdefault("database_url", mask_url(database_url))
        result["connection_test"] = {"success": False, "error": describe_failure(exc, resolved)}
        result["hacs_schemas"] = {}
        recommendations.append("Check that the server is running and the URL is right.")
    return result


async def get_generic_table_status(database_url: str | None = None) -> dict[str, Any]:
    """Counts of ``public.hacs_resources`` by resource type (largest first), and its time span."""
    resolved: ResolvedDatabase | None = None
    table = ResourceDocumentTable.__table__
    try:
        resolved = await resolve_database(database_url)
        async with one_off_connection(resolved) as conn:
            exists = await conn.scalar(
                text("SELECT to_regclass('public.hacs_resources') IS NOT NULL")
            )
            if not exists:
                return {
                    "table_exists": False,
                    "total_resources": 0,
                    "resource_types_count": 0,
                    "resource_breakdown": {},
                }
            live = table.c.deleted_at.is_(None)
            counts = (
                await conn.execute(
                    select(table.c.resource_type, func.count())
                    .where(live)
                    .group_by(table.c.resource_type)
                    .order_by(func.count().desc(), table.c.resource_type)
                )
            ).all()
            span = (
                await conn.execute(
                    select(func.min(table.c.created_at), func.max(table.c.updated_at)).where(live)
                )
            ).one()
    except Exception as exc:
        return {"table_exists": False, "error": describe_failure(exc, resolved)}
    breakdown = {resource_type: int(count) for resource_type, count in counts}
    return {
        "table_exists": True,
        "total_resources": sum(breakdown.values()),
        "resource_types_count": len(breakdown),
        "resource_breakdown": breakdown,
        "earliest_record": span[0].isoformat() if span[0] else None,
        "latest_record": span[1].isoformat() if span[1] else None,
    }
