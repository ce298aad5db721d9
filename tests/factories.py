"""Builders of the models, documents and actors the tests store: one copy, imported by every test.

Each model builder returns a new model with a new id, so two calls never collide in one
database; keyword overrides change what a test is about and leave the rest realistic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hacs_models import (
    Actor,
    Address,
    CodeableConcept,
    Condition,
    ContactPoint,
    Encounter,
    HumanName,
    Identifier,
    Observation,
    Patient,
)

# May do everything: for tests about storage, not about permissions.
ADMIN = Actor(name="admin", role="admin", permissions=["admin:*"])

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


# -- models -------------------------------------------------------------------------------------


def make_patient(**overrides: Any) -> Patient:
    """A patient with every kind of element the typed table and the document both hold."""
    data: dict[str, Any] = {
        "full_name": "Carlos Miguel Fernandez",
        "name": [HumanName(use="official", family="Fernandez", given=["Carlos", "Miguel"])],
        "gender": "male",
        "birth_date": date(1978, 12, 3),
        "active": True,
        "telecom": [ContactPoint(system="phone", value="+1-555-0198", use="mobile")],
        "address": [
            Address(
                use="home",
                line=["456 Pine Avenue"],
                city="Houston",
                state="TX",
                postal_code="77001",
            )
        ],
        "identifier": [Identifier(system="urn:mrn", value="MRN-1")],
        "text": {"status": "generated", "div": "<div>Carlos</div>"},
        "extension": [{"url": "http://example.org/ext", "valueString": "kept"}],
    }
    data.update(overrides)
    return Patient(**data)


def make_observation(patient_id: str, value: float = 118, **overrides: Any) -> Observation:
    """A systolic blood pressure of ``patient_id`` with a category, a quantity and a note."""
    obs = Observation(
        status="final",
        category=[
            CodeableConcept(
                text="Vital Signs",
                coding=[
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ],
            )
        ],
        code=CodeableConcept(
            text="Systolic blood pressure",
            coding=[{"system": LOINC, "code": "8480-6", "display": "Systolic BP"}],
        ),
        subject=f"Patient/{patient_id}",
        effective_date_time=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        **overrides,
    )
    obs.set_quantity_value(value, "mmHg", system="http://unitsofmeasure.org")
    obs.add_note("Systolic 118 mmHg; Diastolic 76 mmHg")
    return obs


def concept(system: str, code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[{"system": system, "code": code, "display": display}])


def observation(
    patient: Patient,
    code: str,
    value: float,
    at: datetime,
    *,
    system: str = LOINC,
    status: str = "final",
    interpretation: str | None = None,
    encounter: Encounter | None = None,
) -> Observation:
    """An observation of ``patient`` coded ``system|code``, in mmHg, at ``at`` (for finders)."""
    obs = Observation(
        code=concept(system, code),
        subject=f"Patient/{patient.id}",
        effective_date_time=at,
        status=status,
        encounter=f"Encounter/{encounter.id}" if encounter else None,
        interpretation=[concept("http://hl7.org/obs-interp", interpretation)]
        if interpretation
        else [],
    )
    obs.set_quantity_value(value, "mmHg")
    return obs


def condition(
    patient: Patient,
    code: str,
    clinical_status: str,
    onset: datetime,
    verification: str | None = None,
) -> Condition:
    """A SNOMED-coded condition of ``patient`` with its clinical and verification status."""
    return Condition(
        code=concept(SNOMED, code),
        clinical_status=concept("http://hl7.org/condition-clinical", clinical_status),
        verification_status=concept("http://hl7.org/condition-ver-status", verification)
        if verification
        else None,
        subject=f"Patient/{patient.id}",
        onset_date_time=onset,
    )


# -- documents (FHIR JSON, as an import file holds them) ----------------------------------------


def observation_document(resource_id: str, **extra: Any) -> dict[str, Any]:
    """A minimal valid FHIR Observation (LOINC 8867-4, heart rate); ``extra`` adds elements."""
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        **extra,
    }
