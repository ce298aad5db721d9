"""FHIR R4 round trips over the real FHIR corpus (read in place, never copied) and the fixtures.

Every resource of the corpus (``HACS_FHIR_DATA``, see tests/shared_data.py: Synthea bundle
entries, bulk NDJSON lines, HL7 example files and the resources nested in their Bundles), and of
the small data of tests/fhir_fixtures.py (source ``fixture``, which runs anywhere), goes
FHIR -> hacs -> FHIR and must come back exactly: the same JSON, decimals with their literal text
(``1.00`` is not ``1.0``, ``5.0`` not ``5``) and date-times as written (offset and fraction
digits), except that ``meta`` loses versionId/lastUpdated. The corpus is read with
``hacs_models.fhir.loads`` (decimals exact) and compared by literal text.

The to_fhir output is also validated with the independent ``fhir.resources.R4B`` models.
"""

from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from hacs_models import BaseResource, registered_resource_types
from hacs_models.fhir import (
    ABSENT_KEY,
    DecimalLiteral,
    camel_case_key,
    from_fhir,
    snake_case_key,
    to_fhir,
)
from hacs_models.fhir import loads as fhir_loads
from tests.fhir_fixtures import all_resources
from tests.shared_data import FHIR_DATA, require_fhir_data

DATA = FHIR_DATA
# The corpus's data sets (they need HACS_FHIR_DATA) and the fixtures (they run anywhere).
CORPUS_SOURCES = ("synthea", "bulk-ndjson-10-patients", "hl7-examples")
SOURCES = (*CORPUS_SOURCES, "fixture")
SERVER_META = {"versionId", "lastUpdated", "_versionId", "_lastUpdated"}
ENVELOPE = {"created_at", "updated_at", "version"}


def _nested(resource: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Resources inside a Bundle's entries, recursively (nested Bundles too)."""
    if resource.get("resourceType") != "Bundle":
        return
    for index, entry in enumerate(resource.get("entry", [])):
        if isinstance(entry.get("resource"), dict):
            label = f"{where} entry[{index}]"
            yield label, entry["resource"]
            yield from _nested(entry["resource"], label)


def load(source: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """(label, resource) of every resource of one data set, in a stable order.

    A corpus data set skips the test (fails it under CI) when the corpus is absent.
    """
    if source == "fixture":
        return tuple(all_resources())
    require_fhir_data()
    return _load_corpus(source)


@cache
def _load_corpus(source: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    found: list[tuple[str, dict[str, Any]]] = []
    folder = DATA / source
    if source == "synthea":
        for path in sorted(folder.glob("*.json")):
            bundle = fhir_loads(path.read_bytes())
            for index, entry in enumerate(bundle["entry"]):
                found.append((f"{path.name} entry[{index}]", entry["resource"]))
    elif source == "bulk-ndjson-10-patients":
        for path in sorted(folder.glob("*.ndjson")):
            with path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if line.strip():
                        found.append((f"{path.name}:{number}", fhir_loads(line)))
    else:
        for path in sorted(folder.glob("*.json")):
            resource = fhir_loads(path.read_bytes())
            found.append((path.name, resource))
            found.extend(_nested(resource, path.name))
    return tuple(found)


# --- comparison ---------------------------------------------------------------------------------


def _number_text(value: int | float) -> str:
    """A JSON number as the literal it is written as (``DecimalLiteral`` keeps its own)."""
    return value.text if isinstance(value, DecimalLiteral) else repr(value)


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """The first path where ``actual`` differs from ``expected``, or None when exact.

    JSON types are compared strictly (True is not 1, 5 is not 5.0) and numbers by their literal
    text; strings (date-times included) must be equal.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: {type(actual).__name__} instead of an object"
        for key in sorted(expected.keys() | actual.keys()):
            if key not in actual:
                return f"{path}.{key}: missing"
            if key not in expected:
                return f"{path}.{key}: unexpected {actual[key]!r:.80}"
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: {actual!r:.80} instead of a list of {len(expected)}"
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(expected, float) and isinstance(actual, float):
        same = _number_text(expected) == _number_text(actual)
    else:
        same = type(expected) is type(actual) and expected == actual
    return None if same else f"{path}: {actual!r:.80} instead of {expected!r:.80}"


def expected_back(resource: dict[str, Any]) -> dict[str, Any]:
    """What to_fhir(from_fhir(resource)) must give: the resource minus the server's meta."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or SERVER_META.isdisjoint(meta):
        return resource
    out = dict(resource)
    kept = {k: v for k, v in meta.items() if k not in SERVER_META}
    if kept:
        out["meta"] = kept
    else:
        del out["meta"]
    return out


def comparable(resource: BaseResource, *, ignore_id: bool = False) -> dict[str, Any]:
    """A resource's dump without the storage envelope and without the record of a generated id.

    With ``ignore_id`` the id is left out too: an unstored resource from id-less FHIR gets a new
    generated id each time it is imported.
    """
    dump = resource.model_dump(exclude=ENVELOPE)
    absent = dump.pop(ABSENT_KEY, None)
    if isinstance(absent, dict) and any(key != "id" for key in absent):
        dump[ABSENT_KEY] = {k: v for k, v in absent.items() if k != "id"}
    if ignore_id:
        dump.pop("id")
    return dump


def _report(failures: list[str], total: int) -> str:
    return f"{len(failures)} of {total} failed; first ones:\n" + "\n".join(failures[:15])


# --- the tests ------------------------------------------------------------------------------------

# Counts from SOURCE.md; for hl7-examples: 624 files and 335 resources directly in Bundle entries
# (the test also reads the resources of Bundles nested in those entries).
EXPECTED_COUNTS = {"synthea": 9785, "bulk-ndjson-10-patients": 7160, "hl7-examples": 624 + 335}


@pytest.mark.parametrize("source", SOURCES)
def test_every_resource_round_trips_losslessly(source: str) -> None:
    """FHIR -> hacs -> FHIR gives every element back; typed types come back as their class."""
    resources = load(source)
    top_level = sum(label.count("entry[") <= 1 for label, _ in resources)
    assert top_level == EXPECTED_COUNTS.get(source, len(all_resources()) - 1)  # fixture: 1 nested
    registry = registered_resource_types()
    failures: list[str] = []
    for label, data in resources:
        resource = from_fhir(data)
        expected_cls = registry.get(data["resourceType"], BaseResource)
        if type(resource) is not expected_cls:
            failures.append(f"{label}: {type(resource).__name__}, not {expected_cls.__name__}")
            continue
        if resource.version is not None:
            failures.append(f"{label}: from_fhir gave a stored resource")
        found = first_difference(expected_back(data), to_fhir(resource))
        if found:
            failures.append(f"{label} ({data['resourceType']}/{data.get('id')}): {found}")
    assert not failures, _report(failures, len(resources))


@pytest.mark.parametrize("source", SOURCES)
def test_every_imported_resource_survives_a_second_round_trip(source: str) -> None:
    """from_fhir(to_fhir(r)) == r for each imported r, stored or not (envelope aside)."""
    failures: list[str] = []
    resources = load(source)
    for index, (label, data) in enumerate(resources):
        resource = from_fhir(data)
        if index % 2:  # every other one as if stored: meta.versionId/lastUpdated get written
            resource.version = 3
        again = from_fhir(to_fhir(resource))
        ignore_id = resource.version is None and "id" not in data
        if type(again) is not type(resource) or comparable(
            again, ignore_id=ignore_id
        ) != comparable(resource, ignore_id=ignore_id):
            failures.append(label)
    assert not failures, _report(failures, len(resources))


def _r4b_error(data: dict[str, Any]) -> str | None:
    """Why fhir.resources R4B rejects a resource, or None when it validates."""
    try:
        model = get_fhir_model_class(data["resourceType"])
    except ValueError as exc:
        return str(exc)  # the resource type does not exist in R4B
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return str(exc).replace("\n", " | ")[:300]
    return None


# The R4 medication-definition resources of the HL7 examples were replaced in R4B
# (MedicinalProductDefinition, ...) and SubstanceSpecification by SubstanceDefinition, so
# fhir.resources.R4B has no model for them: an R4/R4B difference, not a conversion problem.
R4_ONLY_TYPES = {
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "SubstanceSpecification",
}


@pytest.mark.parametrize("source", SOURCES)
def test_to_fhir_output_validates_with_fhir_resources_r4b(source: str) -> None:
    """to_fhir of every imported resource is valid R4B, apart from the R4-only types.

    Typed (hacs-modelled) resources must all validate. A resource that does not is accepted only
    when R4B rejects the original source the same way and its type is R4-only (listed above).
    """
    failures: list[str] = []
    r4_only: Counter[str] = Counter()
    typed = 0
    registry = registered_resource_types()
    for label, data in load(source):
        resource = from_fhir(data)
        typed += data["resourceType"] in registry
        error = _r4b_error(to_fhir(resource))
        if error is None:
            continue
        if data["resourceType"] in R4_ONLY_TYPES and _r4b_error(data) == error:
            r4_only[data["resourceType"]] += 1
            continue
        failures.append(f"{label} ({data['resourceType']}): {error}")
    assert not failures, _report(failures, len(load(source)))
    assert typed > 0
    if source != "hl7-examples":
        assert not r4_only
    else:
        assert set(r4_only) == R4_ONLY_TYPES  # each R4-only type is really in the data


def test_r4_only_types_are_really_missing_from_r4b() -> None:
    """The skip list names exactly the types fhir.resources.R4B cannot load."""
    for name in R4_ONLY_TYPES:
        with pytest.raises(ValueError, match="not a valid FHIR Model"):
            get_fhir_model_class(name)


def _all_keys(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            into.add(key)
            _all_keys(item, into)
    elif isinstance(value, list):
        for item in value:
            _all_keys(item, into)
    return into


@pytest.mark.parametrize(("sources", "at_least"), [(CORPUS_SOURCES, 800), (("fixture",), 50)])
def test_key_conversion_is_invertible_for_every_key_in_the_data(
    sources: tuple[str, ...], at_least: int
) -> None:
    """camel(snake(k)) == k for every object key that occurs anywhere in the data."""
    keys: set[str] = set()
    for source in sources:
        for _label, data in load(source):
            _all_keys(data, keys)
    assert len(keys) > at_least
    snake = {key: snake_case_key(key) for key in keys}
    assert {key for key, converted in snake.items() if camel_case_key(converted) != key} == set()
    assert len(set(snake.values())) == len(keys)  # no two FHIR names share a snake_case name
    assert snake["_birthDate"] == "_birth_date"
    assert snake["valueBase64Binary"] == "value_base64_binary"
    assert snake["resourceType"] == "resource_type"
