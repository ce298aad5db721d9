"""``hacs_core`` derived rows: values inside documents made joinable (components, codings, ids).

These tables are written by the database, never by the application: statement-level triggers on
``hacs_core.resource_versions`` (revision 0009), the one table every write path appends to (save,
update, delete, restore, ``save_many``'s COPY and batch update, import, a purge's deletes, an
owner's plain SQL), rebuild the rows of each changed resource from its current version. A
resource whose current version is a delete tombstone has none. The application role may only
read them (``db/roles.py``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = ["CodingTable", "IdentifierTable", "ObservationComponentTable"]

SCHEMA = "hacs_core"


class ObservationComponentTable(Base):
    """One row per ``component`` of an Observation, valued like the typed observation columns."""

    __tablename__ = "observation_components"
    __table_args__ = (
        Index(
            "ix_observation_components_patient_id_code_effective_at",
            "patient_id",
            "code",
            "effective_at",
        ),
        {"schema": SCHEMA},
    )

    observation_id: Mapped[str] = mapped_column(primary_key=True)
    # 0-based index of the component in the document.
    position: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str | None]
    code_system: Mapped[str | None]
    code: Mapped[str | None] = mapped_column(index=True)
    display: Mapped[str | None]
    value_numeric: Mapped[Decimal | None]
    value_unit: Mapped[str | None]
    value_text: Mapped[str | None]
    # The observation's effective time (components have none of their own).
    effective_at: Mapped[datetime | None]


class CodingTable(Base):
    """Every coding of every CodeableConcept in a resource's current document.

    ``element`` is the concept's path in the (hacs, snake_case) document: ``code``,
    ``category[1]``, ``component[0].code``, ``value_codeable_concept``; ``position`` is the
    coding's index in that concept. The key's (resource_type, resource_id) prefix serves the
    lookups by resource.
    """

    __tablename__ = "codings"
    __table_args__ = (Index("ix_codings_system_code", "system", "code"), {"schema": SCHEMA})

    resource_type: Mapped[str] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(primary_key=True)
    element: Mapped[str] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str | None]
    code: Mapped[str | None]
    display: Mapped[str | None]


class IdentifierTable(Base):
    """Every ``identifier`` of a resource's current document (MRN, SSN, driver's licence...)."""

    __tablename__ = "identifiers"
    __table_args__ = (Index("ix_identifiers_system_value", "system", "value"), {"schema": SCHEMA})

    resource_type: Mapped[str] = mapped_column(primary_key=True)
    resource_id: Mapped[str] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str | None]
    value: Mapped[str | None]
    use: Mapped[str | None]
    # The first code of the identifier's type (``MR``, ``SS``...).
    type_code: Mapped[str | None]
