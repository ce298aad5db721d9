"""``hacs_core``: the backbone resources and the versions table that holds every document."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Index, func
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base, TypedResourceTable, key_column, typed_table_args
from hacs_persistence.schema.mixins import (
    CodedMixin,
    EncounterLinkMixin,
    PatientLinkMixin,
    StatusMixin,
)
from hacs_persistence.schema.sources import (
    attr,
    coalesce,
    coding,
    present,
    primary_name,
    ref_id,
    text_of,
)

__all__ = [
    "EncounterTable",
    "ObservationTable",
    "OrganizationTable",
    "PatientTable",
    "PractitionerTable",
    "ResourceVersionTable",
]

SCHEMA = "hacs_core"


class ResourceVersionTable(Base):
    """Every version of every resource as its full JSON document; deletes add a tombstone."""

    __tablename__ = "resource_versions"
    __table_args__ = (
        CheckConstraint("operation IN ('create', 'update', 'delete')", name="operation"),
        {"schema": SCHEMA},
    )

    resource_type: Mapped[str] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    operation: Mapped[str]
    document: Mapped[dict[str, Any]]
    changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    changed_by: Mapped[str | None]


class PatientTable(TypedResourceTable):
    """Patients, with name, demographics and home address as indexed columns."""

    __tablename__ = "patients"
    __table_args__ = typed_table_args(
        SCHEMA,
        Index(
            "ix_patients_full_name_trgm",
            "full_name",
            postgresql_using="gin",
            postgresql_ops={"full_name": "gin_trgm_ops"},
        ),
    )

    full_name: Mapped[str | None] = key_column(attr("full_name"))
    family_name: Mapped[str | None] = key_column(primary_name("family"), index=True)
    given_names: Mapped[list[str] | None] = key_column(primary_name("given"))
    gender: Mapped[str | None] = key_column(attr("gender"), index=True)
    birth_date: Mapped[date | None] = key_column(attr("birth_date"), index=True)
    active: Mapped[bool | None] = key_column(attr("active"))
    city: Mapped[str | None] = key_column(attr("address", 0, "city"))
    state: Mapped[str | None] = key_column(attr("address", 0, "state"))
    postal_code: Mapped[str | None] = key_column(attr("address", 0, "postal_code"), index=True)
    # Added by revision 0002 (back-filled from the stored documents): deceased_boolean, or true
    # when only a deceased date is recorded.
    deceased: Mapped[bool | None] = key_column(
        coalesce(attr("deceased_boolean"), present(attr("deceased_date_time")))
    )


class PractitionerTable(TypedResourceTable):
    """Practitioners (clinicians)."""

    __tablename__ = "practitioners"
    __table_args__ = typed_table_args(SCHEMA)

    full_name: Mapped[str | None] = key_column(attr("full_name"))
    family_name: Mapped[str | None] = key_column(primary_name("family"), index=True)
    gender: Mapped[str | None] = key_column(attr("gender"))
    active: Mapped[bool | None] = key_column(attr("active"))
    identifier_value: Mapped[str | None] = key_column(attr("identifier", 0, "value"), index=True)


class OrganizationTable(TypedResourceTable):
    """Organizations (hospitals, payers, departments)."""

    __tablename__ = "organizations"
    __table_args__ = typed_table_args(SCHEMA)

    name: Mapped[str | None] = key_column(attr("name"), index=True)
    type_code: Mapped[str | None] = key_column(coding("type", part="code"))
    active: Mapped[bool | None] = key_column(attr("active"))
    city: Mapped[str | None] = key_column(attr("address", 0, "city"))
    state: Mapped[str | None] = key_column(attr("address", 0, "state"))


class EncounterTable(PatientLinkMixin, StatusMixin, TypedResourceTable):
    """Encounters (visits, admissions)."""

    __tablename__ = "encounters"
    __table_args__ = typed_table_args(SCHEMA)

    class_code: Mapped[str | None] = key_column(attr("encounter_class", "code"))
    type_code: Mapped[str | None] = key_column(coding("type", part="code"))
    type_display: Mapped[str | None] = key_column(text_of("type", 0))
    period_start: Mapped[datetime | None] = key_column(attr("period", "start"), index=True)
    period_end: Mapped[datetime | None] = key_column(attr("period", "end"))
    service_provider_id: Mapped[str | None] = key_column(
        ref_id("service_provider", target="Organization")
    )


class ObservationTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Observations (vitals, labs, social history) with code, value and time as columns."""

    __tablename__ = "observations"
    __table_args__ = typed_table_args(
        SCHEMA,
        Index("ix_observations_patient_id_code_effective_at", "patient_id", "code", "effective_at"),
    )

    category_code: Mapped[str | None] = key_column(coding("category", part="code"))
    value_numeric: Mapped[Decimal | None] = key_column(
        coalesce(attr("value_quantity", "value"), attr("value_integer"))
    )
    value_unit: Mapped[str | None] = key_column(attr("value_quantity", "unit"))
    value_text: Mapped[str | None] = key_column(
        coalesce(attr("value_string"), text_of("value_codeable_concept"))
    )
    interpretation_code: Mapped[str | None] = key_column(coding("interpretation", part="code"))
    effective_at: Mapped[datetime | None] = key_column(
        coalesce(attr("effective_date_time"), attr("effective_period", "start")), index=True
    )
