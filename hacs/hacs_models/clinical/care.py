"""Care coordination resources: plans, teams, goals, service requests, appointments."""

from datetime import date

from pydantic import Field, ValidationError

from .._time import UtcDatetime
from ..base import BaseResource, NotesMixin
from ..datatypes import CodeableConcept, JsonObject, Period, Reference

__all__ = ["Appointment", "CarePlan", "CareTeam", "Goal", "ServiceRequest"]


class CarePlan(NotesMixin, BaseResource):
    """How one or more practitioners intend to deliver care to a patient."""

    resource_type: str = "CarePlan"
    status: str = "active"
    intent: str = "plan"
    category: list[CodeableConcept] = Field(default_factory=list)
    title: str | None = None
    description: str | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    period: Period | None = None
    author: Reference | None = None
    care_team: list[Reference] = Field(default_factory=list)
    addresses: list[Reference] = Field(default_factory=list)
    goal: list[Reference] = Field(default_factory=list)
    activity: list[JsonObject] = Field(default_factory=list)


class CareTeam(NotesMixin, BaseResource):
    """The people and organisations who plan to take part in a patient's care."""

    resource_type: str = "CareTeam"
    status: str | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    name: str | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    period: Period | None = None
    participant: list[JsonObject] = Field(default_factory=list)
    managing_organization: list[Reference] = Field(default_factory=list)


class Goal(NotesMixin, BaseResource):
    """An intended objective for a patient (e.g. weight loss, HbA1c below target)."""

    resource_type: str = "Goal"
    lifecycle_status: str = "active"
    achievement_status: CodeableConcept | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    priority: CodeableConcept | None = None
    description: CodeableConcept
    subject: Reference | None = None
    start_date: date | None = None
    target: list[JsonObject] = Field(default_factory=list)
    status_date: date | None = None
    addresses: list[Reference] = Field(default_factory=list)


class ServiceRequest(NotesMixin, BaseResource):
    """A request for a service (lab test, imaging, referral, ...)."""

    resource_type: str = "ServiceRequest"
    status: str = "active"
    intent: str = "order"
    category: list[CodeableConcept] = Field(default_factory=list)
    priority: str | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    occurrence_date_time: UtcDatetime | None = None
    authored_on: UtcDatetime | None = None
    requester: Reference | None = None
    performer: list[Reference] = Field(default_factory=list)
    reason_code: list[CodeableConcept] = Field(default_factory=list)


class Appointment(BaseResource):
    """A booking of a healthcare event among patients, practitioners and locations."""

    resource_type: str = "Appointment"
    status: str = "proposed"
    cancelation_reason: CodeableConcept | None = None
    service_category: list[CodeableConcept] = Field(default_factory=list)
    service_type: list[CodeableConcept] = Field(default_factory=list)
    specialty: list[CodeableConcept] = Field(default_factory=list)
    appointment_type: CodeableConcept | None = None
    reason_code: list[CodeableConcept] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=0)
    description: str | None = None
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    minutes_duration: int | None = Field(default=None, ge=1)
    comment: str | None = None
    participant: list[JsonObject] = Field(default_factory=list)

    @property
    def patient_reference(self) -> Reference | None:
        """The first participant actor that references a Patient, or None."""
        for participant in self.participant:
            actor = participant.get("actor")
            if not isinstance(actor, dict | str):
                continue
            try:
                reference = Reference.model_validate(actor)
            except ValidationError:
                continue  # a malformed actor is skipped, not raised from a property
            if reference.resource_type == "Patient" or (
                reference.type == "Patient" and reference.resource_type is None
            ):
                return reference
        return None
