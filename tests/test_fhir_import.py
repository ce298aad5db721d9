"""FHIR import and export against real PostgreSQL, with the real FHIR corpus.

The whole corpus (``HACS_FHIR_DATA``, see tests/shared_data.py: Synthea transaction bundles,
Bulk Data NDJSON, HL7 examples) is imported once per module into its own database, then imported
again; the tests check what the database holds against an independent reading of the files, and
the corpus's own counts. Every test here needs the corpus (skipped loudly without it, failed
under CI); the same behaviours on small data the tests write, and the tests that need no corpus,
are in tests/test_fhir_import_small.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
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

from hacs_models import Actor, BaseResource
from hacs_models.fhir import from_fhir, to_fhir
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
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
# The patient the export tests look at.
EXPORTED = SYNTHEA / "Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json"


# --- an independent reading of the files ---------------------------------------------------------


def _bundle(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def expected_ids(root: Path = DATA, not_data: dict[str, str] = NOT_DATA) -> dict[str, set[str]]:
    """Type -> ids the data under ``root`` must leave in the database, read without hacs.

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

    for path in sorted((root / SYNTHEA.name).glob("*.json")):
        for entry in _bundle(path)["entry"]:
            add(entry["resource"], entry["fullUrl"])
    for path in sorted((root / NDJSON.name).glob("*.ndjson")):
        for resource in _ndjson(path):
            add(resource)
    for path in sorted((root / HL7.name).glob("*.json")):
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
            assert not_data[path.name] == kind
    return dict(found)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def references_to_entries(root: Path = DATA) -> int:
    """References equal to the fullUrl of an entry of their own Bundle (Bundles stored whole
    keep theirs): the ones the import must rewrite to Type/id."""
    count = 0
    synthea, hl7 = root / SYNTHEA.name, root / HL7.name
    for path in [*sorted(synthea.glob("*.json")), *sorted(hl7.glob("Bundle-*.json"))]:
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


@contextlib.asynccontextmanager
async def imported_database(server_url: str, root: Path) -> AsyncIterator[Imported]:
    """A database of its own (from the template) with ``root`` imported twice."""
    name = f"hacs_fhir_{uuid.uuid4().hex[:12]}"
    admin = await admin_connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
        url = with_database(server_url, name)
        adapter = await create_postgres_adapter(url)
        conn = await db_connect(url)
        try:
            events: list[ImportProgress] = []
            first = await import_paths([root], adapter, ADMIN, progress=events.append)
            after_first = await count_versions(conn)
            second = await import_paths([root], adapter, ADMIN)
            after_second = await count_versions(conn)
            yield Imported(url, adapter, conn, first, second, after_first, after_second, events)
        finally:
            await conn.close()
            await adapter.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def imported(server_url: str, template_url: str) -> AsyncIterator[Imported]:
    """The whole corpus imported twice."""
    require_fhir_data()
    async with imported_database(server_url, DATA) as result:
        yield result


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
    monkeypatch.setenv("HACS_FHIR_DATA", str(DATA))
    output = io.StringIO()

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(DOC), "exec"), {"__name__": "__main__"})

    await asyncio.to_thread(run)
    # The Synthea folder was imported before: all of it unchanged, nothing failed.
    assert re.search(r"^0 created, 0 updated, [1-9]\d* unchanged$", output.getvalue(), re.M)
    assert "failed:" not in output.getvalue()
    assert "178 resources in the patient's Bundle" in output.getvalue()


# --- fidelity: what goes in comes out exactly ----------------------------------------------------


@dataclass(frozen=True)
class LiteralNumber:
    """A JSON decimal as its literal text: ``1.00`` and ``1.0`` are different values here."""

    text: str


def literal_json(text: str | bytes) -> Any:
    """JSON with every non-integer number kept as its literal text (the test's own reader)."""
    return json.loads(text, parse_float=LiteralNumber)


_TYPE_AND_ID = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def literal_differences(
    source: Any, exported: Any, rewritable: set[str], path: str = "$"
) -> str | None:
    """The first place the export differs from its source, or None when it is exact.

    Exact means: the same keys, list lengths, JSON types and literal texts (decimals as written,
    date-times with their own offset and fraction digits). Allowed (callers remove the server's
    ``meta`` first): a ``reference`` that the import resolves (a
    ``fullUrl`` of an entry of the same Bundle, or a conditional ``Type?search``) becoming
    ``Type/id``.
    """
    if isinstance(source, dict):
        if not isinstance(exported, dict):
            return f"{path}: {exported!r:.80} instead of an object"
        for key in sorted(source.keys() | exported.keys()):
            if key not in exported:
                return f"{path}.{key}: missing"
            if key not in source:
                return f"{path}.{key}: unexpected {exported[key]!r:.80}"
            before, after = source[key], exported[key]
            if (
                key == "reference"
                and isinstance(before, str)
                and before != after
                and (before in rewritable or "?" in before)
                and isinstance(after, str)
                and _TYPE_AND_ID.fullmatch(after)
            ):
                continue
            found = literal_differences(before, after, rewritable, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(source, list):
        if not isinstance(exported, list) or len(exported) != len(source):
            return f"{path}: {exported!r:.80} instead of a list of {len(source)}"
        for index, (left, right) in enumerate(zip(source, exported, strict=True)):
            found = literal_differences(left, right, rewritable, f"{path}[{index}]")
            if found:
                return found
        return None
    same = type(source) is type(exported) and source == exported
    return None if same else f"{path}: {exported!r:.80} instead of {source!r:.80}"


def without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource minus ``meta.versionId``/``meta.lastUpdated`` (a store writes its own)."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or SERVER_META.isdisjoint(meta):
        return resource
    kept = {k: v for k, v in meta.items() if k not in SERVER_META}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if kept:
        out["meta"] = kept
    return out


def source_copies(root: Path = DATA) -> tuple[dict[tuple[str, str], list[Any]], set[str]]:
    """(Type, id) -> every copy of it in the files (read literally), and the entries' fullUrls.

    The same selection as ``expected_ids``; a resource without an id gets its ``urn:uuid``.
    """
    copies: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
    full_urls: set[str] = set()

    def add(resource: dict[str, Any], full_url: str | None = None) -> None:
        if full_url is not None:
            full_urls.add(full_url)
        resource_id = resource.get("id")
        if resource_id is None:
            assert full_url is not None and full_url.startswith("urn:uuid:"), full_url
            resource = {**resource, "id": full_url.removeprefix("urn:uuid:")}
        copies[(resource["resourceType"], resource["id"])].append(resource)

    for path in sorted((root / SYNTHEA.name).glob("*.json")):
        for entry in literal_json(path.read_bytes())["entry"]:
            add(entry["resource"], entry["fullUrl"])
    for path in sorted((root / NDJSON.name).glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                add(literal_json(line))
    for path in sorted((root / HL7.name).glob("*.json")):
        data = literal_json(path.read_bytes())
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
    return dict(copies), full_urls


async def test_every_exported_resource_is_its_source_exactly(imported: Imported) -> None:
    """Import the whole corpus, export every type, and compare each resource with its source
    text-exactly: decimals as their literals, date-times as given (offset, fraction digits).

    Only ``meta``'s versionId/lastUpdated and the references the import resolves may differ. A
    resource that comes in several files must be exactly one of its copies.
    """
    copies, full_urls = source_copies()
    exported_count = 0
    failures: list[str] = []
    decimal_literals = 0
    offsets = 0
    for resource_type in sorted({key[0] for key in copies}):
        out = io.StringIO()
        await export_type_ndjson(imported.adapter, resource_type, ADMIN, out, page_size=500)
        for line in out.getvalue().splitlines():
            exported = without_server_meta(literal_json(line))
            exported_count += 1
            key = (exported["resourceType"], exported["id"])
            candidates = copies.get(key, [])
            differences = [
                literal_differences(without_server_meta(c), exported, full_urls) for c in candidates
            ]
            if not candidates or all(differences):
                failures.append(f"{key}: {differences[0] if differences else 'not in the files'}")
            decimal_literals += line.count(".00,") + line.count(".00}")
            offsets += len(re.findall(r"T\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d:\d\d", line))
    assert exported_count == len(copies) == 17678
    assert not failures, f"{len(failures)} of {exported_count} changed; first:\n" + "\n".join(
        failures[:20]
    )
    # The corpus does hold the values a lossy store changes (so the test can fail).
    assert decimal_literals > 0 and offsets > 0
