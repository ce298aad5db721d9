"""Resource-specific behaviour: the user guide's constructors, derived names, helpers."""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hacs_models import (
    UCUM_SYSTEM,
    Actor,
    ActorRole,
    Address,
    AgentMessage,
    Annotation,
    Appointment,
    CodeableConcept,
    Coding,
    ContactPoint,
    Encounter,
    HumanName,
    Immunization,
    KnowledgeItem,
    MemoryBlock,
    Observation,
    Patient,
    Practitioner,
    Quantity,
    Reference,
    ToolDefinition,
)


@pytest.fixture
def utc_minus_5(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fix local time to UTC-5 (no DST) for the test, then restore."""
    monkeypatch.setenv("TZ", "XST+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def guide_patient() -> Patient:
    """The patient exactly as the user guide builds it."""
    return Patient(
        full_name="Carlos Miguel Fernandez",
        name=[HumanName(use="official", family="Fernandez", given=["Carlos", "Miguel"])],
        gender="male",
        birth_date=date(1978, 12, 3),
        active=True,
        telecom=[ContactPoint(system="phone", value="+1-555-0198", use="mobile")],
        address=[
            Address(
                use="home",
                line=["456 Pine Avenue"],
                city="Houston",
                state="TX",
                postal_code="77001",
            )
        ],
    )


def guide_observation(patient: Patient) -> Observation:
    """The blood pressure observation exactly as the user guide builds it."""
    return Observation(
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
            text="Blood Pressure",
            coding=[
                {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}
            ],
        ),
        subject=f"Patient/{patient.id}",
        effective_date_time=datetime.now(),
    )


def test_guide_patient() -> None:
    """The guide's Patient keeps both name forms as given and round-trips."""
    patient = guide_patient()
    assert patient.full_name == "Carlos Miguel Fernandez"
    assert patient.name == [
        HumanName(use="official", family="Fernandez", given=["Carlos", "Miguel"])
    ]
    assert patient.birth_date == date(1978, 12, 3)
    assert patient.address[0].postal_code == "77001"
    assert Patient.model_validate(patient.model_dump(mode="json")) == patient
    assert Patient.model_validate_json(patient.model_dump_json()) == patient


@pytest.mark.usefixtures("utc_minus_5")
def test_guide_observation_and_helpers() -> None:
    """The guide's Observation: dict codings, string subject, local now stored as UTC."""
    patient = guide_patient()
    before = datetime.now(UTC)
    obs = guide_observation(patient)
    assert isinstance(obs.code.coding[0], Coding)
    assert obs.code.coding[0].code == "85354-9"
    assert obs.subject == Reference(reference=f"Patient/{patient.id}")
    assert obs.subject.resource_id == patient.id
    assert obs.effective_date_time is not None
    assert obs.effective_date_time.utcoffset() == timedelta(0)
    assert abs(obs.effective_date_time - before) < timedelta(seconds=5)

    quantity = obs.set_quantity_value(118, "mmHg", system="http://unitsofmeasure.org")
    assert obs.value_quantity == quantity
    assert quantity == Quantity(
        value=Decimal(118), unit="mmHg", system="http://unitsofmeasure.org", code="mmHg"
    )
    assert obs.model_dump(mode="json")["value_quantity"]["value"] == 118

    note = obs.add_note("Patient seated, left arm", author=None)
    assert obs.note == [note]
    assert note.text == "Patient seated, left arm"
    assert note.time is not None and note.time.utcoffset() == timedelta(0)
    assert Observation.model_validate(obs.model_dump(mode="json")) == obs
    assert Observation.model_validate_json(obs.model_dump_json()) == obs


def test_set_quantity_value_defaults_and_explicit_code() -> None:
    """The system defaults to UCUM; an explicit code wins over the unit."""
    obs = Observation(code={"text": "Temp"})
    obs.set_quantity_value(Decimal("37.5"), "Cel")
    assert obs.value_quantity is not None
    assert (obs.value_quantity.system, obs.value_quantity.code) == (UCUM_SYSTEM, "Cel")
    obs.set_quantity_value(98.6, "degrees F", code="[degF]")
    assert obs.value_quantity is not None
    assert obs.value_quantity.code == "[degF]"
    assert obs.value_quantity.value == Decimal("98.6")


def test_add_note_author_forms() -> None:
    """A string author is author_string; a Reference is author_reference; notes accumulate."""
    obs = Observation(code={"text": "x"})
    obs.add_note("first", author="Dr. Smith")
    obs.add_note("second", author=Reference(reference="Practitioner/p1"))
    assert [n.text for n in obs.note] == ["first", "second"]
    assert obs.note[0].author_string == "Dr. Smith"
    assert obs.note[1].author_reference == Reference(reference="Practitioner/p1")
    assert all(isinstance(n, Annotation) for n in obs.note)


def test_observation_code_required_and_status_validated() -> None:
    """code is required and status must be a FHIR observation-status code."""
    with pytest.raises(ValidationError) as info:
        Observation.model_validate({})
    assert [e["loc"] for e in info.value.errors()] == [("code",)]
    with pytest.raises(ValidationError) as info:
        Observation(code={"text": "x"}, status="done")
    assert [e["loc"] for e in info.value.errors()] == [("status",)]
    assert Observation(code={"text": "x"}).status == "final"


@pytest.mark.parametrize("cls", [Patient, Practitioner])
def test_full_name_derived_from_official_name(cls: type[Patient] | type[Practitioner]) -> None:
    """full_name comes from the first official name (text, else given + family)."""
    person = cls(
        name=[
            HumanName(use="nickname", given=["Charlie"]),
            HumanName(use="official", family="Fernandez", given=["Carlos", "Miguel"]),
        ]
    )
    assert person.full_name == "Carlos Miguel Fernandez"
    assert cls(name=[HumanName(text="Dr. Ana Ruiz", family="Ruiz")]).full_name == "Dr. Ana Ruiz"
    assert cls(name=[HumanName(use="usual", family="Solo")]).full_name == "Solo"
    assert cls(name=[HumanName(use="old")]).full_name is None
    again = cls.model_validate(person.model_dump(mode="json"))
    assert again == person
    assert cls.model_validate(again.model_dump(mode="json")) == person


@pytest.mark.parametrize("cls", [Patient, Practitioner])
def test_name_derived_from_full_name(cls: type[Patient] | type[Practitioner]) -> None:
    """An official HumanName is built from full_name when no name is given."""
    person = cls(full_name="Ana Maria Ruiz")
    assert person.name == [
        HumanName(use="official", text="Ana Maria Ruiz", family="Ruiz", given=["Ana", "Maria"])
    ]
    assert cls(full_name="Cher").name == [HumanName(use="official", text="Cher", family="Cher")]
    assert cls(full_name="   ").name == []
    again = cls.model_validate(person.model_dump(mode="json"))
    assert again == person
    assert cls.model_validate_json(again.model_dump_json()) == person


def test_both_names_left_untouched() -> None:
    """When both full_name and name are given, neither is changed."""
    patient = Patient(full_name="Preferred Name", name=[HumanName(family="Legal", given=["X"])])
    assert patient.full_name == "Preferred Name"
    assert patient.name == [HumanName(family="Legal", given=["X"])]
    patient.gender = "female"
    assert patient.full_name == "Preferred Name"


@pytest.mark.parametrize(
    ("field", "value"),
    [("gender", "robot"), ("birth_date", "not-a-date"), ("active", "perhaps")],
)
def test_bad_patient_values_name_the_field(field: str, value: str) -> None:
    """Bad values fail with an error located at the offending field."""
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({field: value})
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_assignment_is_validated() -> None:
    """validate_assignment: setters reject bad values and coerce good ones."""
    patient = Patient()
    with pytest.raises(ValidationError) as info:
        patient.gender = "robot"  # type: ignore[assignment]
    assert info.value.errors()[0]["loc"] == ("gender",)
    patient.managing_organization = "Organization/o1"  # type: ignore[assignment]
    assert isinstance(patient.managing_organization, Reference)


def test_encounter_class_and_default_status() -> None:
    """Encounter.class is encounter_class; status defaults to unknown."""
    enc = Encounter(encounter_class={"code": "AMB"}, subject="Patient/p1")
    assert enc.status == "unknown"
    assert enc.encounter_class == Coding(code="AMB")


def test_required_fields_from_fhir() -> None:
    """Elements that FHIR requires and the models type as required are enforced."""
    with pytest.raises(ValidationError) as info:
        Immunization.model_validate({"patient": "Patient/p1"})
    assert [e["loc"] for e in info.value.errors()] == [("vaccine_code",)]


def test_appointment_patient_reference() -> None:
    """patient_reference finds the first participant actor that is a Patient."""
    appt = Appointment(
        participant=[
            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
            {"status": "needs-action"},
            {"actor": {"reference": "Patient/p-1", "display": "Carlos"}},
            {"actor": {"reference": "Patient/p-2"}},
        ]
    )
    assert appt.patient_reference == Reference(reference="Patient/p-1", display="Carlos")
    assert Appointment(participant=[{"actor": "Patient/p-3"}]).patient_reference == Reference(
        reference="Patient/p-3"
    )
    assert (
        Appointment(participant=[{"actor": {"reference": "Location/l"}}]).patient_reference is None
    )
    assert Appointment().patient_reference is None
    assert "patient_reference" not in appt.model_dump()


def test_memory_importance_bounds_and_agent_role() -> None:
    """importance_score must be within [0, 1]; message roles are a closed set."""
    assert MemoryBlock(content="x").importance_score == 0.5
    with pytest.raises(ValidationError) as info:
        MemoryBlock(content="x", importance_score=1.5)
    assert info.value.errors()[0]["loc"] == ("importance_score",)
    with pytest.raises(ValidationError) as info:
        AgentMessage(role="robot", content="hi")
    assert info.value.errors()[0]["loc"] == ("role",)
    message = AgentMessage(role="user", content="hi", subject="Patient/p1")
    assert message.sent_at.utcoffset() == timedelta(0)
    assert message.subject == Reference(reference="Patient/p1")


def test_registry_models_defaults() -> None:
    """Registry resources carry their version defaults and free-form attributes."""
    tool = ToolDefinition(name="lookup", input_schema={"type": "object"})
    assert (tool.tool_version, tool.status, tool.id.startswith("tooldefinition-")) == (
        "1.0.0",
        "active",
        True,
    )
    item = KnowledgeItem(title="t", content="c", attributes={"k": 1}, embedding=[0.1, 0.2])
    assert item.knowledge_type == "fact"
    assert KnowledgeItem.model_validate_json(item.model_dump_json()) == item


def test_actor_is_reexported() -> None:
    """Actor and ActorRole from hacs_auth are available from hacs_models."""
    from hacs_auth.actor import Actor as AuthActor
    from hacs_auth.actor import ActorRole as AuthActorRole

    assert Actor is AuthActor
    assert ActorRole is AuthActorRole
