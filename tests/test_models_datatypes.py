"""Datatype behaviour: references from strings, codings from dicts, decimals as JSON numbers."""

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hacs_models import (
    Annotation,
    CodeableConcept,
    Coding,
    DiagnosticReport,
    Identifier,
    Observation,
    Patient,
    Period,
    Quantity,
    Reference,
)


def test_reference_from_plain_string_on_fields() -> None:
    """Reference-typed fields (single and list) accept "Type/id" and store a Reference."""
    obs = Observation(code={"text": "x"}, subject="Patient/abc", performer=["Practitioner/p1"])
    assert isinstance(obs.subject, Reference)
    assert obs.subject.reference == "Patient/abc"
    assert isinstance(obs.performer[0], Reference)
    assert obs.performer[0].resource_type == "Practitioner"
    assert obs.model_dump(mode="json")["subject"]["reference"] == "Patient/abc"


def test_reference_from_string_on_assignment_and_nested() -> None:
    """Strings also work on assignment and inside nested datatypes."""
    obs = Observation(code={"text": "x"})
    obs.subject = "Patient/def"  # type: ignore[assignment]
    assert isinstance(obs.subject, Reference)
    assert obs.subject.resource_id == "def"
    ident = Identifier(value="1", assigner="Organization/org-1")
    assert ident.assigner == Reference(reference="Organization/org-1")
    report = DiagnosticReport.model_validate({"result": ["Observation/o1", {"display": "x"}]})
    assert [r.reference for r in report.result] == ["Observation/o1", None]


def test_reference_validate_directly_from_string() -> None:
    """Reference.model_validate accepts the string form as well."""
    assert Reference.model_validate("Patient/x").reference == "Patient/x"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/abc", ("Patient", "abc")),
        ("MedicationRequest/mr-1a2b.3c", ("MedicationRequest", "mr-1a2b.3c")),
        ("Patient/abc/_history/2", ("Patient", "abc")),
        ("https://fhir.example.org/r4/Patient/123", ("Patient", "123")),
        ("http://example.org/fhir/Observation/o-1/_history/3", ("Observation", "o-1")),
        ("#contained-1", (None, None)),
        ("urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7", (None, None)),
        ("https://example.org/fhir/metadata", (None, None)),
        ("patient/abc", (None, None)),
        ("Patient/a b", (None, None)),
        ("Patient", (None, None)),
        ("a/Patient/1", (None, None)),
    ],
)  # fmt: skip
def test_reference_type_and_id_parsing(
    reference: str, expected: tuple[str | None, str | None]
) -> None:
    """resource_type/resource_id parse "Type/id" (also absolute URLs), else None."""
    ref = Reference(reference=reference)
    assert (ref.resource_type, ref.resource_id) == expected


def test_reference_without_reference_string() -> None:
    """A display-only reference has no type or id."""
    ref = Reference(display="Dr. X")
    assert ref.resource_type is None and ref.resource_id is None


def test_reference_properties_are_not_dumped() -> None:
    """Derived properties never appear in dumps (they would not validate back)."""
    dumped = Reference(reference="Patient/abc").model_dump(mode="json")
    assert set(dumped) == {"reference", "type", "identifier", "display"}


def test_codeable_concept_from_plain_dicts() -> None:
    """coding accepts plain dicts, which become Coding objects."""
    cc = CodeableConcept(
        text="Blood Pressure",
        coding=[{"system": "http://loinc.org", "code": "85354-9", "display": "BP panel"}],
    )
    first = cc.first_coding()
    assert isinstance(first, Coding)
    assert (first.system, first.code, first.display) == ("http://loinc.org", "85354-9", "BP panel")
    assert CodeableConcept(text="only text").first_coding() is None


@pytest.mark.parametrize(
    ("value", "json_value"),
    [(118, 118), (Decimal("118.0"), 118.0), (Decimal("98.6"), 98.6), (0.5, 0.5), ("7.25", 7.25)],
)
def test_quantity_value_is_decimal_and_json_number(value: object, json_value: object) -> None:
    """Quantity.value is stored as Decimal and written as a JSON number: an int only when it is
    written without a fraction (``118.0`` keeps its precision)."""
    quantity = Quantity.model_validate({"value": value, "unit": "mmHg"})
    assert isinstance(quantity.value, Decimal)
    dumped = quantity.model_dump(mode="json")["value"]
    assert dumped == json_value and type(dumped) is type(json_value)
    assert json.loads(quantity.model_dump_json())["value"] == json_value
    assert f'"value":{json_value}' in quantity.model_dump_json()
    assert Quantity.model_validate_json(quantity.model_dump_json()) == quantity


def test_quantity_python_dump_keeps_decimal() -> None:
    """Python-mode dumps keep the exact Decimal."""
    assert Quantity(value=Decimal("1.10")).model_dump()["value"] == Decimal("1.10")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "abc"])
def test_quantity_rejects_non_finite(bad: str) -> None:
    """Non-numbers and non-finite values are rejected at Quantity.value."""
    with pytest.raises(ValidationError) as info:
        Quantity.model_validate({"value": bad})
    assert info.value.errors()[0]["loc"] == ("value",)


def test_period_end_before_start_rejected() -> None:
    """A period must not end before it starts."""
    with pytest.raises(ValidationError, match="before start"):
        Period(start="2024-01-02T00:00:00Z", end="2024-01-01T00:00:00Z")
    assert Period(start="2024-01-01T00:00:00Z", end="2024-01-01T00:00:00Z").start is not None


def test_annotation_requires_text() -> None:
    """Annotation.text is required and the error names it."""
    with pytest.raises(ValidationError) as info:
        Annotation.model_validate({})
    assert info.value.errors()[0]["loc"] == ("text",)


def test_datatypes_keep_unknown_elements() -> None:
    """Datatypes keep unknown elements too, and they round-trip."""
    data = {
        "coding": [{"code": "x", "extension": [{"url": "u"}]}],
        "id": "cc1",
        "extension": [{"url": "v", "valueInteger": 1}],
    }
    cc = CodeableConcept.model_validate(data)
    assert cc.model_extra == {"id": "cc1", "extension": [{"url": "v", "valueInteger": 1}]}
    assert cc.coding[0].model_extra == {"extension": [{"url": "u"}]}
    assert CodeableConcept.model_validate(cc.model_dump(mode="json")) == cc


def test_nested_validation_error_names_the_path() -> None:
    """Errors inside nested datatypes are located by their full path."""
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"telecom": [{"rank": 0}]})
    assert info.value.errors()[0]["loc"] == ("telecom", 0, "rank")


@pytest.mark.parametrize("text", ["1.00", "5.0", "0.0000001", "1E-7", "-1.000000000000000000E+245"])
def test_quantity_value_keeps_its_digits_through_json(text: str) -> None:
    """A stored document is JSON: the value comes back with every digit and its exponent."""
    quantity = Quantity(value=Decimal(text), unit="kg")
    back = Quantity.model_validate_json(quantity.model_dump_json())
    assert back.value is not None
    assert back.value.as_tuple() == Decimal(text).as_tuple()
    assert back.model_dump_json() == quantity.model_dump_json()
    back.value = Decimal("2.5")  # a new value: its own digits, the old text no longer applies
    again = Quantity.model_validate_json(back.model_dump_json())
    assert again.value == Decimal("2.5")
