"""Views compiled onto typed columns give exactly the rows of the same views over the FHIR JSON.

The oracle is the JSON compilation (``typed=False``), which the SQL on FHIR suite checks. On the
whole shared corpus stored through hacs (typed rows), plus Observations stored by the JSONB
adapter (no typed rows), every view gives the same multiset of rows both ways, value for value
(decimals by their digits, date-times as text). Also: the typed compilation really reads the
typed table, the rows a typed mapping is not exact for really occur in the data, a scoped
actor sees the same rows both ways, and rows stored before revision 0008 stop a typed view.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_models import Actor
from hacs_models.fhir import from_fhir
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths
from hacs_persistence.schema.core import OBSERVATION_VIEW_FALLBACK
from hacs_persistence.schema.sources import parse_reference
from hacs_persistence.views import (
    ViewDefinitionError,
    compile_view,
    create_view,
    sync_fhir_resources,
    view_rows,
)
from tests.shared_data import FHIR_DATA, require_fhir_data
from tests.test_sql_on_fhir import DATA as SUITE_DATA

ADMIN = Actor(name="typed-views", role="admin", permissions=["admin:*"])
DOCS_VIEW = Path(__file__).resolve().parents[1] / "docs" / "views.md"


def _column(name: str, path: str, kind: str | None = None, **more: Any) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "path": path, **more}
    if kind is not None:
        column["type"] = kind
    return column


def _view(*columns: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "resourceType": "ViewDefinition",
        "resource": "Observation",
        "select": [{"column": list(columns)}],
    }
    if where is not None:
        view["where"] = [{"path": where}]
    return view


KEY = _column("id", "getResourceKey()", "id")
PATIENT = _column("patient_id", "subject.getReferenceKey(Patient)", "id")
CODE = _column("code", "code.coding.code.first()", "code")
SYSTEM = _column("system", "code.coding.system.first()", "uri")
VALUE = _column("value", "value.ofType(Quantity).value", "decimal")
UNIT = _column("unit", "value.ofType(Quantity).unit", "string")
STATUS = _column("status", "status", "code")
EFFECTIVE = _column("effective", "effective.ofType(dateTime)", "dateTime")
VIEWS = {
    # Every column typed: the document is read only where a mapping is not exact.
    "all typed": _view(KEY, PATIENT, CODE, SYSTEM, VALUE, UNIT, STATUS),
    # Typed and JSON columns (the benchmark's view).
    "mixed": _view(KEY, PATIENT, CODE, VALUE, UNIT, EFFECTIVE),
    "with where": _view(KEY, CODE, VALUE, where="status = 'final'"),
    # Not typed: no type (jsonb), a collection, another path to the same element.
    "unmapped": _view(
        _column("code_json", "code.coding.code.first()"),
        _column("codes", "code.coding.code", "code", collection=True),
        _column("first_code", "code.coding.first().code", "code"),
        _column("value_text", "value.ofType(Quantity).value", "string"),
        KEY,
    ),
    "key only": _view(_column("id", "id", "id")),
}


def _docs_view() -> dict[str, Any]:
    text = DOCS_VIEW.read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    view: dict[str, Any] = json.loads(block)
    return view


def _suite_views() -> list[dict[str, Any]]:
    """The suite's flat Observation views that compile (the others never take the typed path)."""
    if SUITE_DATA is None:
        if os.environ.get("CI") == "true":
            pytest.fail("The SQL on FHIR suite is missing: set HACS_SQL_ON_FHIR_DATA.")
        return []
    views = []
    for path in sorted((SUITE_DATA / "tests").glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["tests"]:
            view = case["view"]
            if view.get("resource") != "Observation" or case.get("expectError"):
                continue
            try:
                compile_view(view)
            except ViewDefinitionError:
                continue
            views.append(view)
    return views


def _rows_key(rows: list[dict[str, Any]]) -> list[str]:
    # str(): a Decimal compares by its digits (1.0 is not 1.00), a date-time by its text.
    return sorted(json.dumps({k: str(v) for k, v in r.items()}, sort_keys=True) for r in rows)


async def _both(
    adapter: PostgreSQLAdapter, view: dict[str, Any], actor: Actor = ADMIN
) -> tuple[list[str], list[str]]:
    typed = [r async for r in view_rows(adapter, view, actor=actor)]
    plain = [r async for r in view_rows(adapter, view, actor=actor, typed=False)]
    return _rows_key(typed), _rows_key(plain)


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    require_fhir_data()
    return [
        FHIR_DATA / "synthea",
        FHIR_DATA / "hl7-examples",
        FHIR_DATA / "bulk-ndjson-10-patients",
    ]


@pytest.fixture
async def stored(database_url: str, corpus: list[Path]) -> AsyncIterator[PostgreSQLAdapter]:
    adapter = await create_postgres_adapter(database_url)
    jsonb = await create_postgres_adapter(database_url, kind="jsonb")
    try:
        for folder in corpus:
            await import_paths([folder], adapter, ADMIN)
        # Observations the JSONB adapter stores: in fhir_resources, not in the typed table.
        for number, quantity in enumerate(["1.50", "2", None]):
            fhir: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"jsonb-{number}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "subject": {"reference": "Patient/nobody-typed"},
            }
            if quantity is not None:
                fhir["valueQuantity"] = {"value": json.loads(quantity), "unit": "mm[Hg]"}
            await jsonb.save(from_fhir(fhir), ADMIN)
        yield adapter
    finally:
        await jsonb.close()
        await adapter.close()


async def test_typed_and_json_compilations_give_the_same_rows_on_the_corpus(
    stored: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    views = {**VIEWS, "docs": _docs_view()}
    views.update({f"suite {i}": v for i, v in enumerate(_suite_views())})
    for label, view in views.items():
        typed, plain = await _both(stored, view)
        assert typed == plain, label
    all_typed, _ = await _both(stored, VIEWS["all typed"])
    assert len(all_typed) > 4_500  # the corpus' Observations, not a handful
    # The rows each conditional mapping is not exact for are in the data, so the comparison
    # above covered the JSON fallback: Observations without a Quantity value but a number
    # (valueInteger) or none, and ones whose patient reference was dangling and cleared.
    fallback = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE value_unit IS NULL) AS no_unit, "
        "count(*) FILTER (WHERE patient_id IS NULL) AS no_patient "
        "FROM hacs_core.observations WHERE deleted_at IS NULL"
    )
    assert fallback["no_unit"] > 0 and fallback["no_patient"] > 0
    # Every typed value has the document's digits (66.899999999999991 once became ...99).
    differing = await db.fetch(
        "SELECT t.id FROM hacs_core.observations AS t JOIN hacs_views.fhir_resources AS r "
        "ON r.resource_type = 'Observation' AND r.id = t.id "
        "WHERE t.value_unit IS NOT NULL AND t.value_numeric::text IS DISTINCT FROM "
        "(r.resource -> 'valueQuantity' ->> 'value')::numeric::text"
    )
    assert differing == []
    untyped = await db.fetchval(
        "SELECT count(*) FROM hacs_views.fhir_resources "
        "WHERE resource_type = 'Observation' AND NOT stored_typed"
    )
    assert untyped == 3
    assert any(key.startswith('{"code": "8480-6", "id": "jsonb-0"') for key in all_typed)


async def test_a_typed_view_reads_the_typed_table_and_its_indexes(
    stored: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    compiled = compile_view(VIEWS["all typed"])
    assert 'FROM (SELECT * FROM "hacs_core"."observations" WHERE' in compiled.sql
    await create_view(stored, VIEWS["all typed"], name="obs_typed", actor=ADMIN)
    await db.execute("ANALYZE")
    plan = "\n".join(
        r[0]
        for r in await db.fetch(
            "EXPLAIN SELECT count(*) FROM hacs_views.obs_typed WHERE code = '8480-6'"
        )
    )
    assert "observations" in plan and "Index" in plan and "ix_observations_code" in plan, plan
    # The created view answers as the JSON one does.
    typed = await db.fetch("SELECT * FROM hacs_views.obs_typed")
    plain = [r async for r in view_rows(stored, VIEWS["all typed"], actor=ADMIN, typed=False)]
    assert _rows_key([dict(r) for r in typed]) == _rows_key(plain)


async def test_a_scoped_actor_sees_the_same_rows_both_ways(
    stored: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patients = [
        r["patient_id"]
        for r in await db.fetch(
            "SELECT patient_id FROM hacs_views.fhir_resources WHERE resource_type = 'Observation' "
            "AND patient_id IS NOT NULL GROUP BY patient_id ORDER BY count(*) DESC LIMIT 2"
        )
    ]
    nurse = Actor(
        name="nurse", role="nurse", permissions=["observation:read"], patient_ids=patients[:1]
    )
    typed, plain = await _both(stored, VIEWS["mixed"], nurse)
    assert typed == plain and typed
    assert all(json.loads(k)["patient_id"] == patients[0] for k in typed)


async def test_rows_stored_before_0008_stop_a_typed_view_until_synced(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    fhir = {
        "resourceType": "Observation",
        "id": "legacy",
        "status": "final",
        "code": {"coding": [{"code": "8480-6"}]},
    }
    await granular.save(from_fhir(fhir), ADMIN)
    # As a database upgraded from before 0008 has it: the typed row without FHIR JSON.
    await db.execute("DELETE FROM hacs_views.fhir_resources WHERE id = 'legacy'")
    with pytest.raises(ViewDefinitionError, match="hacs views sync Observation"):
        await create_view(granular, VIEWS["all typed"], name="early", actor=ADMIN)
    with pytest.raises(ViewDefinitionError, match="hacs views sync Observation"):
        [r async for r in view_rows(granular, VIEWS["all typed"], actor=ADMIN)]
    assert [r async for r in view_rows(granular, VIEWS["key only"], actor=ADMIN, typed=False)] == []
    await sync_fhir_resources(granular, "Observation", actor=ADMIN)
    assert [r async for r in view_rows(granular, VIEWS["key only"], actor=ADMIN)] == [
        {"id": "legacy"}
    ]


async def test_a_sync_fills_the_typed_columns_a_row_written_by_sql_lacks(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    fhir = {
        "resourceType": "Observation",
        "id": "by-sql",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2019-03-01T10:00:00.120+01:00",
        "valueQuantity": {"value": 120.50, "unit": "mm[Hg]"},
    }
    await granular.save(from_fhir({"resourceType": "Patient", "id": "p1"}), ADMIN)
    await granular.save(from_fhir(fhir), ADMIN)
    # As SQL outside the adapter writes it: no FHIR JSON, no effective_text.
    await db.execute("DELETE FROM hacs_views.fhir_resources WHERE id = 'by-sql'")
    await db.execute("UPDATE hacs_core.observations SET effective_text = NULL WHERE id = 'by-sql'")
    fallback = (
        "SELECT count(*) FROM hacs_core.observations WHERE id = 'by-sql' AND ("
        + " OR ".join(f"({c})" for c in OBSERVATION_VIEW_FALLBACK.values())
        + ")"
    )
    await sync_fhir_resources(granular, "Observation", actor=ADMIN)
    assert await db.fetchval(fallback) == 0
    assert (
        await db.fetchval("SELECT effective_text FROM hacs_core.observations WHERE id = 'by-sql'")
        == "2019-03-01T10:00:00.120+01:00"
    )
    typed, plain = await _both(granular, VIEWS["mixed"])
    assert typed == plain and len(typed) == 1
    assert json.loads(typed[0])["effective"] == "2019-03-01T10:00:00.120+01:00"


# Edge cases by hand, then random strings over the characters references are parsed by.
_EDGES = [
    "Patient/1",
    "Patient/1/_history/2",
    "a/b/Patient/1",
    "xPatient/1",
    "Patient/1?x=2",
    "Patient/1/",
    "Patient//1",
    "Patient/",
    "Patient",
    "#p1",
    "urn:uuid:1/Patient/2",
    "Patient/_history/2",
    "a/Patient/_history/3",
    "Patient/1/_history/",
    "http://h/fhir/Patient/7",
    "Group/1",
    "patient/1",
    "Patient/a b",
    "",
    "/Patient/1",
    "Patient/1/_history/2/3",
]


async def test_getreferencekey_reads_references_as_the_typed_column_does(
    db: asyncpg.Connection,
) -> None:
    # subject.getReferenceKey(Patient) maps onto patient_id (parse_reference): the two must
    # agree on every string, malformed ones included (revision 0011).
    rng = random.Random(11)
    pieces = ["Patient", "/", "_history", "?", "#", "urn:", "x", "1", " ", "Group"]
    references = _EDGES + [
        "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(5000)
    ]
    expected = []
    for reference in references:
        parsed = parse_reference(reference)
        expected.append(parsed[1] if parsed and parsed[0] == "Patient" else None)
    rows = await db.fetch(
        "SELECT hacs_views.reference_key(jsonb_build_object('reference', r), 'Patient') AS k "
        "FROM unnest($1::text[]) WITH ORDINALITY AS u(r, n) ORDER BY n",
        references,
    )
    mismatches = [
        (ref, want, row["k"])
        for ref, want, row in zip(references, expected, rows, strict=True)
        if want != row["k"]
    ]
    assert not mismatches, mismatches[:10]
