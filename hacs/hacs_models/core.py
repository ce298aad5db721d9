"""Core resources (hacs_core): Patient, Practitioner, Organization, Encounter, Observation."""

from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import Field, model_validator

from ._time import UtcDatetime
from .base import BaseResource, NotesMixin
from .datatypes import (
    Address,
    AdministrativeGender,
    CodeableConcept,
    Coding,
    ContactPoint,
    HumanName,
    Identifier,
    JsonObject,
    Period,
    Quantity,
    Reference,
)

__all__ = [
    "UCUM_SYSTEM",
    "Encounter",
    "Observation",
    "ObservationStatus",
    "Organization",
    "Patient",
    "PersonResource",
    "Practitioner",
]

UCUM_SYSTEM = "http://unitsofmeasure.org"
"""Code system of UCUM units, the default system for observation quantities."""

ObservationStatus = Literal[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
]
"""FHIR observation-status codes."""


class PersonResource(BaseResource):
    """Fields shared by Patient and Practitioner, with ``full_name``/``name`` kept in step.

    If only ``name`` is given, ``full_name`` is derived from the first official name (else
    the first name); if only ``full_name`` is given, an official HumanName is built from it.
    """

    identifier: list[Identifier] = Field(default_factory=list)
    active: bool = True
    name: list[HumanName] = Field(default_factory=list)
    full_name: str | None = None
    telecom: list[ContactPoint] = Field(default_factory=list)
    gender: AdministrativeGender | None = None
    birth_date: date | None = None
    address: list[Address] = Field(default_factory=list)

    @model_validator(mode="after")
    def _derive_names(self) -> Self:
        """Fill whichever of full_name/name is missing from the other; never both ways."""
        # Writes go through __dict__: assignment would re-run validation and recurse.
        if self.full_name is None:
            if self.name:
                chosen = next((n for n in self.name if n.use == "official"), self.name[0])
                derived = chosen.display_text()
                if derived is not None:
                    self.__dict__["full_name"] = derived
                    self.__pydantic_fields_set__.add("full_name")
        elif not self.name:
            words = self.full_name.split()
            if words:
                official = HumanName(
                    use="official", text=self.full_name, family=words[-1], given=words[:-1]
                )
                self.__dict__["name"] = [official]
                self.__pydantic_fields_set__.add("name")
        return self


class Patient(PersonResource):
    """A person receiving care."""

    resource_type: str = "Patient"
    deceased_boolean: bool | None = None
    deceased_date_time: UtcDatetime | None = None
    marital_status: CodeableConcept | None = None
    communication: list[JsonObject] = Field(default_factory=list)
    general_practitioner: list[Reference] = Field(default_factory=list)
    managing_organization: Reference | None = None


class Practitioner(PersonResource):
    """A person who provides care (clinician, nurse, pharmacist, ...)."""

    resource_type: str = "Practitioner"
    qualification: list[JsonObject] = Field(default_factory=list)


class Organization(BaseResource):
    """A provider, payer or other organisation."""

    resource_type: str = "Organization"
    identifier: list[Identifier] = Field(default_factory=list)
    active: bool = True
    type: list[CodeableConcept] = Field(default_factory=list)
    name: str | None = None
    alias: list[str] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)
    address: list[Address] = Field(default_factory=list)
    part_of: Reference | None = None


class Encounter(BaseResource):
    """An interaction between a patient and providers (visit, admission, ...)."""

    resource_type: str = "Encounter"
    identifier: list[Identifier] = Field(default_factory=list)
    status: str = "unknown"
    encounter_class: Coding | None = None
    """FHIR ``Encounter.class`` (renamed: ``class`` is a Python keyword)."""
    type: list[CodeableConcept] = Field(default_factory=list)
    service_type: CodeableConcept | None = None
    priority: CodeableConcept | None = None
    subject: Reference | None = None
    participant: list[JsonObject] = Field(default_factory=list)
    period: Period | None = None
    reason_code: list[CodeableConcept] = Field(default_factory=list)
    diagnosis: list[JsonObject] = Field(default_factory=list)
    hospitalization: JsonObject | None = None
    location: list[JsonObject] = Field(default_factory=list)
    service_provider: Reference | None = None


class Observation(NotesMixin, BaseResource):
    """A measurement or assertion about a subject (vital sign, lab result, ...)."""

    resource_type: str = "Observation"
    identifier: list[Identifier] = Field(default_factory=list)
    status: ObservationStatus = "final"
    category: list[CodeableConcept] = Field(default_factory=list)
    code: CodeableConcept
    subject: Reference | None = None
    encounter: Reference | None = None
    effective_date_time: UtcDatetime | None = None
    effective_period: Period | None = None
    issued: UtcDatetime | None = None
    performer: list[Reference] = Field(default_factory=list)
    value_quantity: Quantity | None = None
    value_codeable_concept: CodeableConcept | None = None
    value_string: str | None = None
    value_boolean: bool | None = None
    value_integer: int | None = None
    value_period: Period | None = None
    interpretation: list[CodeableConcept] = Field(default_factory=list)
    body_site: CodeableConcept | None = None
    method: CodeableConcept | None = None
    reference_range: list[JsonObject] = Field(default_factory=list)
    has_member: list[Reference] = Field(default_factory=list)
    derived_from: list[Reference] = Field(default_factory=list)
    component: list[JsonObject] = Field(default_factory=list)

    def set_quantity_value(
        self,
        value: Decimal | int | float,
        unit: str,
        system: str = UCUM_SYSTEM,
        code: str | None = None,
    ) -> Quantity:
        """Set ``value_quantity``; the code defaults to the unit (UCUM units are their codes)."""
        quantity = Quantity(value=value, unit=unit, system=system, code=code or unit)
        self.value_quantity = quantity
        return quantity
