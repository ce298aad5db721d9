"""Round-trip tests: every registered resource, fully populated, survives dump/validate."""

import json
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from hacs_models import BaseResource, registered_resource_types

M = TypeVar("M", bound=BaseModel)

BUILTIN_TYPES = {
    name: cls
    for name, cls in sorted(registered_resource_types().items())
    if cls.__module__.startswith("hacs_models.")
}
WHEN = datetime(2024, 3, 5, 14, 30, 15, 123456, tzinfo=UTC)
EXTRAS = {
    "text": {"status": "generated", "div": "<div>generated narrative</div>"},
    "extension": [{"url": "http://example.org/ext", "valueString": "kept"}],
    "implicitRules": "http://example.org/rules",
}
NESTED_EXTRA = {"extension": [{"url": "http://example.org/nested", "valueBoolean": True}]}


def _sample(annotation: Any, name: str, depth: int) -> Any:
    """Return a non-empty sample value for a field annotation (recursing into models)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)), name, depth)
    if origin is typing.Annotated:
        return _sample(args[0], name, depth)
    if origin is Literal:
        return args[-1]
    if origin is list:
        return [_sample(args[0], name, depth)] if depth < 4 else []
    if origin is dict:
        return {"code": name, "nested": [1, 2.5, {"flag": True, "none": None}]}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return populated(annotation, depth + 1) if depth < 4 else None
    if annotation is str:
        return "Patient/example-1" if name == "reference" else f"{name}-value"
    samples: dict[Any, Any] = {
        bool: True,
        int: 3,
        float: 0.25,
        Decimal: Decimal("12.5"),
        datetime: WHEN,
        date: date(2001, 2, 3),
    }
    return samples[annotation]


def populated(cls: type[M], depth: int = 0) -> M:
    """Build an instance of ``cls`` with every field set to a non-default sample value."""
    values: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if issubclass(cls, BaseResource) and name == "resource_type":
            continue
        if issubclass(cls, BaseResource) and name == "id":
            values[name] = f"{cls.__name__.lower()}-0001"
        elif issubclass(cls, BaseResource) and name == "version":
            values[name] = 7
        else:
            values[name] = _sample(field.annotation, name, depth)
    return cls(**values)


def _with_extras(data: dict[str, Any]) -> dict[str, Any]:
    """Add unknown FHIR elements at the top level and inside every nested JSON object."""
    out = dict(data, **EXTRAS)
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = {**value, **NESTED_EXTRA}
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out[key] = [{**item, **NESTED_EXTRA} for item in value]
    return out


@pytest.fixture(params=sorted(BUILTIN_TYPES), ids=str)
def model_cls(request: pytest.FixtureRequest) -> type[BaseResource]:
    """Each built-in resource class in turn."""
    return BUILTIN_TYPES[request.param]


def test_all_expected_resource_types_are_registered() -> None:
    """The registry holds every resource type of the four schemas."""
    expected = {
        "Patient", "Practitioner", "Organization", "Encounter", "Observation",
        "Condition", "Procedure", "Medication", "MedicationRequest", "MedicationStatement",
        "AllergyIntolerance", "Immunization", "DiagnosticReport", "DocumentReference",
        "CarePlan", "CareTeam", "Goal", "ServiceRequest", "FamilyMemberHistory",
        "RiskAssessment", "Appointment", "NutritionOrder", "PlanDefinition",
        "ActivityDefinition", "Library", "EvidenceVariable",
        "ResourceDefinition", "ToolDefinition", "KnowledgeItem",
        "AgentMessage", "MemoryBlock", "AgentSession",
    }  # fmt: skip
    assert expected <= set(BUILTIN_TYPES)


def test_populated_instance_sets_every_field(model_cls: type[BaseResource]) -> None:
    """The sample builder really populates every field (so the round-trips cover them)."""
    instance = populated(model_cls)
    dumped = instance.model_dump()
    empty = [k for k, v in dumped.items() if v is None or v == [] or v == {}]
    assert empty == []
    assert instance.resource_type == model_cls.type_name()


def test_json_mode_dump_roundtrips_exactly(model_cls: type[BaseResource]) -> None:
    """model_dump(mode="json") -> model_validate gives an equal model and an equal dump."""
    instance = populated(model_cls)
    data = instance.model_dump(mode="json")
    json.dumps(data)  # plain JSON data only
    again = model_cls.model_validate(data)
    assert again == instance
    assert again.model_dump(mode="json") == data
    assert model_cls.model_validate(again.model_dump(mode="json")) == instance


def test_json_string_roundtrips_exactly(model_cls: type[BaseResource]) -> None:
    """model_dump_json -> model_validate_json gives an equal model."""
    instance = populated(model_cls)
    again = model_cls.model_validate_json(instance.model_dump_json())
    assert again == instance
    assert again.model_dump_json() == instance.model_dump_json()


def test_python_dump_roundtrips_exactly(model_cls: type[BaseResource]) -> None:
    """model_dump() (python mode) -> model_validate gives an equal model."""
    instance = populated(model_cls)
    assert model_cls.model_validate(instance.model_dump()) == instance


def test_default_instance_roundtrips(model_cls: type[BaseResource]) -> None:
    """A minimal instance (defaults, required fields only) round-trips too."""
    required = {
        name: _sample(field.annotation, name, 0)
        for name, field in model_cls.model_fields.items()
        if field.is_required()
    }
    instance = model_cls(**required)
    assert model_cls.model_validate(instance.model_dump(mode="json")) == instance
    assert model_cls.model_validate_json(instance.model_dump_json()) == instance


def test_dump_has_only_field_and_extra_keys(model_cls: type[BaseResource]) -> None:
    """Dumps emit no derived/computed keys: only declared fields and kept extras."""
    instance = model_cls.model_validate(_with_extras(populated(model_cls).model_dump(mode="json")))
    assert set(instance.model_dump(mode="json")) == set(model_cls.model_fields) | set(EXTRAS)


def test_unknown_elements_survive_roundtrip(model_cls: type[BaseResource]) -> None:
    """Unknown FHIR elements, top-level and nested in datatypes, are kept and re-emitted."""
    data = _with_extras(populated(model_cls).model_dump(mode="json"))
    instance = model_cls.model_validate(data)
    assert instance.model_extra is not None
    assert instance.model_extra["text"] == EXTRAS["text"]
    dumped = instance.model_dump(mode="json")
    assert dumped == data
    assert model_cls.model_validate_json(instance.model_dump_json()) == instance
    assert json.loads(instance.model_dump_json()) == data
