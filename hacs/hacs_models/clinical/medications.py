"""Medication and nutrition resources: what is prescribed, taken or ordered to eat."""

from pydantic import Field

from .._time import UtcDatetime
from ..base import BaseResource, NotesMixin
from ..datatypes import CodeableConcept, JsonObject, Period, Reference

__all__ = ["Medication", "MedicationRequest", "MedicationStatement", "NutritionOrder"]


class Medication(BaseResource):
    """A medication product, identified by code, with form and ingredients."""

    resource_type: str = "Medication"
    code: CodeableConcept | None = None
    status: str | None = None
    manufacturer: Reference | None = None
    form: CodeableConcept | None = None
    ingredient: list[JsonObject] = Field(default_factory=list)
    batch: JsonObject | None = None


class MedicationRequest(NotesMixin, BaseResource):
    """An order or prescription of a medication for a patient."""

    resource_type: str = "MedicationRequest"
    status: str = "active"
    intent: str = "order"
    category: list[CodeableConcept] = Field(default_factory=list)
    priority: str | None = None
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    authored_on: UtcDatetime | None = None
    requester: Reference | None = None
    reason_code: list[CodeableConcept] = Field(default_factory=list)
    dosage_instruction: list[JsonObject] = Field(default_factory=list)
    dispense_request: JsonObject | None = None


class MedicationStatement(NotesMixin, BaseResource):
    """A record that a patient is taking, or has taken, a medication."""

    resource_type: str = "MedicationStatement"
    status: str = "active"
    medication_codeable_concept: CodeableConcept | None = None
    medication_reference: Reference | None = None
    subject: Reference | None = None
    context: Reference | None = None
    effective_date_time: UtcDatetime | None = None
    effective_period: Period | None = None
    date_asserted: UtcDatetime | None = None
    information_source: Reference | None = None
    reason_code: list[CodeableConcept] = Field(default_factory=list)
    dosage: list[JsonObject] = Field(default_factory=list)


class NutritionOrder(NotesMixin, BaseResource):
    """An order for a diet, supplement or enteral formula."""

    resource_type: str = "NutritionOrder"
    status: str = "active"
    intent: str = "order"
    patient: Reference | None = None
    encounter: Reference | None = None
    date_time: UtcDatetime | None = None
    orderer: Reference | None = None
    oral_diet: JsonObject | None = None
    supplement: list[JsonObject] = Field(default_factory=list)
    enteral_formula: JsonObject | None = None
