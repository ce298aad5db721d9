"""SQLAlchemy tables of every hacs schema; one module per PostgreSQL schema.

``TYPED_TABLES`` maps a resource type name (``"Patient"``) to its typed table; every other type is
stored in ``public.hacs_resources``.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table

from hacs_persistence.schema import (
    admin,
    agents,
    audit,
    clinical,
    core,
    derived,
    fallback,
    registry,
)
from hacs_persistence.schema.admin import ALEMBIC_VERSION_TABLE, SystemConfigurationTable
from hacs_persistence.schema.audit import AuditEventTable
from hacs_persistence.schema.base import SCHEMAS, Base, TypedResourceTable
from hacs_persistence.schema.core import ResourceVersionTable
from hacs_persistence.schema.fallback import ResourceDocumentTable
from hacs_persistence.schema.views import current_view_of

__all__ = [
    "ALEMBIC_VERSION_TABLE",
    "HACS_SCHEMAS",
    "SCHEMAS",
    "TYPED_TABLES",
    "AuditEventTable",
    "Base",
    "ResourceDocumentTable",
    "ResourceVersionTable",
    "SystemConfigurationTable",
    "TypedResourceTable",
    "current_view_name",
    "metadata",
]

metadata: MetaData = Base.metadata
HACS_SCHEMAS = tuple(s for s in SCHEMAS if s != "public")


def _typed_tables() -> dict[str, type[TypedResourceTable]]:
    # The resource type is the class name without its "Table" suffix: PatientTable -> Patient.
    tables: dict[str, type[TypedResourceTable]] = {}
    for module in (core, clinical, registry, agents):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, TypedResourceTable):
                tables[name.removesuffix("Table")] = cls
    return tables


TYPED_TABLES: dict[str, type[TypedResourceTable]] = _typed_tables()


def current_view_name(table: Table) -> str:
    """The view that joins a typed table to its current document: ``patients_current``."""
    return current_view_of(table.name)


# Keep module references used only for registration visible to linters.
_ = (admin, audit, derived, fallback)
