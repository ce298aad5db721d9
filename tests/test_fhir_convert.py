"""to_fhir / from_fhir on hacs-built resources, and the losslessness rules one by one.

Every typed hacs resource type is built fully populated (each FHIR choice element in turn),
converted with to_fhir, validated with the independent fhir.resources R4B models and converted
back with from_fhir.
"""

import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

from hacs_models import (
    BaseResource,
    CodeableConcept,
    Encounter,
    Observation,
    Patient,
    Period,
    PlanDefinition,
    Practitioner,
    registered_resource_types,
)
from hacs_models.fhir import (
    ABSENT_KEY,
    FULL_NAME_EXTENSION_URL,
    ORIGINAL_KEY,
    camel_case_key,
    camel_case_keys,
    from_fhir,
    snake_case_key,
    snake_case_keys,
    to_fhir,
)
from hacs_models.fhir import dumps as fhir_dumps
from hacs_models.fhir import loads as fhir_loads

from .test_fhir_data import expected_back, first_difference

M = TypeVar("M", bound=BaseModel)

BUILTIN_TYPES = {
    name: cls
    for name, cls in sorted(registered_resource_types().items())
    if cls.__module__.startswith("hacs_models.")
}
NON_FHIR_TYPES = {
    "AgentMessage",
    "AgentSession",
    "KnowledgeItem",
    "MemoryBlock",
    "ResourceDefinition",
    "ToolDefinition",
}
FHIR_TYPES = sorted(set(BUILTIN_TYPES) - NON_FHIR_TYPES)
ENVELOPE = {"created_at", "updated_at", "version"}
WHEN = datetime(2024, 3, 5, 14, 30, 15, 123456, tzinfo=UTC)

# FHIR choice elements ([x]): a resource holds one of them; the variants cover each in turn.
CHOICE_BASES = ("deceased", "value", "effective", "medication", "performed", "author")

# Backbone elements the hacs models keep as JSON objects: valid R4 content (snake_case keys).
JSON_SAMPLES: dict[tuple[str, str], Any] = {
    ("Patient", "communication"): {
        "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]},
        "preferred": True,
    },
    ("Practitioner", "qualification"): {
        "code": {"text": "MD"},
        "issuer": {"reference": "Organization/org-1"},
    },
    ("Encounter", "participant"): {
        "type": [{"text": "primary performer"}],
        "individual": {"reference": "Practitioner/p-1"},
    },
    ("Encounter", "diagnosis"): {"condition": {"reference": "Condition/c-1"}, "rank": 1},
    ("Encounter", "hospitalization"): {"discharge_disposition": {"text": "home"}},
    ("Encounter", "location"): {"location": {"reference": "Location/l-1"}, "status": "completed"},
    ("Observation", "reference_range"): {
        "low": {"value": 1.5, "unit": "mmol/L"},
        "text": "normal",
    },
    ("Observation", "component"): {
        "code": {"text": "systolic"},
        "value_quantity": {"value": 120, "unit": "mm[Hg]"},
    },
    ("CarePlan", "activity"): {"detail": {"status": "in-progress", "code": {"text": "walk"}}},
    ("CareTeam", "participant"): {
        "role": [{"text": "nurse"}],
        "member": {"reference": "Practitioner/p-1"},
    },
    ("Goal", "target"): {
        "measure": {"text": "HbA1c"},
        "detail_quantity": {"value": 7.5, "unit": "%"},
        "due_date": "2025-01-01",
    },
    ("Appointment", "participant"): {
        "actor": {"reference": "Patient/pat-1"},
        "status": "accepted",
    },
    ("DiagnosticReport", "presented_form"): {"content_type": "text/plain", "data": "aGVsbG8="},
    ("DocumentReference", "content"): {
        "attachment": {"content_type": "text/plain", "data": "aGVsbG8="}
    },
    ("DocumentReference", "context"): {"encounter": [{"reference": "Encounter/e-1"}]},
    ("PlanDefinition", "goal"): {"description": {"text": "blood pressure under control"}},
    ("PlanDefinition", "action"): {"title": "measure", "description": "measure weekly"},
    ("ActivityDefinition", "dynamic_value"): {
        "path": "status",
        "expression": {"language": "text/fhirpath", "expression": "'active'"},
    },
    ("Library", "content"): {"content_type": "text/cql", "data": "bGlicmFyeQ=="},
    ("Library", "parameter"): {"name": "Result", "use": "out", "type": "boolean"},
    ("EvidenceVariable", "characteristic"): {
        "definition_codeable_concept": {"text": "adults"},
        "exclude": False,
    },
    ("Medication", "ingredient"): {"item_codeable_concept": {"text": "x"}, "is_active": True},
    ("Medication", "batch"): {"lot_number": "L-1", "expiration_date": "2026-01-01"},
    ("MedicationRequest", "dosage_instruction"): {
        "text": "1 tablet daily",
        "timing": {"repeat": {"frequency": 1, "period": 1, "period_unit": "d"}},
    },
    ("MedicationRequest", "dispense_request"): {"number_of_repeats_allowed": 2},
    ("MedicationStatement", "dosage"): {"text": "1 daily"},
    ("NutritionOrder", "oral_diet"): {"type": [{"text": "low salt"}]},
    ("NutritionOrder", "supplement"): {"product_name": "Supplement"},
    ("NutritionOrder", "enteral_formula"): {"base_formula_product_name": "Formula"},
    ("Procedure", "performer"): {"actor": {"reference": "Practitioner/p-1"}},
    ("AllergyIntolerance", "reaction"): {"manifestation": [{"text": "rash"}]},
    ("Immunization", "performer"): {"actor": {"reference": "Practitioner/p-1"}},
    ("FamilyMemberHistory", "condition"): {"code": {"text": "diabetes"}},
    ("RiskAssessment", "prediction"): {
        "outcome": {"text": "stroke"},
        "probability_decimal": 0.125,
    },
}
NON_FHIR_JSON = {"type": "object", "nested_value": [1, 2.5, {"flag": True, "none": None}]}
RESOURCE_EXTRAS: dict[str, Any] = {
    "meta": {"profile": ["http://example.org/StructureDefinition/p"], "source": "#src"},
    "implicit_rules": "http://example.org/rules",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "extension": [{"url": "http://example.org/ext", "value_string": "kept"}],
}
ELEMENT_EXTRAS = {
    "id": "elem-1",
    "extension": [{"url": "http://example.org/nested", "value_boolean": True}],
}


def _choice_groups(cls: type[BaseModel]) -> list[list[str]]:
    groups = []
    for base in CHOICE_BASES:
        members = [name for name in cls.model_fields if name.startswith(f"{base}_")]
        if len(members) > 1:
            groups.append(members)
    return groups


def _sample(owner: str, annotation: Any, name: str, variant: int, depth: int) -> Any:
    """A FHIR-valid, non-empty sample value for one field annotation."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _sample(owner, next(a for a in args if a is not type(None)), name, variant, depth)
    if origin is typing.Annotated:
        return _sample(owner, args[0], name, variant, depth)
    if origin is Literal:
        return args[-1]
    if origin is list:
        item = _sample(owner, args[0], name, variant, depth)
        return None if item is None else [item]
    if origin is dict or annotation is Any:
        if owner in NON_FHIR_TYPES:
            return dict(NON_FHIR_JSON)
        return dict(JSON_SAMPLES[owner, name])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return populated(annotation, variant, depth + 1) if depth < 3 else None
    if annotation is str:
        if name == "reference":
            return "Patient/example-1"
        if name in ("system", "url", "type") and owner in ("Coding", "Identifier", "Quantity"):
            return "http://example.org/system"
        return f"{name}-value"
    samples: dict[Any, Any] = {
        bool: True,
        int: 3,
        float: 0.25,
        Decimal: Decimal("12.5"),
        datetime: WHEN,
        date: date(2001, 2, 3),
    }
    return samples[annotation]


def populated(cls: type[M], variant: int = 0, depth: int = 0) -> M:
    """An instance of ``cls`` with every field set; choice element number ``variant`` chosen."""
    skipped = set()
    for group in _choice_groups(cls):
        skipped |= {name for i, name in enumerate(group) if i != variant % len(group)}
    values: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        if name in skipped or name in ENVELOPE or name == "resource_type":
            continue
        if name == "id" and issubclass(cls, BaseResource):
            values[name] = f"{cls.__name__.lower()}-0001"
            continue
        value = _sample(cls.__name__, field.annotation, name, variant, depth)
        if value is not None:
            values[name] = value
    if issubclass(cls, BaseResource):
        if cls.__name__ not in NON_FHIR_TYPES:
            values.update(RESOURCE_EXTRAS)
    else:
        values.update(ELEMENT_EXTRAS)
    return cls(**values)


def variants(cls: type[BaseModel]) -> int:
    """How many variants cover every choice element of the class and its datatypes."""
    return max([2, *(len(group) for group in _choice_groups(cls))])


def _r4b_validate(data: dict[str, Any]) -> None:
    if data["resourceType"] == "EvidenceVariable":
        # R4/R4B difference: R4B rewrote EvidenceVariable and dropped the R4 element ``type``
        # (dichotomous | continuous | descriptive); everything else is validated.
        data = {k: v for k, v in data.items() if k != "type"}
    get_fhir_model_class(data["resourceType"]).model_validate(data)


def comparable(resource: BaseResource) -> dict[str, Any]:
    return resource.model_dump(exclude=ENVELOPE)


CASES = [(name, v) for name in sorted(BUILTIN_TYPES) for v in range(variants(BUILTIN_TYPES[name]))]


@pytest.mark.parametrize(("type_name", "variant"), CASES, ids=[f"{n}-{v}" for n, v in CASES])
@pytest.mark.parametrize("stored", [False, True], ids=["new", "stored"])
def test_populated_resource_round_trips_and_is_valid_r4b(
    type_name: str, variant: int, stored: bool
) -> None:
    """A fully populated resource: to_fhir validates with R4B and from_fhir gives it back."""
    cls = BUILTIN_TYPES[type_name]
    resource = populated(cls, variant)
    if stored:
        resource.version = 4
    data = to_fhir(resource)
    assert data["resourceType"] == type_name
    assert data["id"] == resource.id
    assert not {"createdAt", "updatedAt", "created_at", "updated_at"} & set(data)
    # FHIR ``version`` is the business version, never the storage version.
    assert data.get("version") == getattr(resource, "business_version", None)
    if type_name in NON_FHIR_TYPES:
        with pytest.raises(ValueError, match="not a valid FHIR Model"):
            get_fhir_model_class(type_name)
    else:
        _r4b_validate(data)
        assert data["meta"]["profile"] == RESOURCE_EXTRAS["meta"]["profile"]
    if stored:
        assert data["meta"]["versionId"] == "4"
        assert data["meta"]["lastUpdated"].endswith("Z")
        assert datetime.fromisoformat(data["meta"]["lastUpdated"]) == resource.updated_at
    else:
        assert "versionId" not in data.get("meta", {})
    again = from_fhir(data)
    assert type(again) is cls
    assert again.version is None
    assert comparable(again) == comparable(resource)
    assert to_fhir(again) == expected_back(data)


def test_every_typed_type_is_covered() -> None:
    """The FHIR-typed hacs models are exactly the R4B-known builtin types."""
    known = set()
    for name in BUILTIN_TYPES:
        try:
            get_fhir_model_class(name)
        except ValueError:
            continue
        known.add(name)
    assert known == set(FHIR_TYPES)
    assert len(FHIR_TYPES) >= 26


def test_minimal_resources_emit_required_defaults() -> None:
    """Defaults of hacs-built resources are written (status is required in FHIR)."""
    observation = Observation(code=CodeableConcept(text="weight"))
    data = to_fhir(observation)
    assert data == {
        "resourceType": "Observation",
        "id": observation.id,
        "status": "final",
        "code": {"text": "weight"},
    }
    get_fhir_model_class("Observation").model_validate(data)
    patient = Patient()
    assert to_fhir(patient) == {"resourceType": "Patient", "id": patient.id, "active": True}
    assert comparable(from_fhir(to_fhir(patient))) == comparable(patient)


# --- element names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camel", "snake"),
    [
        ("birthDate", "birth_date"),
        ("_birthDate", "_birth_date"),
        ("resourceType", "resource_type"),
        ("valueBase64Binary", "value_base64_binary"),
        ("truthTP", "truth_t_p"),
        ("id", "id"),
        ("_id", "_id"),
        ("div", "div"),
    ],
)
def test_key_conversion(camel: str, snake: str) -> None:
    assert snake_case_key(camel) == snake
    assert camel_case_key(snake) == camel


@pytest.mark.parametrize("key", ["Foo", "a-b", "x__y", "_", "", "a_1", "fhir:original"])
def test_irregular_keys_pass_through(key: str) -> None:
    """Keys that are not FHIR element names are not converted (either way)."""
    assert snake_case_key(key) == key
    assert camel_case_key(key) == key


def test_key_conversion_is_recursive_and_leaves_values_alone() -> None:
    data = {
        "resourceType": "Patient",
        "text": {"div": "<div>birthDate resourceType</div>"},
        "contained": [{"resourceType": "Organization", "partOf": {"reference": "#x"}}],
        "_birthDate": {"extension": [{"url": "http://x", "valueDateTime": "1978-01-01"}]},
        "name": [{"given": ["A", None], "_given": [None, {"extension": []}]}],
    }
    snake = snake_case_keys(data)
    assert snake == {
        "resource_type": "Patient",
        "text": {"div": "<div>birthDate resourceType</div>"},
        "contained": [{"resource_type": "Organization", "part_of": {"reference": "#x"}}],
        "_birth_date": {"extension": [{"url": "http://x", "value_date_time": "1978-01-01"}]},
        "name": [{"given": ["A", None], "_given": [None, {"extension": []}]}],
    }
    assert camel_case_keys(snake) == data


# --- renames, envelope, meta ------------------------------------------------------------------


def test_encounter_class_and_business_version_renames() -> None:
    encounter = from_fhir(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"system": "http://x", "code": "AMB", "version": "2"},
            "classHistory": [{"class": {"code": "IMP"}, "period": {"start": "2020"}}],
        }
    )
    assert isinstance(encounter, Encounter)
    assert encounter.encounter_class is not None
    assert encounter.encounter_class.code == "AMB"
    assert encounter.encounter_class.version == "2"  # Coding.version is not renamed
    assert encounter.model_extra == {
        "class_history": [{"class": {"code": "IMP"}, "period": {"start": "2020"}}]
    }
    data = to_fhir(encounter)
    assert data["class"] == {"system": "http://x", "code": "AMB", "version": "2"}
    assert data["classHistory"][0]["class"] == {"code": "IMP"}

    plan = from_fhir(
        {"resourceType": "PlanDefinition", "status": "active", "version": "1.2", "_version": {}}
    )
    assert isinstance(plan, PlanDefinition)
    assert plan.business_version == "1.2"
    assert plan.version is None
    assert plan.model_extra is not None
    assert plan.model_extra["_business_version"] == {}
    out = to_fhir(plan)
    assert out["version"] == "1.2" and out["_version"] == {}

    # An unmodelled type keeps its FHIR version out of the storage version too.
    contract = from_fhir({"resourceType": "Contract", "id": "c1", "version": "7"})
    assert contract.version is None
    assert to_fhir(contract) == {"resourceType": "Contract", "id": "c1", "version": "7"}


def test_meta_of_imported_and_stored_resources() -> None:
    source: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {
            "versionId": "12",
            "lastUpdated": "2020-01-01T00:00:00Z",
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
            "tag": [{"system": "http://x", "code": "t"}],
        },
        "active": False,
    }
    patient = from_fhir(source)
    assert patient.version is None
    assert patient.model_extra is not None
    assert patient.model_extra["meta"] == {
        "profile": source["meta"]["profile"],
        "tag": source["meta"]["tag"],
    }
    out = to_fhir(patient)
    assert out["meta"] == {"profile": source["meta"]["profile"], "tag": source["meta"]["tag"]}
    patient.version = 2
    patient.updated_at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    out = to_fhir(patient)
    assert out["meta"]["versionId"] == "2"
    assert out["meta"]["lastUpdated"] == "2024-05-06T07:08:09Z"
    assert out["meta"]["profile"] == source["meta"]["profile"]
    assert not {"version", "updatedAt", "createdAt"} & set(out)

    only_server_meta = from_fhir({**source, "meta": {"versionId": "1"}})
    assert "meta" not in (only_server_meta.model_extra or {})


def test_unmodelled_type_is_kept_whole() -> None:
    claim = {
        "resourceType": "Claim",
        "id": "c1",
        "contained": [{"resourceType": "ServiceRequest", "id": "referral", "status": "active"}],
        "created": "2020-01-01",
        "total": {"value": 10.50, "currency": "USD"},
        "item": [{"sequence": 1, "servicedDate": "2020"}],
    }
    resource = from_fhir(claim)
    assert type(resource) is BaseResource
    assert resource.resource_type == "Claim"
    assert resource.model_extra is not None
    assert resource.model_extra["contained"][0]["resource_type"] == "ServiceRequest"
    assert to_fhir(resource) == claim


def test_source_elements_colliding_with_hacs_only_fields_are_kept() -> None:
    """createdAt/fullName are not FHIR; if a source has them they are kept, not typed."""
    source = {"resourceType": "Patient", "id": "p1", "createdAt": "x", "fullName": "Y"}
    patient = from_fhir(source)
    assert isinstance(patient, Patient)
    assert patient.full_name is None
    assert to_fhir(patient) == source


# --- values the typed fields cannot hold ------------------------------------------------------


def test_partial_dates_are_kept_with_an_approximate_typed_value() -> None:
    source = {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1978",
        "deceasedDateTime": "2015-02-07",
        "_birthDate": {"extension": [{"url": "http://x", "valueDateTime": "1978-03"}]},
        "identifier": [{"value": "1", "period": {"start": "2001-05", "end": "2002"}}],
    }
    patient = from_fhir(source)
    assert isinstance(patient, Patient)
    assert patient.birth_date == date(1978, 1, 1)
    assert patient.deceased_date_time == datetime(2015, 2, 7, tzinfo=UTC)
    assert patient.model_extra is not None
    assert patient.model_extra[ORIGINAL_KEY] == {
        "birth_date": "1978",
        "deceased_date_time": "2015-02-07",
    }
    period = patient.identifier[0].period
    assert period is not None
    assert period.start == datetime(2001, 5, 1, tzinfo=UTC)
    assert period.model_extra == {ORIGINAL_KEY: {"start": "2001-05", "end": "2002"}}
    assert to_fhir(patient) == source
    get_fhir_model_class("Patient").model_validate(to_fhir(patient))

    patient.birth_date = date(1978, 6, 1)  # changed after import: the new value wins
    assert to_fhir(patient)["birthDate"] == "1978-06-01"


def test_datetimes_come_back_as_written_and_the_typed_field_holds_the_utc_instant() -> None:
    source = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "x"},
        "effectiveDateTime": "2015-02-07T13:28:17-05:00",
        "issued": "2015-02-07T13:28:17.310+01:00",
        "valuePeriod": {"start": "2015-02-07T13:28:17.000Z", "end": "2015-02-08T00:00:00Z"},
    }
    observation = from_fhir(source)
    assert isinstance(observation, Observation)
    assert observation.effective_date_time == datetime(2015, 2, 7, 18, 28, 17, tzinfo=UTC)
    assert observation.issued == datetime(2015, 2, 7, 12, 28, 17, 310000, tzinfo=UTC)
    # Only what the UTC form would not give back is kept as written.
    assert (observation.model_extra or {})[ORIGINAL_KEY] == {
        "effective_date_time": "2015-02-07T13:28:17-05:00",
        "issued": "2015-02-07T13:28:17.310+01:00",
    }
    assert observation.value_period is not None
    assert observation.value_period.model_extra == {
        ORIGINAL_KEY: {"start": "2015-02-07T13:28:17.000Z"}
    }
    out = to_fhir(observation)
    assert out == source
    assert first_difference(source, out) is None
    observation.issued = datetime(2016, 1, 1, tzinfo=UTC)  # changed: the new value wins
    assert to_fhir(observation)["issued"] == "2016-01-01T00:00:00Z"


def test_decimals_come_back_with_their_literal_text() -> None:
    text = (
        '{"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},'
        ' "valueQuantity": {"value": 1.00, "unit": "kg"}, "component": ['
        '{"code": {"text": "a"}, "valueQuantity": {"value": -1.000000000000000000E+245}},'
        '{"code": {"text": "b"}, "valueQuantity": {"value": 5.0}},'
        '{"code": {"text": "c"}, "valueSampledData": {"origin": {"value": 0.0000001},'
        ' "period": 1, "dimensions": 1, "factor": 2.50}}],'
        ' "extension": [{"url": "u", "valueDecimal": 3.14159265358979323846264338}]}'
    )
    observation = from_fhir(fhir_loads(text))
    assert observation.value_quantity is not None  # type: ignore[attr-defined]
    assert observation.value_quantity.value == Decimal("1.00")  # type: ignore[attr-defined]
    written = fhir_dumps(to_fhir(observation))
    assert json.loads(written, parse_float=str) == json.loads(text, parse_float=str)
    # Through JSON (as a stored document is) and back: still exact.
    again = type(observation).model_validate_json(observation.model_dump_json())
    assert fhir_dumps(to_fhir(again)) == written
    # A changed value wins over the recorded literal.
    again.value_quantity.value = Decimal("2.5")  # type: ignore[attr-defined]
    assert to_fhir(again)["valueQuantity"]["value"] == 2.5


COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}


def test_compact_dumps_writes_the_same_literals_as_the_json_path() -> None:
    # Compact UTF-8 (what the view snapshot and the NDJSON export write) is orjson's path.
    data = fhir_loads(
        '{"a": 1.00, "b": [-1.000000000000000000E+245, 0.1, 2], "c": {"d": 3.14159265358979323846},'
        ' "e": "é\\u2028\\u0001", "f": null, "g": true, "h": 5.0}'
    )
    data["i"] = Decimal("0.000100")
    fast = fhir_dumps(data, **COMPACT)
    slow = fhir_dumps(data, separators=(",", ":"))  # the marker path, ASCII-escaped
    assert json.loads(fast, parse_float=str) == json.loads(slow, parse_float=str)
    assert '"a":1.00' in fast and '"h":5.0' in fast and '"i":0.000100' in fast
    assert "-1.000000000000000000E+245" in fast and "é" in fast


@pytest.mark.parametrize(
    "value",
    [{"big": 2**70}, {1: "non-string key"}, {"s": "\ud800"}],
    ids=["integer past 64 bits", "non-string key", "lone surrogate"],
)
def test_compact_dumps_takes_the_json_path_for_what_orjson_refuses(value: Any) -> None:
    assert fhir_dumps(value, **COMPACT) == json.dumps(value, **COMPACT)


@pytest.mark.parametrize("value", [datetime(2020, 1, 1, tzinfo=UTC), object()])
def test_compact_dumps_refuses_what_json_refuses(value: Any) -> None:
    with pytest.raises(TypeError):
        fhir_dumps({"v": value}, **COMPACT)


@pytest.mark.parametrize(
    ("value", "typed"),
    [
        ("2015-02-07T13:28:17.1234567Z", datetime(2015, 2, 7, 13, 28, 17, 123456, tzinfo=UTC)),
        ("2015-02-07T13:28", datetime(2015, 2, 7, 13, 28, tzinfo=UTC)),
        ("2015-02-07T13:28:17", datetime(2015, 2, 7, 13, 28, 17, tzinfo=UTC)),
        ("2015-02", datetime(2015, 2, 1, tzinfo=UTC)),
        ("2015-02-30", None),
        ("yesterday", None),
        (20150207, None),
    ],
)
def test_imprecise_or_invalid_datetimes_are_kept_verbatim(value: Any, typed: Any) -> None:
    source = {"resourceType": "Condition", "id": "c1", "onsetDateTime": value}
    condition = from_fhir(source)
    assert condition.onset_date_time == typed  # type: ignore[attr-defined]
    assert condition.model_extra is not None
    assert condition.model_extra[ORIGINAL_KEY] == {"onset_date_time": value}
    assert to_fhir(condition) == source


def test_values_failing_stricter_typing_are_kept() -> None:
    source = {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "M",
        "active": "true",
        "telecom": [{"system": "phone", "value": "1", "rank": 0}],
        "name": [{"family": "Chalmers", "given": ["Peter", None]}],
        "managingOrganization": "Organization/1",
        "address": [],
        "maritalStatus": None,
    }
    patient = from_fhir(source)
    assert isinstance(patient, Patient)
    assert patient.gender is None
    assert patient.active is True  # default; "true" (a string) is kept as given
    assert patient.telecom[0].rank is None  # rank 0 fails the model's ge=1 rule
    assert patient.name[0].family == "Chalmers"
    assert patient.name[0].given == []  # a null inside a list: the whole list is kept verbatim
    assert patient.name[0].model_extra == {ORIGINAL_KEY: {"given": ["Peter", None]}}
    assert patient.managing_organization is None
    assert patient.model_extra is not None
    assert set(patient.model_extra[ORIGINAL_KEY]) == {
        "gender",
        "active",
        "managing_organization",
        "address",
        "marital_status",
    }
    assert patient.telecom[0].model_extra == {ORIGINAL_KEY: {"rank": 0}}
    assert to_fhir(patient) == source


def test_model_rule_failures_move_the_innermost_field() -> None:
    """A Period ending before it starts is kept verbatim; the rest stays typed."""
    source = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "period": {"start": "2020-01-02T00:00:00Z", "end": "2020-01-01T00:00:00Z"},
        "identifier": [
            {"value": "v", "period": {"start": "2020-01-02T10:00:00+05:00", "end": "2020-01-02"}}
        ],
    }
    encounter = from_fhir(source)
    assert isinstance(encounter, Encounter)
    assert encounter.period is None
    assert encounter.identifier[0].value == "v"
    assert encounter.identifier[0].period is None
    assert encounter.identifier[0].model_extra == {
        ORIGINAL_KEY: {"period": source["identifier"][0]["period"]}  # type: ignore[index]
    }
    assert to_fhir(encounter) == source


def test_invalid_id_is_kept() -> None:
    source = {"resourceType": "Basic", "id": "not a valid id!", "code": {"text": "x"}}
    resource = from_fhir(source)
    assert resource.id != source["id"]
    assert to_fhir(resource) == source


def test_missing_elements_stay_missing() -> None:
    """Defaults (active, a generated id) are not written for elements the source lacked."""
    source = {"resourceType": "Practitioner", "name": [{"family": "Ng", "given": ["Al"]}]}
    practitioner = from_fhir(source)
    assert isinstance(practitioner, Practitioner)
    assert practitioner.active is True
    assert practitioner.full_name == "Al Ng"
    assert practitioner.model_extra is not None
    assert practitioner.model_extra[ABSENT_KEY] == {"active": True, "id": practitioner.id}
    assert to_fhir(practitioner) == source
    practitioner.active = False
    assert to_fhir(practitioner)["active"] is False
    practitioner.version = 1  # once stored, its id is real and written
    assert to_fhir(practitioner)["id"] == practitioner.id


@pytest.mark.parametrize("code", [{}, "abc"])
def test_missing_or_untypable_required_element_is_rejected(code: Any) -> None:
    """Observation.code is required (in FHIR too): without a usable one there is no model."""
    source = {"resourceType": "Observation", "id": "o1", "status": "final"}
    if code:
        source["code"] = code
    with pytest.raises(ValidationError):
        from_fhir(source)


def test_full_name_not_derivable_from_name_uses_an_extension() -> None:
    patient = Patient(
        full_name="Dr. Ann Lee",
        name=[{"family": "Lee", "given": ["Ann"]}],
        extension=[{"url": "http://x", "value_code": "a"}],
    )
    data = to_fhir(patient)
    assert data["extension"] == [
        {"url": "http://x", "valueCode": "a"},
        {"url": FULL_NAME_EXTENSION_URL, "valueString": "Dr. Ann Lee"},
    ]
    get_fhir_model_class("Patient").model_validate(data)
    again = from_fhir(data)
    assert again.model_extra is not None
    assert again.model_extra["extension"] == [{"url": "http://x", "value_code": "a"}]
    assert comparable(again) == comparable(patient)
    derived = Patient(full_name="Ann Lee")
    assert "extension" not in to_fhir(derived)
    assert comparable(from_fhir(to_fhir(derived))) == comparable(derived)


def test_from_fhir_does_not_mutate_its_input() -> None:
    source = {
        "resourceType": "Encounter",
        "class": {"code": "AMB"},
        "period": {"start": "2020", "end": "2019"},
        "meta": {"versionId": "1"},
    }
    snapshot = repr(source)
    from_fhir(source)
    assert repr(source) == snapshot


def test_nested_datatype_originals_survive_assignment_and_copy() -> None:
    """The kept originals live in the datatype's extras, so they travel with it."""
    patient = from_fhir(
        {"resourceType": "Patient", "id": "p", "address": [{"period": {"start": "2001"}}]}
    )
    assert isinstance(patient, Patient)
    copy = patient.model_copy(deep=True)
    assert to_fhir(copy)["address"] == [{"period": {"start": "2001"}}]
    stored_form = Patient.model_validate_json(patient.model_dump_json())
    assert to_fhir(stored_form) == to_fhir(patient)


def test_offsets_and_fractions_in_typed_datetimes() -> None:
    when = datetime(2020, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    period = Period(start=when)
    observation = Observation(code={"text": "x"}, effective_period=period)
    out = to_fhir(observation)
    assert out["effectivePeriod"] == {"start": "2020-01-02T04:30:00Z"}
    observation.issued = datetime(2020, 1, 1, 0, 0, 0, 120000, tzinfo=UTC)
    assert to_fhir(observation)["issued"] == "2020-01-01T00:00:00.12Z"
    assert comparable(from_fhir(to_fhir(observation))) == comparable(observation)


def test_non_fhir_types_round_trip() -> None:
    from hacs_models import AgentMessage

    message = AgentMessage(role="user", content="hi", tool_calls=[{"tool_name": "x"}])
    data = to_fhir(message)
    assert data["resourceType"] == "AgentMessage"
    assert data["toolCalls"] == [{"toolName": "x"}]
    assert "sentAt" in data
    assert comparable(from_fhir(to_fhir(message))) == comparable(message)
