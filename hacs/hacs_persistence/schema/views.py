"""The ``<table>_current`` views: a typed table joined to its current document.

The one definition of their DDL. Migrations create, drop and rebuild them through these
functions, given Alembic's ``op.execute`` (PostgreSQL cannot ``ALTER`` a view whose ``SELECT t.*``
must pick up a new column: a revision that changes such a table drops the view and creates it
again around the change, with :func:`current_view_rebuilt`).

Names are constants of the revisions (schema and table), never user input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "create_current_view",
    "create_current_view_sql",
    "current_view_of",
    "current_view_rebuilt",
    "drop_current_view",
    "drop_current_view_sql",
]

Execute = Callable[[str], Any]


def current_view_of(table: str) -> str:
    """The view's name for a typed table: ``patients`` -> ``patients_current``."""
    return f"{table}_current"


def create_current_view_sql(schema: str, table: str) -> str:
    """``CREATE VIEW schema.table_current``: every column of the table, and the document."""
    return (
        f"CREATE VIEW {schema}.{current_view_of(table)} AS "
        f"SELECT t.*, v.document FROM {schema}.{table} t "
        "JOIN hacs_core.resource_versions v "
        "ON v.resource_type = t.resource_type AND v.id = t.id AND v.version = t.version"
    )


def drop_current_view_sql(schema: str, table: str, *, if_exists: bool = False) -> str:
    """``DROP VIEW [IF EXISTS] schema.table_current``."""
    return f"DROP VIEW {'IF EXISTS ' if if_exists else ''}{schema}.{current_view_of(table)}"


def create_current_view(execute: Execute, schema: str, table: str) -> None:
    """Create the table's current view (``execute``: a migration's ``op.execute``)."""
    execute(create_current_view_sql(schema, table))


def drop_current_view(
    execute: Execute, schema: str, table: str, *, if_exists: bool = False
) -> None:
    """Drop the table's current view."""
    execute(drop_current_view_sql(schema, table, if_exists=if_exists))


@contextmanager
def current_view_rebuilt(execute: Execute, schema: str, table: str) -> Iterator[None]:
    """Drop the view, run the block (which changes the table's columns), create it again."""
    drop_current_view(execute, schema, table)
    yield
    create_current_view(execute, schema, table)
