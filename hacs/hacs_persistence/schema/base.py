"""The declarative base, shared column types and the envelope every typed resource table carries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    TIMESTAMP,
    Date,
    ForeignKeyConstraint,
    MetaData,
    Numeric,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, declared_attr, mapped_column
from sqlalchemy.schema import SchemaItem

from hacs_persistence.schema.sources import Source

__all__ = [
    "SCHEMAS",
    "Base",
    "TypedResourceTable",
    "key_column",
    "typed_table_args",
]

# Order used everywhere a per-schema breakdown is shown (the user guide's order).
SCHEMAS = (
    "hacs_core",
    "hacs_clinical",
    "hacs_registry",
    "hacs_agents",
    "hacs_admin",
    "hacs_audit",
    "public",
)

# Deterministic constraint and index names, so migrations and `alembic check` agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every hacs table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text(),
        datetime: TIMESTAMP(timezone=True),
        date: Date(),
        Decimal: Numeric(),
        dict[str, Any]: JSONB(),
        list[str]: ARRAY(Text()),
    }


def key_column(
    source: Source, *, index: bool = False, type_: Any = None, nullable: bool | None = None
) -> MappedColumn[Any]:
    """A typed key column whose value is derived from the resource by ``source``.

    The source is the single statement of where the column's value comes from; the mapping layer
    reads it from ``Column.info`` so no field list is written twice.
    """
    options: dict[str, Any] = {"index": index, "info": {"source": source}}
    if nullable is not None:
        options["nullable"] = nullable
    if type_ is None:
        return mapped_column(**options)
    return mapped_column(type_, **options)


def typed_table_args(schema: str, *extra: SchemaItem) -> tuple[Any, ...]:
    """``__table_args__`` for a typed resource table: its schema plus the link to its document.

    (resource_type, id, version) points at the current ``resource_versions`` row, which holds the
    full document; documents stay out of the typed heaps so analytic scans stay narrow.
    """
    link = ForeignKeyConstraint(
        ["resource_type", "id", "version"],
        [
            "hacs_core.resource_versions.resource_type",
            "hacs_core.resource_versions.id",
            "hacs_core.resource_versions.version",
        ],
        deferrable=True,
        initially="IMMEDIATE",
    )
    return (link, *extra, {"schema": schema})


class TypedResourceTable(Base):
    """Envelope columns shared by every typed resource table."""

    __abstract__ = True

    # sort_order puts the envelope first in CREATE TABLE, ahead of the mixins' key columns.
    id: Mapped[str] = mapped_column(primary_key=True, sort_order=-10)
    resource_type: Mapped[str] = mapped_column(sort_order=-10)
    version: Mapped[int] = mapped_column(sort_order=-10)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=-10)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=-10)
    created_by: Mapped[str | None] = mapped_column(sort_order=-10)
    updated_by: Mapped[str | None] = mapped_column(sort_order=-10)
    deleted_at: Mapped[datetime | None] = mapped_column(sort_order=-10)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # The version column is the ORM's optimistic-concurrency check; values are assigned by
        # the persistence layer (every write also appends a resource_versions row).
        return {"version_id_col": cls.__table__.c.version, "version_id_generator": False}
