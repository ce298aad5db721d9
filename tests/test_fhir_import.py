"""FHIR import and export against real PostgreSQL, with the shared real-world data.

The whole of the shared FHIR data (``HACS_FHIR_DATA``, else ``shared/data/fhir`` beside the
checkout) (Synthea transaction bundles, Bulk Data NDJSON, HL7 examples)
is imported once per module into its own database, then imported again; the tests check what
the database holds against an independent reading of the files. Tests that change data use
resources of their own (or one Synthea patient no other test looks at).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Table
from typer.testing import CliRunner

from hacs_models import Actor, BaseResource
from hacs_models.fhir import from_fhir, to_fhir
from hacs_persistence.adapter import HistoryEntry, PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import (
    ImportProgress,
    ImportSummary,
    export_patient_bundle,
    export_type_ndjson,
    import_paths,
    write_patient_bundle,
)
from hacs_persistence.schema import TYPED_TABLES
from tests.conftest import TEMPLATE, admin_connect, db_connect, with_database
from tests.docs_blocks import _fenced as fenced_blocks
from tests.docs_blocks import sql_blocks
from tests.factories import observation_document as _observation
from tests.shared_data import FHIR_DATA, require_fhir_data

DATA = FHIR_DATA
SYNTHEA = DATA / "synthea"
NDJSON = DATA / "bulk-ndjson-10-patients"
HL7 = DATA / "hl7-examples"
ADMIN = Actor(name="fhir-import-test", role="system", permissions=["admin:*"])
SERVER_META = {"versionId", "lastUpdated"}
# The Bundles of the HL7 examples that are answers or messages, not data.
NOT_DATA = {
    "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json": "message",
    "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json": "message",
    "Bundle-bundle-example.json": "searchset",
    "Bundle-bundle-search-warning.json": "searchset",
    "Bundle-bundle-response-medsallergies.json": "batch-response",
    "Bundle-bundle-response-simplesummary.json": "batch-response",
    "Bundle-bundle-response.json": "transaction-response",
}
# Patients the tests look at: one for the export, another one for the modification test.
EXPORTED = SYNTHEA / "Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json"
MODIFIED = SYNTHEA / "Alexis_Toy_68cd1181-6359-4047-a77f-a165d7912480.json"


@pytest.fixture(autouse=True, scope="module")
def _shared_data() -> None:
    require_fhir_data()


# --- an independent reading of the files ---------------------------------------------------------


def _bundle(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def expected_ids() -> dict[str, set[str]]:
    """Type -> ids the data must leave in the database, read from the files without hacs.

    Bundles of type transaction/batch/collection contribute their entries (minus GET and
    DELETE requests and operation calls), a document Bundle itself, answers and messages
    nothing. Every resource without an id in this data has a ``urn:uuid`` fullUrl: its id.
    """
    found: defaultdict[str, set[str]] = defaultdict(set)

    def add(resource: dict[str, Any], full_url: str | None = None) -> None:
        resource_id = resource.get("id")
        if resource_id is None:
            assert full_url is not None and full_url.startswith("urn:uuid:"), full_url
            resource_id = full_url.removeprefix("urn:uuid:")
        found[resource["resourceType"]].add(resource_id)

    for path in sorted(SYNTHEA.glob("*.json")):
        for entry in _bundle(path)["entry"]:
            add(entry["resource"], entry["fullUrl"])
    for path in sorted(NDJSON.glob("*.ndjson")):
        for resource in _ndjson(path):
            add(resource)
    for path in sorted(HL7.glob("*.json")):
        data = _bundle(path)
        kind = data.get("type") if data["resourceType"] == "Bundle" else None
        if kind is None or kind == "document":
            add(data)
        elif kind in ("transaction", "batch", "collection"):
            for entry in data.get("entry", []):
                request = entry.get("request", {})
                if "resource" not in entry or request.get("method") in ("GET", "DELETE"):
                    continue
                if "$" in request.get("url", ""):
                    continue
                add(entry["resource"], entry.get("fullUrl"))
        else:
            assert NOT_DATA[path.name] == kind
    return dict(found)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def references_to_entries() -> int:
    """References equal to the fullUrl of an entry of their own Bundle (Bundles stored whole
    keep theirs): the ones the import must rewrite to Type/id."""
    count = 0
    for path in [*sorted(SYNTHEA.glob("*.json")), *sorted(HL7.glob("Bundle-*.json"))]:
        bundle = _bundle(path)
        if bundle.get("type") not in ("transaction", "batch", "collection"):
            continue
        entries = [e for e in bundle.get("entry", []) if "resource" in e]
        full_urls = {e["fullUrl"] for e in entries if "fullUrl" in e}
        for entry in entries:
            if entry["resource"]["resourceType"] != "Bundle":
                count += sum(r in full_urls for r in _references(entry["resource"]))
    return count


def synthea_ids(path: Path, resource_type: str) -> list[str]:
    return [
        e["resource"]["id"]
        for e in _bundle(path)["entry"]
        if e["resource"]["resourceType"] == resource_type
    ]


# --- the imported database -----------------------------------------------------------------------


@dataclass
class Imported:
    url: str
    adapter: PostgreSQLAdapter
    conn: asyncpg.Connection
    first: ImportSummary
    second: ImportSummary
    versions_after_first: int
    versions_after_second: int
    progress: list[ImportProgress]


async def count_versions(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM hacs_core.resource_versions"))


async def stored_ids(conn: asyncpg.Connection) -> dict[str, set[str]]:
    """Type -> ids of the live resources, typed tables and JSONB table together."""
    tables = []
    for table_cls in TYPED_TABLES.values():
        table = table_cls.__table__
        assert isinstance(table, Table)
        tables.append(f'"{table.schema}"."{table.name}"')
    found: defaultdict[str, set[str]] = defaultdict(set)
    for name in [*tables, "public.hacs_resources"]:
        for row in await conn.fetch(
            f"SELECT resource_type, id FROM {name} WHERE deleted_at IS NULL"
        ):
            found[row["resource_type"]].add(row["id"])
    return dict(found)


@pytest.fixture(scope="module")
async def imported(server_url: str, template_url: str) -> AsyncIterator[Imported]:
    """A database of its own with all the shared data imported twice."""
    name = f"hacs_fhir_{uuid.uuid4().hex[:12]}"
    admin = await admin_connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
        url = with_database(server_url, name)
        adapter = await create_postgres_adapter(url)
        conn = await db_connect(url)
        try:
            events: list[ImportProgress] = []
            first = await import_paths([DATA], adapter, ADMIN, progress=events.append)
            after_first = await count_versions(conn)
            second = await import_paths([DATA], adapter, ADMIN)
            after_second = await count_versions(conn)
            yield Imported(url, adapter, conn, first, second, after_first, after_second, events)
        finally:
            await conn.close()
            await adapter.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- the import ----------------------------------------------------------------------------------


async def test_every_file_imports_and_the_database_holds_exactly_the_data(
    imported: Imported,
) -> None:
    summary = imported.first
    assert summary.failed == [], [f.describe() for f in summary.failed]
    skipped = {Path(f.path).name for f in summary.files if f.status == "skipped"}
    assert skipped == set(NOT_DATA)
    assert summary.count("imported") == 683 - len(NOT_DATA)
    expected = expected_ids()
    assert await stored_ids(imported.conn) == expected
    # Each distinct Type/id was created once; the counts are the files' own (deduplicated).
    created = {t: c.created for t, c in summary.types.items() if c.created}
    assert created == {t: len(ids) for t, ids in expected.items()}
    assert sum(map(len, expected.values())) == 17678
    # Every version the import wrote is a create or one of its updates.
    totals = summary.totals
    assert imported.versions_after_first == totals.created + totals.updated


async def test_typed_types_go_to_their_tables_and_the_others_to_the_jsonb_table(
    imported: Imported,
) -> None:
    conn = imported.conn
    assert await conn.fetchval("SELECT count(*) FROM hacs_core.observations") == len(
        expected_ids()["Observation"]
    )
    fallback = {
        row["resource_type"]: row["n"]
        for row in await conn.fetch(
            "SELECT resource_type, count(*) AS n FROM public.hacs_resources GROUP BY 1"
        )
    }
    assert fallback["Claim"] == 1110 + 17  # Synthea + HL7 examples
    assert fallback["ExplanationOfBenefit"] == 914 + 2
    assert fallback["Bundle"] == 17 + 1  # nested collection Bundles + the document Bundle
    assert not set(fallback) & set(TYPED_TABLES)


async def test_duplicates_across_bundles_keep_the_last_copy_without_collisions(
    imported: Imported,
) -> None:
    # Organization 4861d01f... comes in 6 patient bundles and (with utilization extensions)
    # in the provider bundle, which comes last: its content is the stored one.
    org_id = "4861d01f-019c-3dac-a153-8334e50919f9"
    provider = next(
        e["resource"]
        for e in _bundle(SYNTHEA / "hospitalInformation1559319163815.json")["entry"]
        if e["resource"]["id"] == org_id
    )
    stored = to_fhir(await imported.adapter.read("Organization", org_id, ADMIN))
    assert stored["extension"] == provider["extension"]
    rows = await imported.conn.fetch(
        "SELECT version, operation FROM hacs_core.resource_versions "
        "WHERE resource_type = 'Organization' AND id = $1 ORDER BY version",
        org_id,
    )
    assert [(r["version"], r["operation"]) for r in rows] == [(1, "create"), (2, "update")]
    counts = imported.first.types["Organization"]
    assert (counts.created, counts.updated) == (158, 45)


async def test_urn_uuid_references_are_rewritten_to_type_and_id(imported: Imported) -> None:
    conn = imported.conn
    left = await conn.fetch(
        "SELECT resource_type, id FROM hacs_core.resource_versions WHERE resource_type <> "
        "'Bundle' AND jsonb_path_exists(document, '$.**.reference ? (@ starts with \"urn:\")')"
    )
    assert [tuple(r) for r in left] == []
    assert imported.first.unresolved_references == Counter()
    assert imported.first.resolved_references["bundle"] == references_to_entries()
    # A Synthea observation: subject and encounter were urn:uuid references in the file.
    entry = next(
        e for e in _bundle(EXPORTED)["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    source = entry["resource"]
    assert source["subject"]["reference"].startswith("urn:uuid:")
    patient_id = source["subject"]["reference"].removeprefix("urn:uuid:")
    stored = to_fhir(await imported.adapter.read("Observation", source["id"], ADMIN))
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    encounter_id = source["encounter"]["reference"].removeprefix("urn:uuid:")
    assert stored["encounter"]["reference"] == f"Encounter/{encounter_id}"
    # Bundles stored whole keep their own internal references.
    document: BaseResource = await imported.adapter.read("Bundle", "father", ADMIN)
    assert "urn:uuid:" in json.dumps(to_fhir(document))


async def test_conditional_references_of_the_ndjson_are_resolved_by_identifier(
    imported: Imported,
) -> None:
    conn = imported.conn
    left = await conn.fetchval(
        "SELECT count(*) FROM hacs_core.resource_versions "
        "WHERE jsonb_path_exists(document, '$.**.reference ? (@ like_regex \"[?]\")')"
    )
    assert left == 0
    assert imported.first.resolved_references["identifier-import"] == 10037
    # An encounter's practitioner (by NPI), organization and location (by Synthea id).
    line = _ndjson(NDJSON / "Encounter.000.ndjson")[0]
    individual = line["participant"][0]["individual"]["reference"]
    assert individual.startswith("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|")
    npi = individual.rsplit("|", 1)[1]
    practitioner = next(
        p
        for p in _ndjson(NDJSON / "Practitioner.000.ndjson")
        if {"system": "http://hl7.org/fhir/sid/us-npi", "value": npi} in p["identifier"]
    )
    stored = to_fhir(await imported.adapter.read("Encounter", line["id"], ADMIN))
    assert stored["participant"][0]["individual"]["reference"] == (
        f"Practitioner/{practitioner['id']}"
    )
    assert stored["serviceProvider"]["reference"].startswith("Organization/")
    assert stored["location"][0]["location"]["reference"].startswith("Location/")


async def test_foreign_key_columns_are_filled_across_files(imported: Imported) -> None:
    conn = imported.conn
    observation_ids = [i for p in SYNTHEA.glob("*.json") for i in synthea_ids(p, "Observation")]
    row = await conn.fetchrow(
        "SELECT count(*) AS n, count(patient_id) AS patients, count(encounter_id) AS encounters "
        "FROM hacs_core.observations WHERE id = ANY($1::text[])",
        observation_ids,
    )
    assert row["n"] == len(set(observation_ids)) == row["patients"] == row["encounters"]
    # NDJSON: encounters point at patients and requests at encounters of other files.
    for table, column, source in (
        ("hacs_core.encounters", "patient_id", "Encounter"),
        ("hacs_clinical.medication_requests", "encounter_id", "MedicationRequest"),
        ("hacs_clinical.procedures", "encounter_id", "Procedure"),
    ):
        ids = [r["id"] for r in _ndjson(NDJSON / f"{source}.000.ndjson")]
        missing = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE id = ANY($1::text[]) AND {column} IS NULL", ids
        )
        assert missing == 0, table
    # Only the HL7 examples point at patients that were never published: counted as dangling.
    dangling = imported.first.dangling_references
    assert set(dangling) <= {"patients", "encounters"} and sum(dangling.values()) > 0


async def test_progress_reports_every_file_and_entry(imported: Imported) -> None:
    events = imported.progress
    assert events[0].files_done == 0 and events[-1].files_done == events[-1].files_total == 683
    assert events[-1].entries_done == events[-1].entries_total
    assert [e.entries_done for e in events] == sorted(e.entries_done for e in events)


async def test_reimport_changes_nothing(imported: Imported) -> None:
    second = imported.second
    assert second.failed == []
    totals = second.totals
    assert (totals.created, totals.updated) == (0, 0)
    # Every entry was seen again: unchanged, or an earlier different copy of a duplicate.
    assert totals.total == imported.first.totals.total
    assert totals.unchanged >= sum(map(len, expected_ids().values()))
    assert imported.versions_after_second == imported.versions_after_first
    # The earlier, different copies of duplicated resources are skipped, never written back.
    assert set(second.skip_reasons) >= {"superseded by a later copy in this import"}


async def test_a_modified_resource_gets_exactly_one_new_version(
    imported: Imported, tmp_path: Path
) -> None:
    patient = next(
        e["resource"]
        for e in _bundle(MODIFIED)["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    changed = copy.deepcopy(patient)
    changed["maritalStatus"]["text"] = "Widowed (changed by the test)"
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    versions = await count_versions(imported.conn)

    try:
        summary = await import_paths([path], imported.adapter, ADMIN)
        assert summary.types["Patient"].updated == 1 and summary.totals.created == 0
        assert await count_versions(imported.conn) == versions + 1
        history: list[HistoryEntry[BaseResource]] = await imported.adapter.history(
            "Patient", patient["id"], ADMIN
        )
        assert [h.version for h in history] == [2, 1]
        assert to_fhir(history[0].resource)["maritalStatus"]["text"] == (
            "Widowed (changed by the test)"
        )
        again = await import_paths([path], imported.adapter, ADMIN)
        assert again.types["Patient"].unchanged == 1
        assert await count_versions(imported.conn) == versions + 1
    finally:
        # The original content back (a third version), as the other tests expect.
        path.write_text(json.dumps(patient), encoding="utf-8")
        restored = await import_paths([path], imported.adapter, ADMIN)
    assert restored.types["Patient"].updated == 1


async def test_a_bad_file_is_reported_by_line_and_nothing_of_it_is_written(
    imported: Imported, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(_observation(f"good-{tag}")) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.ndjson"
    broken.write_text(
        json.dumps(_observation(f"broken-{tag}")) + '\n{"resourceType": "Observation",\n',
        encoding="utf-8",
    )
    invalid = tmp_path / "invalid.ndjson"
    no_code = {"resourceType": "Observation", "id": f"nocode-{tag}", "status": "final"}
    invalid.write_text(
        "\n".join([json.dumps(_observation(f"invalid-{tag}")), "", json.dumps(no_code)]),
        encoding="utf-8",
    )
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": _observation(f"bundled-{tag}"), "request": {"method": "POST"}},
                    {"resource": no_code, "request": {"method": "POST"}},
                ],
            }
        ),
        encoding="utf-8",
    )
    missing = tmp_path / "missing.json"
    summary = await import_paths([tmp_path, missing], imported.adapter, ADMIN)

    failed = {Path(f.path).name: f for f in summary.failed}
    assert set(failed) == {"broken.ndjson", "invalid.ndjson", "bundle.json", "missing.json"}
    assert failed["missing.json"].reason == "no such file or directory"
    assert failed["broken.ndjson"].line == 2
    assert "invalid JSON" in (failed["broken.ndjson"].reason or "")
    assert failed["invalid.ndjson"].line == 3
    assert "code" in (failed["invalid.ndjson"].reason or "")
    assert (
        failed["invalid.ndjson"]
        .describe()
        .endswith("invalid.ndjson:3: Observation resource is not valid: code: Field required")
    )
    assert failed["bundle.json"].where == "entry[1]"
    assert summary.types["Observation"].created == 1 and not summary.ok
    ids = await imported.conn.fetch(
        "SELECT id FROM hacs_core.observations WHERE id LIKE '%-' || $1", tag
    )
    assert [r["id"] for r in ids] == [f"good-{tag}"]


async def test_references_resolve_from_the_database_or_stay_as_they_are(
    imported: Imported, tmp_path: Path
) -> None:
    practitioner = _ndjson(NDJSON / "Practitioner.000.ndjson")[0]
    npi = practitioner["identifier"][0]["value"]
    resource_id = f"later-{uuid.uuid4().hex[:8]}"
    later = _observation(
        resource_id,
        performer=[
            {"reference": f"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}"},
            {"reference": "Practitioner?identifier=urn:nowhere|0"},
        ],
        subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
    )
    path = tmp_path / "later.ndjson"
    path.write_text(json.dumps(later) + "\n", encoding="utf-8")
    summary = await import_paths([path], imported.adapter, ADMIN)
    assert summary.ok
    assert summary.resolved_references == Counter({"identifier-database": 1})
    assert summary.unresolved_references == Counter({"conditional": 1, "urn": 1})
    stored = to_fhir(await imported.adapter.read("Observation", resource_id, ADMIN))
    assert [p["reference"] for p in stored["performer"]] == [
        f"Practitioner/{practitioner['id']}",
        "Practitioner?identifier=urn:nowhere|0",
    ]
    assert stored["subject"] == later["subject"]


# --- the export ----------------------------------------------------------------------------------


async def test_patient_bundle_holds_the_compartment_and_validates(imported: Imported) -> None:
    patient_id = synthea_ids(EXPORTED, "Patient")[0]
    bundle = await export_patient_bundle(imported.adapter, patient_id, ADMIN)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    exported: defaultdict[str, set[str]] = defaultdict(set)
    for entry in bundle["entry"]:
        exported[entry["resource"]["resourceType"]].add(entry["resource"]["id"])
    assert bundle["entry"][0]["resource"]["id"] == patient_id
    # Everything of the patient's Synthea bundle except the providers, which do not refer to it.
    source: defaultdict[str, set[str]] = defaultdict(set)
    for entry in _bundle(EXPORTED)["entry"]:
        if entry["resource"]["resourceType"] not in ("Organization", "Practitioner"):
            source[entry["resource"]["resourceType"]].add(entry["resource"]["id"])
    assert exported == source
    assert len(exported["Observation"]) == 94 and "Claim" in exported

    stream = io.StringIO()
    count = await write_patient_bundle(imported.adapter, patient_id, stream, ADMIN, page_size=7)
    streamed = json.loads(stream.getvalue())
    Bundle.model_validate(streamed)
    assert count == len(streamed["entry"]) == len(bundle["entry"])


@pytest.mark.parametrize("resource_type", ["Condition", "ExplanationOfBenefit", "Bundle"])
async def test_ndjson_export_round_trips_and_validates(
    imported: Imported, resource_type: str
) -> None:
    out = io.StringIO()
    count = await export_type_ndjson(imported.adapter, resource_type, ADMIN, out, page_size=300)
    lines = out.getvalue().splitlines()
    assert count == len(lines) == len(expected_ids()[resource_type])
    model = get_fhir_model_class(resource_type)
    for line in lines:
        data = json.loads(line)
        model.model_validate(data)
        assert {"versionId", "lastUpdated"} <= set(data["meta"])
        again = to_fhir(from_fhir(data))
        meta = {k: v for k, v in data["meta"].items() if k not in SERVER_META}
        expected = (
            {**data, "meta": meta} if meta else {k: v for k, v in data.items() if k != "meta"}
        )
        assert again == expected


# --- docs/fhir.md ------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "fhir.md"


def _check_weights(rows: list[Any]) -> None:
    assert {r["value_unit"] for r in rows} <= {"kg", "lbs"}  # an HL7 example is in pounds
    assert synthea_ids(EXPORTED, "Patient")[0] in {r["id"] for r in rows}


def _check_organizations(rows: list[Any]) -> None:
    counts = [r["encounters"] for r in rows]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0


def _check_claims(rows: list[Any]) -> None:
    assert sorted(r["id"] for r in rows) == sorted(synthea_ids(EXPORTED, "Claim"))


def _check_npi(rows: list[Any]) -> None:
    npi = {"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999908392"}
    wanted = [
        p["id"] for p in _ndjson(NDJSON / "Practitioner.000.ndjson") if npi in p["identifier"]
    ]
    assert [r["id"] for r in rows] == wanted


def _check_versions(rows: list[Any]) -> None:
    assert [(r["version"], r["operation"]) for r in rows] == [(1, "create"), (2, "update")]


def _check_dangling(rows: list[Any]) -> None:
    assert rows
    patients = expected_ids()["Patient"]
    assert all(r["subject"].removeprefix("Patient/") not in patients for r in rows)


DOC_CHECKS = {
    "Latest body weight of each patient": _check_weights,
    "Encounters per organization": _check_organizations,
    "Claims of one patient (a type without a typed table)": _check_claims,
    "A practitioner by NPI": _check_npi,
    "Versions of a resource imported with different content": _check_versions,
    "Observations whose patient is not in the database": _check_dangling,
}


async def test_the_sql_of_the_fhir_page_runs_on_the_imported_data(imported: Imported) -> None:
    blocks = sql_blocks(DOC.read_text(encoding="utf-8"))
    assert sorted(b.title for b in blocks) == sorted(DOC_CHECKS)
    for block in blocks:
        rows = await imported.conn.fetch(block.sql)
        assert rows, f"{block.title!r} (line {block.line}) returned no rows"
        DOC_CHECKS[block.title](rows)


async def test_the_python_example_of_the_fhir_page_runs(
    imported: Imported, monkeypatch: pytest.MonkeyPatch
) -> None:
    [code] = [body for lang, body, _line in fenced_blocks(DOC.read_text()) if lang == "python"]
    monkeypatch.setenv("DATABASE_URL", imported.url)
    output = io.StringIO()

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(DOC), "exec"), {"__name__": "__main__"})

    await asyncio.to_thread(run)
    assert "0 created, 0 updated" in output.getvalue()
    assert "178 resources in the patient's Bundle" in output.getvalue()


# --- the JSONB adapter and the command line ------------------------------------------------------


async def test_jsonb_adapter_imports_and_exports_the_same_way(database_url: str) -> None:
    adapter = await create_postgres_adapter(database_url, kind="jsonb")
    try:
        summary = await import_paths([EXPORTED], adapter, ADMIN)
        assert summary.ok and summary.totals.created == 180
        again = await import_paths([EXPORTED], adapter, ADMIN)
        assert again.totals.unchanged == 180
        patient_id = synthea_ids(EXPORTED, "Patient")[0]
        bundle = await export_patient_bundle(adapter, patient_id, ADMIN)
        Bundle.model_validate(bundle)
        assert len(bundle["entry"]) == 178  # everything but the Organization and Practitioner
    finally:
        await adapter.close()


runner = CliRunner()


def test_cli_import_reports_bad_files_and_exports(database_url: str, tmp_path: Path) -> None:
    from hacs_cli.main import app

    data = tmp_path / "data"
    data.mkdir()
    (data / EXPORTED.name).write_bytes(EXPORTED.read_bytes())
    (data / "bad.ndjson").write_text(json.dumps(_observation("x-1")) + "\n{oops\n")
    result = runner.invoke(app, ["--database-url", database_url, "import", str(data)])
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Observation" in result.stdout and "94" in result.stdout
    assert "bad.ndjson:2: invalid JSON" in result.stdout
    assert "1 of 2 files failed" in result.stderr

    (data / "bad.ndjson").unlink()
    result = runner.invoke(app, ["--database-url", database_url, "import", str(data)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout

    out = tmp_path / "observations.ndjson"
    result = runner.invoke(
        app, ["--database-url", database_url, "export", "--type", "Observation", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert len(out.read_text().splitlines()) == 94
    patient_id = synthea_ids(EXPORTED, "Patient")[0]
    result = runner.invoke(app, ["--database-url", database_url, "export", "--patient", patient_id])
    assert result.exit_code == 0, result.stderr
    Bundle.model_validate(json.loads(result.stdout))

    result = runner.invoke(app, ["--database-url", database_url, "export", "--patient", "nobody"])
    assert result.exit_code == 1 and "Patient does not exist" in result.stderr
    assert "nobody" not in result.stderr
    result = runner.invoke(app, ["--database-url", database_url, "export"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["import", "--help"])
    assert "admin:*" in result.stdout
