"""``hacs_clinical``: conditions, medications, procedures, reports, plans, knowledge artefacts."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy.orm import Mapped

from hacs_persistence.schema.base import TypedResourceTable, key_column, typed_table_args
from hacs_persistence.schema.mixins import (
    CodedMixin,
    EncounterLinkMixin,
    PatientLinkMixin,
    StatusMixin,
)
from hacs_persistence.schema.sources import (
    Source,
    attr,
    coalesce,
    coding,
    participant_ref,
    ref_id,
    text_of,
)

__all__ = [
    "ActivityDefinitionTable",
    "AllergyIntoleranceTable",
    "AppointmentTable",
    "CarePlanTable",
    "CareTeamTable",
    "ConditionTable",
    "DiagnosticReportTable",
    "DocumentReferenceTable",
    "EvidenceVariableTable",
    "FamilyMemberHistoryTable",
    "GoalTable",
    "ImmunizationTable",
    "LibraryTable",
    "MedicationRequestTable",
    "MedicationStatementTable",
    "MedicationTable",
    "NutritionOrderTable",
    "PlanDefinitionTable",
    "ProcedureTable",
    "RiskAssessmentTable",
    "ServiceRequestTable",
]

SCHEMA = "hacs_clinical"


class _DefinitionColumns(StatusMixin):
    """Canonical knowledge artefacts: url, name, title."""

    url: Mapped[str | None] = key_column(attr("url"), index=True)
    name: Mapped[str | None] = key_column(attr("name"))
    title: Mapped[str | None] = key_column(attr("title"))


class ConditionTable(PatientLinkMixin, EncounterLinkMixin, CodedMixin, TypedResourceTable):
    """Conditions (problems, diagnoses)."""

    __tablename__ = "conditions"
    __table_args__ = typed_table_args(SCHEMA)

    clinical_status: Mapped[str | None] = key_column(
        coding("clinical_status", part="code"), index=True
    )
    verification_status: Mapped[str | None] = key_column(coding("verification_status", part="code"))
    category_code: Mapped[str | None] = key_column(coding("category", part="code"))
    onset_at: Mapped[datetime | None] = key_column(attr("onset_date_time"))
    abatement_at: Mapped[datetime | None] = key_column(attr("abatement_date_time"))
    recorded_at: Mapped[datetime | None] = key_column(attr("recorded_date"))


class ProcedureTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Procedures performed on a patient."""

    __tablename__ = "procedures"
    __table_args__ = typed_table_args(SCHEMA)

    performed_at: Mapped[datetime | None] = key_column(
        coalesce(attr("performed_date_time"), attr("performed_period", "start")), index=True
    )


class MedicationTable(StatusMixin, CodedMixin, TypedResourceTable):
    """Medication definitions (products)."""

    __tablename__ = "medications"
    __table_args__ = typed_table_args(SCHEMA)


class MedicationRequestTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Prescriptions and medication orders."""

    __tablename__ = "medication_requests"
    __table_args__ = typed_table_args(SCHEMA)
    code_path: ClassVar[tuple[str | int, ...]] = ("medication_codeable_concept",)

    intent: Mapped[str | None] = key_column(attr("intent"))
    authored_at: Mapped[datetime | None] = key_column(attr("authored_on"), index=True)
    requester_id: Mapped[str | None] = key_column(ref_id("requester", target="Practitioner"))


class MedicationStatementTable(PatientLinkMixin, StatusMixin, CodedMixin, TypedResourceTable):
    """Statements of medication use."""

    __tablename__ = "medication_statements"
    __table_args__ = typed_table_args(SCHEMA)
    code_path: ClassVar[tuple[str | int, ...]] = ("medication_codeable_concept",)

    effective_at: Mapped[datetime | None] = key_column(
        coalesce(attr("effective_date_time"), attr("effective_period", "start"))
    )


class AllergyIntoleranceTable(PatientLinkMixin, CodedMixin, TypedResourceTable):
    """Allergies and intolerances."""

    __tablename__ = "allergy_intolerances"
    __table_args__ = typed_table_args(SCHEMA)
    patient_path: ClassVar[tuple[str | int, ...]] = ("patient",)

    clinical_status: Mapped[str | None] = key_column(coding("clinical_status", part="code"))
    verification_status: Mapped[str | None] = key_column(coding("verification_status", part="code"))
    criticality: Mapped[str | None] = key_column(attr("criticality"))
    onset_at: Mapped[datetime | None] = key_column(attr("onset_date_time"))
    recorded_at: Mapped[datetime | None] = key_column(attr("recorded_date"))


class ImmunizationTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Immunizations given."""

    __tablename__ = "immunizations"
    __table_args__ = typed_table_args(SCHEMA)
    patient_path: ClassVar[tuple[str | int, ...]] = ("patient",)
    code_path: ClassVar[tuple[str | int, ...]] = ("vaccine_code",)

    occurrence_at: Mapped[datetime | None] = key_column(attr("occurrence_date_time"), index=True)


class DiagnosticReportTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Diagnostic reports (lab panels, imaging reports)."""

    __tablename__ = "diagnostic_reports"
    __table_args__ = typed_table_args(SCHEMA)

    category_code: Mapped[str | None] = key_column(coding("category", part="code"))
    effective_at: Mapped[datetime | None] = key_column(
        coalesce(attr("effective_date_time"), attr("effective_period", "start")), index=True
    )
    issued_at: Mapped[datetime | None] = key_column(attr("issued"))


class DocumentReferenceTable(PatientLinkMixin, StatusMixin, CodedMixin, TypedResourceTable):
    """Clinical documents and notes."""

    __tablename__ = "document_references"
    __table_args__ = typed_table_args(SCHEMA)
    code_path: ClassVar[tuple[str | int, ...]] = ("type",)

    category_code: Mapped[str | None] = key_column(coding("category", part="code"))
    document_date: Mapped[datetime | None] = key_column(attr("date"), index=True)


class CarePlanTable(PatientLinkMixin, EncounterLinkMixin, StatusMixin, TypedResourceTable):
    """Care plans."""

    __tablename__ = "care_plans"
    __table_args__ = typed_table_args(SCHEMA)

    intent: Mapped[str | None] = key_column(attr("intent"))
    category_code: Mapped[str | None] = key_column(coding("category", part="code"))
    title: Mapped[str | None] = key_column(coalesce(attr("title"), text_of("category", 0)))
    period_start: Mapped[datetime | None] = key_column(attr("period", "start"))
    period_end: Mapped[datetime | None] = key_column(attr("period", "end"))


class CareTeamTable(PatientLinkMixin, StatusMixin, TypedResourceTable):
    """Care teams."""

    __tablename__ = "care_teams"
    __table_args__ = typed_table_args(SCHEMA)

    name: Mapped[str | None] = key_column(attr("name"))
    period_start: Mapped[datetime | None] = key_column(attr("period", "start"))
    period_end: Mapped[datetime | None] = key_column(attr("period", "end"))


class GoalTable(PatientLinkMixin, StatusMixin, CodedMixin, TypedResourceTable):
    """Patient goals."""

    __tablename__ = "goals"
    __table_args__ = typed_table_args(SCHEMA)
    status_path: ClassVar[tuple[str | int, ...]] = ("lifecycle_status",)
    code_path: ClassVar[tuple[str | int, ...]] = ("description",)

    start_date: Mapped[date | None] = key_column(attr("start_date"))


class ServiceRequestTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Orders for services (labs, referrals, imaging)."""

    __tablename__ = "service_requests"
    __table_args__ = typed_table_args(SCHEMA)

    intent: Mapped[str | None] = key_column(attr("intent"))
    priority: Mapped[str | None] = key_column(attr("priority"))
    authored_at: Mapped[datetime | None] = key_column(attr("authored_on"), index=True)
    occurrence_at: Mapped[datetime | None] = key_column(attr("occurrence_date_time"))


class FamilyMemberHistoryTable(PatientLinkMixin, StatusMixin, TypedResourceTable):
    """Family member histories."""

    __tablename__ = "family_member_histories"
    __table_args__ = typed_table_args(SCHEMA)
    patient_path: ClassVar[tuple[str | int, ...]] = ("patient",)

    relationship_code: Mapped[str | None] = key_column(coding("relationship", part="code"))
    recorded_at: Mapped[datetime | None] = key_column(attr("date"))


class RiskAssessmentTable(
    PatientLinkMixin, EncounterLinkMixin, StatusMixin, CodedMixin, TypedResourceTable
):
    """Risk assessments."""

    __tablename__ = "risk_assessments"
    __table_args__ = typed_table_args(SCHEMA)

    occurrence_at: Mapped[datetime | None] = key_column(attr("occurrence_date_time"))


class AppointmentTable(PatientLinkMixin, StatusMixin, CodedMixin, TypedResourceTable):
    """Appointments; the patient is the first Patient participant."""

    __tablename__ = "appointments"
    __table_args__ = typed_table_args(SCHEMA)
    code_path: ClassVar[tuple[str | int, ...]] = ("appointment_type",)
    patient_source: ClassVar[Source | None] = participant_ref("participant")

    start_at: Mapped[datetime | None] = key_column(attr("start"), index=True)
    end_at: Mapped[datetime | None] = key_column(attr("end"))


class NutritionOrderTable(PatientLinkMixin, EncounterLinkMixin, StatusMixin, TypedResourceTable):
    """Diet and nutrition orders."""

    __tablename__ = "nutrition_orders"
    __table_args__ = typed_table_args(SCHEMA)
    patient_path: ClassVar[tuple[str | int, ...]] = ("patient",)

    intent: Mapped[str | None] = key_column(attr("intent"))
    ordered_at: Mapped[datetime | None] = key_column(attr("date_time"))


class PlanDefinitionTable(_DefinitionColumns, TypedResourceTable):
    """Plan definitions (protocols, order sets)."""

    __tablename__ = "plan_definitions"
    __table_args__ = typed_table_args(SCHEMA)

    type_code: Mapped[str | None] = key_column(coding("type", part="code"))


class ActivityDefinitionTable(_DefinitionColumns, CodedMixin, TypedResourceTable):
    """Activity definitions."""

    __tablename__ = "activity_definitions"
    __table_args__ = typed_table_args(SCHEMA)

    kind: Mapped[str | None] = key_column(attr("kind"))


class LibraryTable(_DefinitionColumns, TypedResourceTable):
    """Libraries (logic and content for knowledge artefacts)."""

    __tablename__ = "libraries"
    __table_args__ = typed_table_args(SCHEMA)

    type_code: Mapped[str | None] = key_column(coding("type", part="code"))


class EvidenceVariableTable(_DefinitionColumns, TypedResourceTable):
    """Evidence variables."""

    __tablename__ = "evidence_variables"
    __table_args__ = typed_table_args(SCHEMA)

    variable_type: Mapped[str | None] = key_column(attr("type"))
