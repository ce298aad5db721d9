"""``hacs_core``: the backbone resources and the versions table that holds every document."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Index, func, text
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
    fhir_text,
    present,
    primary_name,
    ref_id,
    text_of,
)

__all__ = [
    "OBSERVATION_VIEW_FALLBACK",
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


# For each typed column a SQL on FHIR view reads instead of the FHIR JSON, the rows where it is
# not the view's value (hacs_persistence.views.typed): a dangling patient reference an import
# cleared; a value that is not a Quantity (valueInteger also fills value_numeric); an instant
# from a Period, or a row stored before effective_text existed. Views read the JSON for these
# rows, which the partial index ix_observations_view_fallback finds without a table scan.
OBSERVATION_VIEW_FALLBACK: dict[str, str] = {
    "patient_id": "patient_id IS NULL",
    "value_numeric": "value_unit IS NULL",
    "effective_text": "effective_text IS NULL AND effective_at IS NOT NULL",
}


class ObservationTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Observations (vitals, labs, social history) with code, value and time as columns."""

    __tablename__ = "observations"
    __table_args__ = typed_table_args(
        SCHEMA,
        Index("ix_observations_patient_id_code_effective_at", "patient_id", "code", "effective_at"),
        Index(
            "ix_observations_view_fallback",
            "code",
            postgresql_where=text(
                " OR ".join(f"({c})" for c in OBSERVATION_VIEW_FALLBACK.values())
            ),
        ),
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
    # effectiveDateTime as written (offset, fraction digits); effective_at is its instant.
    effective_text: Mapped[str | None] = key_column(fhir_text("effective_date_time"))
