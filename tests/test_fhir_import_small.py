"""FHIR import and export against real PostgreSQL, on the small data of tests/fhir_fixtures.py.

Runs anywhere (no corpus needed): the behaviours tests/test_fhir_import.py checks on the real
corpus (urn:uuid and conditional references, duplicates across bundles, typed tables and the
JSONB table, re-import, the patient export) checked on data the tests write, against the same
independent reading of the files; plus the tests that never needed the corpus (bad files,
references resolved from the database, the JSONB adapter, the command line).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from hacs_models import BaseResource
from hacs_models.fhir import to_fhir
from hacs_persistence.adapter import HistoryEntry, create_postgres_adapter
from hacs_persistence.interchange import export_patient_bundle, import_paths
from tests.conftest import db_connect
from tests.fhir_fixtures import NOT_DATA as FIXTURE_NOT_DATA
from tests.fhir_fixtures import NPI_SYSTEM, PATIENTS, Corpus, observation, write_corpus
from tests.test_fhir_import import (
    ADMIN,
    Imported,
    _bundle,
    _ndjson,
    count_versions,
    expected_ids,
    imported_database,
    references_to_entries,
    stored_ids,
    synthea_ids,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return write_corpus(tmp_path_factory.mktemp("fhir-fixtures"))


@pytest.fixture(scope="module")
async def small(server_url: str, template_url: str, corpus: Corpus) -> AsyncIterator[Imported]:
    async with imported_database(server_url, corpus.root) as result:
        yield result


# --- the import (the behaviours of the corpus tests) --------------------------------------------


async def test_every_file_imports_and_the_database_holds_exactly_the_data(
    small: Imported, corpus: Corpus
) -> None:
    summary = small.first
    assert summary.failed == [], [f.describe() for f in summary.failed]
    skipped = {Path(f.path).name for f in summary.files if f.status == "skipped"}
    assert skipped == set(FIXTURE_NOT_DATA)
    assert summary.count("imported") == corpus.files - len(FIXTURE_NOT_DATA)
    expected = expected_ids(corpus.root, FIXTURE_NOT_DATA)
    assert await stored_ids(small.conn) == expected
    created = {t: c.created for t, c in summary.types.items() if c.created}
    assert created == {t: len(ids) for t, ids in expected.items()}
    assert small.versions_after_first == summary.totals.created + summary.totals.updated
    events = small.progress
    assert events[-1].files_done == events[-1].files_total == corpus.files


async def test_typed_types_go_to_their_tables_and_the_others_to_the_jsonb_table(
    small: Imported,
) -> None:
    fallback = dict(
        await small.conn.fetch(
            "SELECT resource_type, count(*) FROM public.hacs_resources GROUP BY 1"
        )
    )
    # A Claim per patient; the document Bundle and the collection nested in a collection are
    # stored whole (the outer collection's entries are imported one by one).
    assert fallback == {"Claim": PATIENTS, "Bundle": 2}
    observations = await small.conn.fetchval("SELECT count(*) FROM hacs_core.observations")
    assert observations == 3 * PATIENTS + 1 + 1  # the weights, the collection's, the example's


async def test_duplicates_across_bundles_keep_the_last_copy(
    small: Imported, corpus: Corpus
) -> None:
    assert corpus.provider_bundle is not None
    [organization] = [
        e["resource"]
        for e in _bundle(corpus.provider_bundle)["entry"]
        if e["resource"]["resourceType"] == "Organization"
    ]
    stored = to_fhir(await small.adapter.read("Organization", organization["id"], ADMIN))
    assert stored["extension"] == organization["extension"]
    rows = await small.conn.fetch(
        "SELECT version, operation FROM hacs_core.resource_versions "
        "WHERE resource_type = 'Organization' AND id = $1 ORDER BY version",
        organization["id"],
    )
    assert [(r["version"], r["operation"]) for r in rows] == [(1, "create"), (2, "update")]


async def test_urn_uuid_and_conditional_references_are_rewritten(
    small: Imported, corpus: Corpus
) -> None:
    left = await small.conn.fetchval(
        "SELECT count(*) FROM hacs_core.resource_versions WHERE resource_type <> 'Bundle' AND "
        'jsonb_path_exists(document, \'$.**.reference ? (@ starts with "urn:" || '
        '@ like_regex "[?]")\')'
    )
    assert left == 0
    assert small.first.unresolved_references == Counter()
    assert small.first.resolved_references["bundle"] == references_to_entries(corpus.root)
    assert small.first.resolved_references["identifier-import"] == 1
    bundle = _bundle(corpus.patient_bundles[0])
    source = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    stored = to_fhir(await small.adapter.read("Observation", source["id"], ADMIN))
    patient_id = source["subject"]["reference"].removeprefix("urn:uuid:")
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    [encounter] = _ndjson(corpus.ndjson / "Encounter.000.ndjson")
    [practitioner] = _ndjson(corpus.ndjson / "Practitioner.000.ndjson")
    stored = to_fhir(await small.adapter.read("Encounter", encounter["id"], ADMIN))
    assert stored["participant"][0]["individual"]["reference"] == (
        f"Practitioner/{practitioner['id']}"
    )
    # A Bundle stored whole keeps its own internal references.
    document: BaseResource = await small.adapter.read("Bundle", "document-fixture", ADMIN)
    assert "urn:uuid:" in json.dumps(to_fhir(document))


async def test_reimport_changes_nothing(small: Imported) -> None:
    second = small.second
    assert second.failed == []
    assert (second.totals.created, second.totals.updated) == (0, 0)
    assert second.totals.total == small.first.totals.total
    assert small.versions_after_second == small.versions_after_first


async def test_a_modified_resource_gets_exactly_one_new_version(
    small: Imported, corpus: Corpus, tmp_path: Path
) -> None:
    patient = next(
        e["resource"]
        for e in _bundle(corpus.patient_bundles[-1])["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    changed = copy.deepcopy(patient)
    changed["maritalStatus"]["text"] = "Widowed (changed by the test)"
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    versions = await count_versions(small.conn)
    try:
        summary = await import_paths([path], small.adapter, ADMIN)
        assert summary.types["Patient"].updated == 1 and summary.totals.created == 0
        assert await count_versions(small.conn) == versions + 1
        history: list[HistoryEntry[BaseResource]] = await small.adapter.history(
            "Patient", patient["id"], ADMIN
        )
        assert [h.version for h in history] == [2, 1]
        assert to_fhir(history[0].resource)["maritalStatus"]["text"] == (
            "Widowed (changed by the test)"
        )
        again = await import_paths([path], small.adapter, ADMIN)
        assert again.types["Patient"].unchanged == 1
        assert await count_versions(small.conn) == versions + 1
    finally:
        # The original content back (a third version), as the other tests expect.
        path.write_text(json.dumps(patient), encoding="utf-8")
        restored = await import_paths([path], small.adapter, ADMIN)
    assert restored.types["Patient"].updated == 1


async def test_patient_bundle_holds_the_compartment_and_validates(
    small: Imported, corpus: Corpus
) -> None:
    path = corpus.patient_bundles[0]
    patient_id = synthea_ids(path, "Patient")[0]
    bundle = await export_patient_bundle(small.adapter, patient_id, ADMIN)
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["id"] == patient_id
    exported = sorted((e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"])
    # Everything of the patient's bundle except the providers, which do not refer to it.
    source = sorted(
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in _bundle(path)["entry"]
        if e["resource"]["resourceType"] not in ("Organization", "Practitioner")
    )
    assert exported == source


# --- tests that never needed the corpus ---------------------------------------------------------


async def test_a_bad_file_is_reported_by_line_and_nothing_of_it_is_written(
    database_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(observation(f"good-{tag}")) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.ndjson"
    broken.write_text(
        json.dumps(observation(f"broken-{tag}")) + '\n{"resourceType": "Observation",\n',
        encoding="utf-8",
    )
    invalid = tmp_path / "invalid.ndjson"
    no_code = {"resourceType": "Observation", "id": f"nocode-{tag}", "status": "final"}
    invalid.write_text(
        "\n".join([json.dumps(observation(f"invalid-{tag}")), "", json.dumps(no_code)]),
        encoding="utf-8",
    )
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": observation(f"bundled-{tag}"), "request": {"method": "POST"}},
                    {"resource": no_code, "request": {"method": "POST"}},
                ],
            }
        ),
        encoding="utf-8",
    )
    missing = tmp_path / "missing.json"
    adapter = await create_postgres_adapter(database_url)
    conn = await db_connect(database_url)
    try:
        summary = await import_paths([tmp_path, missing], adapter, ADMIN)
        ids = await conn.fetch(
            "SELECT id FROM hacs_core.observations WHERE id LIKE '%-' || $1", tag
        )
    finally:
        await conn.close()
        await adapter.close()

    failed = {Path(f.path).name: f for f in summary.failed}
    assert set(failed) == {"broken.ndjson", "invalid.ndjson", "bundle.json", "missing.json"}
    assert failed["missing.json"].reason == "no such file or directory"
    assert failed["broken.ndjson"].line == 2
    assert "invalid JSON" in (failed["broken.ndjson"].reason or "")
    assert failed["invalid.ndjson"].line == 3
    assert (
        failed["invalid.ndjson"]
        .describe()
        .endswith("invalid.ndjson:3: Observation resource is not valid: code: Field required")
    )
    assert failed["bundle.json"].where == "entry[1]"
    assert summary.types["Observation"].created == 1 and not summary.ok
    assert [r["id"] for r in ids] == [f"good-{tag}"]


async def test_references_resolve_from_the_database_or_stay_as_they_are(
    database_url: str, corpus: Corpus, tmp_path: Path
) -> None:
    [practitioner] = _ndjson(corpus.ndjson / "Practitioner.000.ndjson")
    npi = practitioner["identifier"][0]["value"]
    later = observation(
        "later-1",
        performer=[
            {"reference": f"Practitioner?identifier={NPI_SYSTEM}|{npi}"},
            {"reference": "Practitioner?identifier=urn:nowhere|0"},
        ],
        subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
    )
    path = tmp_path / "later.ndjson"
    path.write_text(json.dumps(later) + "\n", encoding="utf-8")
    adapter = await create_postgres_adapter(database_url)
    try:
        # The practitioner is in the database from an earlier import, not in this one.
        assert (await import_paths([corpus.ndjson / "Practitioner.000.ndjson"], adapter, ADMIN)).ok
        summary = await import_paths([path], adapter, ADMIN)
        assert summary.ok
        assert summary.resolved_references == Counter({"identifier-database": 1})
        assert summary.unresolved_references == Counter({"conditional": 1, "urn": 1})
        stored = to_fhir(await adapter.read("Observation", "later-1", ADMIN))
    finally:
        await adapter.close()
    assert [p["reference"] for p in stored["performer"]] == [
        f"Practitioner/{practitioner['id']}",
        "Practitioner?identifier=urn:nowhere|0",
    ]
    assert stored["subject"] == later["subject"]


async def test_jsonb_adapter_imports_and_exports_the_same_way(
    database_url: str, corpus: Corpus
) -> None:
    path = corpus.patient_bundles[0]
    entries = len(_bundle(path)["entry"])
    adapter = await create_postgres_adapter(database_url, kind="jsonb")
    try:
        summary = await import_paths([path], adapter, ADMIN)
        assert summary.ok and summary.totals.created == entries
        again = await import_paths([path], adapter, ADMIN)
        assert again.totals.unchanged == entries
        bundle = await export_patient_bundle(adapter, synthea_ids(path, "Patient")[0], ADMIN)
        Bundle.model_validate(bundle)
        assert len(bundle["entry"]) == entries - 2  # all but the Organization and Practitioner
    finally:
        await adapter.close()


def test_cli_import_reports_bad_files_and_exports(
    database_url: str, corpus: Corpus, tmp_path: Path
) -> None:
    from hacs_cli.main import app

    source = corpus.patient_bundles[0]
    observations = len(synthea_ids(source, "Observation"))
    data = tmp_path / "data"
    data.mkdir()
    (data / source.name).write_bytes(source.read_bytes())
    (data / "bad.ndjson").write_text(json.dumps(observation("x-1")) + "\n{oops\n")
    url = ["--database-url", database_url]
    result = runner.invoke(app, [*url, "import", str(data)])
    assert result.exit_code == 1, result.stdout + result.stderr
    assert re.search(rf"Observation\s+{observations}\s", result.stdout), result.stdout
    assert "bad.ndjson:2: invalid JSON" in result.stdout
    assert "1 of 2 files failed" in result.stderr

    (data / "bad.ndjson").unlink()
    result = runner.invoke(app, [*url, "import", str(data)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout

    out = tmp_path / "observations.ndjson"
    result = runner.invoke(app, [*url, "export", "--type", "Observation", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert len(out.read_text().splitlines()) == observations
    patient_id = synthea_ids(source, "Patient")[0]
    result = runner.invoke(app, [*url, "export", "--patient", patient_id])
    assert result.exit_code == 0, result.stderr
    Bundle.model_validate(json.loads(result.stdout))

    result = runner.invoke(app, [*url, "export", "--patient", "nobody"])
    assert result.exit_code == 1 and "Patient does not exist" in result.stderr
    assert "nobody" not in result.stderr
    result = runner.invoke(app, [*url, "export"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["import", "--help"])
    assert "admin:*" in result.stdout
