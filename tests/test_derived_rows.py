"""Derived rows (revision 0009): components, codings and identifiers follow every write path.

``hacs_core.observation_components``, ``hacs_core.codings`` and ``hacs_core.identifiers`` are
rebuilt by triggers on ``hacs_core.resource_versions``; these tests write through each path
(save, update, delete, restore, save_many's COPY and batch update, import, purge, plain SQL)
and read the rows back with SQL.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from hacs_models import Coding, Identifier, Observation, Patient, Reference
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths
from hacs_persistence.migrations import downgrade, upgrade
from tests.conftest import db_connect
from tests.factories import ADMIN, LOINC, make_observation, make_patient
from tests.shared_data import FHIR_DATA, require_fhir_data

SNOMED = "http://snomed.info/sct"
MRN = "http://hospital.example.org/mrn"


def _component(code: str, value: float, display: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "value_quantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org"},
    }


def _panel(patient: Patient, systolic: float = 120, diastolic: float = 80) -> Observation:
    obs = make_observation(patient.id)
    obs.code.coding = [Coding(system=LOINC, code="85354-9", display="Blood pressure panel")]
    obs.value_quantity = None
    obs.component = [
        _component("8480-6", systolic, "Systolic"),
        _component("8462-4", diastolic, "Diastolic"),
    ]
    return obs


async def _components(db: asyncpg.Connection, obs_id: str) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT position, patient_id, code_system, code, display, value_numeric, value_unit,"
        " effective_at FROM hacs_core.observation_components WHERE observation_id = $1"
        " ORDER BY position",
        obs_id,
    )
    return [tuple(r) for r in rows]


async def _codings(db: asyncpg.Connection, rt: str, rid: str) -> set[tuple[str, int, str, str]]:
    rows = await db.fetch(
        "SELECT element, position, system, code FROM hacs_core.codings"
        " WHERE resource_type = $1 AND resource_id = $2",
        rt,
        rid,
    )
    return {(r[0], r[1], r[2], r[3]) for r in rows}


async def _identifiers(db: asyncpg.Connection, rid: str) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT position, system, value, use, type_code FROM hacs_core.identifiers"
        " WHERE resource_type = 'Patient' AND resource_id = $1 ORDER BY position",
        rid,
    )
    return [tuple(r) for r in rows]


async def _derived_count(db: asyncpg.Connection, rid: str) -> int:
    return int(
        await db.fetchval(
            "SELECT (SELECT count(*) FROM hacs_core.observation_components"
            "        WHERE observation_id = $1)"
            " + (SELECT count(*) FROM hacs_core.codings WHERE resource_id = $1)"
            " + (SELECT count(*) FROM hacs_core.identifiers WHERE resource_id = $1)",
            rid,
        )
    )


async def test_save_update_delete_restore_keep_the_rows_in_step(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patient = make_patient()
    patient.identifier = [
        Identifier.model_validate(
            {
                "system": MRN,
                "value": "MRN-1",
                "use": "usual",
                "type": {"coding": [{"system": "http://hl7.org/v2-0203", "code": "MR"}]},
            }
        )
    ]
    await adapter.save(patient, ADMIN)
    panel = _panel(patient)
    await adapter.save(panel, ADMIN)

    rows = await _components(db, panel.id)
    assert [(r[0], r[1], r[2], r[3], r[4], float(r[5]), r[6]) for r in rows] == [
        (0, patient.id, LOINC, "8480-6", "Systolic", 120.0, "mm[Hg]"),
        (1, patient.id, LOINC, "8462-4", "Diastolic", 80.0, "mm[Hg]"),
    ]
    assert {r[7] for r in rows} == {panel.effective_date_time}
    assert await _codings(db, "Observation", panel.id) == {
        ("code", 0, LOINC, "85354-9"),
        (
            "category[0]",
            0,
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "vital-signs",
        ),
        ("component[0].code", 0, LOINC, "8480-6"),
        ("component[1].code", 0, LOINC, "8462-4"),
    }
    assert await _identifiers(db, patient.id) == [(0, MRN, "MRN-1", "usual", "MR")]

    # Update: a component removed, a SNOMED coding added to the code.
    panel.component = panel.component[:1]
    panel.code.coding = [*panel.code.coding, Coding(system=SNOMED, code="75367002")]
    await adapter.update(panel, ADMIN)
    assert [r[3] for r in await _components(db, panel.id)] == ["8480-6"]
    codings = await _codings(db, "Observation", panel.id)
    assert ("code", 1, SNOMED, "75367002") in codings
    assert ("component[1].code", 0, LOINC, "8462-4") not in codings

    # Delete: the tombstone is the current version, so nothing is left.
    version = await adapter.delete(Observation, panel.id, ADMIN)
    assert await _derived_count(db, panel.id) == 0

    # Restore (an update of the deleted resource at its version): the rows come back.
    await adapter.update(panel, ADMIN, expected_version=version)
    assert [r[3] for r in await _components(db, panel.id)] == ["8480-6"]
    assert ("code", 1, SNOMED, "75367002") in await _codings(db, "Observation", panel.id)


async def test_the_typed_patient_and_code_equal_the_derived_rows(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # The derived rows agree with the typed columns' own derivation (subject -> patient_id,
    # first coding -> code) for the Observation and its identifier-bearing Patient.
    patient = make_patient()
    panel = _panel(patient)
    panel.subject = Reference(
        reference=f"https://fhir.example.org/r4/Patient/{patient.id}/_history/3"
    )
    await granular.save_many([patient, panel], ADMIN)
    typed = await db.fetchrow(
        "SELECT patient_id, code_system, code FROM hacs_core.observations WHERE id = $1", panel.id
    )
    assert typed["patient_id"] == patient.id
    derived = await db.fetch(
        "SELECT DISTINCT patient_id FROM hacs_core.observation_components"
        " WHERE observation_id = $1",
        panel.id,
    )
    assert [r["patient_id"] for r in derived] == [patient.id]
    assert (typed["code_system"], typed["code"]) == tuple(
        await db.fetchrow(
            "SELECT system, code FROM hacs_core.codings WHERE resource_type = 'Observation'"
            " AND resource_id = $1 AND element = 'code' AND position = 0",
            panel.id,
        )
    )


async def test_save_many_copy_and_batch_update(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patients = [make_patient() for _ in range(3)]
    panels = [_panel(p, systolic=110 + i) for i, p in enumerate(patients)]
    await adapter.save_many([*patients, *panels], ADMIN)  # COPY
    count = await db.fetchval(
        "SELECT count(*) FROM hacs_core.observation_components"
        " WHERE observation_id = ANY($1::text[])",
        [p.id for p in panels],
    )
    assert count == 6
    for panel in panels:
        panel.component = [_component("8480-6", 150, "Systolic")]
    await adapter.save_many(panels, ADMIN)  # the set-based batch update
    rows = await db.fetch(
        "SELECT code, value_numeric FROM hacs_core.observation_components"
        " WHERE observation_id = ANY($1::text[])",
        [p.id for p in panels],
    )
    assert sorted((r["code"], float(r["value_numeric"])) for r in rows) == [("8480-6", 150.0)] * 3


async def test_purge_removes_the_derived_rows(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    gone, kept = make_patient(), make_patient()
    gone.identifier = [Identifier(system=MRN, value="GONE-1")]
    kept.identifier = [Identifier(system=MRN, value="KEPT-1")]
    gone_panel, kept_panel = _panel(gone), _panel(kept)
    await granular.save_many([gone, kept, gone_panel, kept_panel], ADMIN)
    await granular.purge_patient(gone.id, ADMIN)
    assert await _derived_count(db, gone.id) == 0
    assert await _derived_count(db, gone_panel.id) == 0
    assert await _identifiers(db, kept.id) == [(0, MRN, "KEPT-1", None, None)]
    assert len(await _components(db, kept_panel.id)) == 2


async def test_a_plain_sql_write_by_the_owner_is_followed(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patient = make_patient()
    panel = _panel(patient)
    await granular.save_many([patient, panel], ADMIN)
    document = json.loads(
        await db.fetchval(
            "SELECT document::text FROM hacs_core.resource_versions WHERE id = $1", panel.id
        )
    )
    document["component"][0]["value_quantity"]["value"] = 99.5
    await db.execute(
        "INSERT INTO hacs_core.resource_versions (resource_type, id, version, operation, document)"
        " VALUES ('Observation', $1, 2, 'update', $2::jsonb)",
        panel.id,
        json.dumps(document),
    )
    value = await db.fetchval(
        "SELECT value_numeric FROM hacs_core.observation_components"
        " WHERE observation_id = $1 AND position = 0",
        panel.id,
    )
    assert float(value) == 99.5
    # A tombstone written by hand: the rows go (the versions table takes no DELETE or UPDATE,
    # not even from its owner; a purge is the one way a version goes).
    await db.execute(
        "INSERT INTO hacs_core.resource_versions (resource_type, id, version, operation, document)"
        " VALUES ('Observation', $1, 3, 'delete', $2::jsonb)",
        panel.id,
        json.dumps(document),
    )
    assert await _derived_count(db, panel.id) == 0


def _synthea_panels() -> dict[str, Counter[str]]:
    """Blood-pressure panels (55284-4) in the Synthea bundles, read from the JSON: id -> codes."""
    panels: dict[str, Counter[str]] = {}
    for path in sorted((FHIR_DATA / "synthea").glob("*.json")):
        bundle = json.loads(Path(path).read_text())
        for entry in bundle.get("entry", ()):
            res = entry.get("resource", {})
            codes = [c.get("code") for c in res.get("code", {}).get("coding", ())]
            if res.get("resourceType") == "Observation" and "55284-4" in codes:
                panels[res["id"]] = Counter(
                    c.get("code")
                    for comp in res.get("component", ())
                    for c in comp.get("code", {}).get("coding", ())
                )
    return panels


async def test_every_synthea_blood_pressure_panel_has_its_components(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    require_fhir_data()
    expected = _synthea_panels()
    assert len(expected) == 383
    assert all(c["8480-6"] == 1 and c["8462-4"] == 1 for c in expected.values())
    summary = await import_paths([FHIR_DATA / "synthea"], granular, ADMIN)
    assert not [f for f in summary.files if f.status == "failed"]
    rows = await db.fetch(
        "SELECT observation_id, code FROM hacs_core.observation_components"
        " WHERE observation_id = ANY($1::text[]) AND value_numeric IS NOT NULL",
        list(expected),
    )
    found: dict[str, Counter[str]] = {}
    for row in rows:
        found.setdefault(row["observation_id"], Counter())[row["code"]] += 1
    assert found == expected
    patients = await db.fetchval(
        "SELECT count(DISTINCT c.patient_id) FROM hacs_core.observation_components c"
        " JOIN hacs_core.patients p ON p.id = c.patient_id WHERE c.code = '8480-6'"
    )
    assert patients == await db.fetchval(
        "SELECT count(DISTINCT patient_id) FROM hacs_core.observations WHERE code = '55284-4'"
    )


DERIVED = ("observation_components", "codings", "identifiers")


async def test_downgrade_drops_the_tables_and_upgrade_back_fills_them(database_url: str) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        patient = make_patient()
        patient.identifier = [Identifier(system=MRN, value="BF-1")]
        live, gone = _panel(patient), _panel(patient, systolic=140)
        await adapter.save_many([patient, live, gone], ADMIN)
        await adapter.delete(Observation, gone.id, ADMIN)
    finally:
        await adapter.close()

    await downgrade("0008", database_url)
    conn = await db_connect(database_url)
    try:
        left = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'hacs_core'::regnamespace"
            " AND relname = ANY($1::text[])",
            list(DERIVED),
        )
        triggers = await conn.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'derived_rows_%'"
        )
        functions = await conn.fetchval(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'hacs_core'::regnamespace"
            " AND proname LIKE '%derived%'"
        )
    finally:
        await conn.close()
    assert (left, triggers, functions) == ([], 0, 0)

    await upgrade(database_url)
    conn = await db_connect(database_url)
    try:
        assert [r[3] for r in await _components(conn, live.id)] == ["8480-6", "8462-4"]
        assert await _derived_count(conn, gone.id) == 0  # deleted before the upgrade
        assert await _identifiers(conn, patient.id) == [(0, MRN, "BF-1", None, None)]
        assert ("code", 0, LOINC, "85354-9") in await _codings(conn, "Observation", live.id)
    finally:
        await conn.close()
