"""Clinical record resources: conditions, procedures, allergies, immunizations, risk."""

from pydantic import Field

from .._time import UtcDatetime
from ..base import BaseResource, NotesMixin
from ..datatypes import CodeableConcept, JsonObject, Period, Reference

__all__ = [
    "AllergyIntolerance",
    "Condition",
    "FamilyMemberHistory",
    "Immunization",
    "Procedure",
    "RiskAssessment",
]


class Condition(NotesMixin, BaseResource):
    """A problem, diagnosis or other clinical concern."""

    resource_type: str = "Condition"
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    severity: CodeableConcept | None = None
    code: CodeableConcept | None = None
    body_site: list[CodeableConcept] = Field(default_factory=list)
    subject: Reference | None = None
    encounter: Reference | None = None
    onset_date_time: UtcDatetime | None = None
    abatement_date_time: UtcDatetime | None = None
    recorded_date: UtcDatetime | None = None
    recorder: Reference | None = None
    asserter: Reference | None = None


class Procedure(NotesMixin, BaseResource):
    """An action performed on or for a patient (surgery, counselling, ...)."""

    resource_type: str = "Procedure"
    status: str = "completed"
    category: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    performed_date_time: UtcDatetime | None = None
    performed_period: Period | None = None
    performer: list[JsonObject] = Field(default_factory=list)
    reason_code: list[CodeableConcept] = Field(default_factory=list)
    body_site: list[CodeableConcept] = Field(default_factory=list)
    outcome: CodeableConcept | None = None


class AllergyIntolerance(NotesMixin, BaseResource):
    """A risk of harmful reaction to a substance; FHIR names the subject ``patient``."""

    resource_type: str = "AllergyIntolerance"
    clinical_status: CodeableConcept | None = None
    verification_status: CodeableConcept | None = None
    type: str | None = None
    category: list[str] = Field(default_factory=list)
    criticality: str | None = None
    code: CodeableConcept | None = None
    patient: Reference | None = None
    encounter: Reference | None = None
    onset_date_time: UtcDatetime | None = None
    recorded_date: UtcDatetime | None = None
    recorder: Reference | None = None
    reaction: list[JsonObject] = Field(default_factory=list)


class Immunization(NotesMixin, BaseResource):
    """A vaccine given (or reported as given) to a patient."""

    resource_type: str = "Immunization"
    status: str = "completed"
    vaccine_code: CodeableConcept
    patient: Reference | None = None
    encounter: Reference | None = None
    occurrence_date_time: UtcDatetime | None = None
    recorded: UtcDatetime | None = None
    primary_source: bool | None = None
    lot_number: str | None = None
    site: CodeableConcept | None = None
    route: CodeableConcept | None = None
    performer: list[JsonObject] = Field(default_factory=list)


class FamilyMemberHistory(NotesMixin, BaseResource):
    """Significant health conditions of a patient's relative."""

    resource_type: str = "FamilyMemberHistory"
    status: str = "completed"
    patient: Reference | None = None
    date: UtcDatetime | None = None
    name: str | None = None
    relationship: CodeableConcept
    sex: CodeableConcept | None = None
    condition: list[JsonObject] = Field(default_factory=list)


class RiskAssessment(NotesMixin, BaseResource):
    """An assessment of the likely outcome(s) for a patient, with predictions."""

    resource_type: str = "RiskAssessment"
    status: str = "final"
    method: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    occurrence_date_time: UtcDatetime | None = None
    condition: Reference | None = None
    performer: Reference | None = None
    basis: list[Reference] = Field(default_factory=list)
    prediction: list[JsonObject] = Field(default_factory=list)
    mitigation: str | None = None
