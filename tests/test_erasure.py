"""Erasure of a patient's compartment and audit retention, both audited.

A purge is proved by scanning every row of every hacs table (cast to text) for the patient's id
and the ids of everything that was in their compartment: nothing may be left but audit rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_models import (
    Actor,
    BaseResource,
    Encounter,
    Observation,
    Patient,
    Practitioner,
    Reference,
)
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceNotFoundError
from hacs_persistence.interchange import import_paths
from hacs_persistence.migrations import downgrade, upgrade
from tests.factories import ADMIN, make_observation, make_patient

CLINICIAN = Actor(name="doc", role="physician", permissions=["*:read", "*:write", "*:delete"])


@pytest.fixture
def adapter(granular: PostgreSQLAdapter) -> PostgreSQLAdapter:
    """Every test here is about the typed-table adapter (tests/conftest.py opens it)."""
    return granular


async def test_purge_removes_the_compartment_and_every_version(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    gone, kept = make_patient(), make_patient()
    gone_obs = [make_observation(gone.id, value=v) for v in (110, 120)]
    kept_obs = make_observation(kept.id)
    claim = BaseResource.model_validate(
        {"resource_type": "Claim", "id": "claim-9", "patient": {"reference": f"Patient/{gone.id}"}}
    )
    await adapter.save_many([gone, kept, *gone_obs, kept_obs, claim], ADMIN)
    gone.gender = "other"
    await adapter.save(gone, ADMIN)  # a second version that must go too
    report = await adapter.purge_patient(gone.id, ADMIN)
    assert report.resources == {"Observation": 2, "Claim": 1, "Patient": 1}
    assert report.versions == 5
    with pytest.raises(ResourceNotFoundError):
        await adapter.read(Patient, gone.id, ADMIN)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_core.resource_versions WHERE id = ANY($1::text[])",
            [gone.id, "claim-9", *(o.id for o in gone_obs)],
        )
        == 0
    )
    assert (await adapter.read(Observation, kept_obs.id, ADMIN)).id == kept_obs.id
    rows = await db.fetch(
        "SELECT outcome, result_count, detail FROM hacs_audit.audit_events WHERE action = 'purge'"
    )
    assert [(r["outcome"], r["result_count"]) for r in rows] == [("success", 4)]
    assert "Fernandez" not in str(rows)


async def test_purge_needs_admin(adapter: PostgreSQLAdapter, db: asyncpg.Connection) -> None:
    patient = await adapter.save(make_patient(), ADMIN)
    with pytest.raises(PermissionDeniedError, match="admin"):
        await adapter.purge_patient(patient.id, CLINICIAN)
    assert (await adapter.read(Patient, patient.id, ADMIN)).id == patient.id
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'purge' "
            "AND outcome = 'denied'"
        )
        == 1
    )


async def test_audit_retention_removes_only_old_rows_and_is_audited(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # Old rows: the server stamps every row with its own clock, so only a superuser with
    # triggers off (as a restore would) can write one in the past.
    await db.execute("SET session_replication_role = replica")
    await db.execute(
        "INSERT INTO hacs_audit.audit_events (occurred_at, action, outcome) "
        "SELECT now() - interval '400 days', 'read', 'success' FROM generate_series(1, 5)"
    )
    await db.execute("RESET session_replication_role")
    await adapter.save(make_patient(), ADMIN)  # a recent row
    with pytest.raises(PermissionDeniedError):
        await adapter.apply_audit_retention(timedelta(days=365), CLINICIAN)
    removed = await adapter.apply_audit_retention(timedelta(days=365), ADMIN)
    assert removed == 5
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events "
            "WHERE occurred_at < now() - interval '1 day'"
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'create'")
        == 1
    )
    assert (
        await db.fetchval(
            "SELECT result_count FROM hacs_audit.audit_events WHERE action = 'audit_retention' "
            "AND outcome = 'success'"
        )
        == 5
    )
    # Outside the retention function, old rows are still untouchable.
    await db.execute("SET session_replication_role = replica")
    await db.execute(
        "INSERT INTO hacs_audit.audit_events (occurred_at, action, outcome) "
        "VALUES (now() - interval '900 days', 'read', 'success')"
    )
    await db.execute("RESET session_replication_role")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute(
            "DELETE FROM hacs_audit.audit_events WHERE occurred_at < now() - interval '800 days'"
        )
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await db.execute("SELECT hacs_audit.apply_retention(interval '1 hour', 'x')")


# -- what a purge leaves behind: nothing ----------------------------------------------------------

# Where hacs keeps data; the audit trail (hacs_audit) keeps ids by design and is not scanned.
DATA_SCHEMAS = ("hacs_core", "hacs_clinical", "hacs_registry", "hacs_agents", "hacs_admin")


async def rows_mentioning(db: asyncpg.Connection, needles: Iterable[str]) -> dict[str, list[str]]:
    """needle -> the tables (every table of the data schemas, public.hacs_*) with a row holding it.

    Every row is cast to text, so a typed column, a JSONB document, a version or a nested
    Bundle entry all count.
    """
    tables = [
        r["name"]
        for r in await db.fetch(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND (n.nspname = ANY($1::text[]) "
            "OR (n.nspname = 'public' AND c.relname LIKE 'hacs\\_%')) ORDER BY 1",
            list(DATA_SCHEMAS),
        )
    ]
    assert "hacs_core.resource_versions" in tables and "public.hacs_resources" in tables
    assert len(tables) > 30
    found: dict[str, list[str]] = {}
    for needle in needles:
        for table in tables:
            # Identifiers come from the catalog (format %I); the needle is a bound parameter.
            hit = await db.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {table} t WHERE t::text LIKE '%' || $1 || '%')",
                needle,
            )
            if hit:
                found.setdefault(needle, []).append(table)
    return found


def _fhir_document(patient_id: str, observation_id: str) -> dict[str, Any]:
    """A FHIR document Bundle holding the patient and one of their observations (urn:uuid refs)."""
    patient_url, observation_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    return {
        "resourceType": "Bundle",
        "id": f"doc-{uuid.uuid4().hex[:8]}",
        "type": "document",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Composition",
                    "status": "final",
                    "subject": {"reference": patient_url},
                    "section": [{"entry": [{"reference": observation_url}]}],
                },
            },
            {
                "fullUrl": patient_url,
                "resource": {"resourceType": "Patient", "id": patient_id, "gender": "male"},
            },
            {
                "fullUrl": observation_url,
                "resource": {
                    "resourceType": "Observation",
                    "id": observation_id,
                    "status": "final",
                    "code": {"text": "Heart rate"},
                    "subject": {"reference": patient_url},
                },
            },
        ],
    }


def _jsonb(resource_type: str, **fields: Any) -> BaseResource:
    return BaseResource.model_validate(
        {"resource_type": resource_type, "id": f"{resource_type.lower()}-{uuid.uuid4().hex[:8]}"}
        | fields
    )


async def test_purge_removes_old_versions_of_a_resource_moved_to_another_patient(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    """(a) Saved for the patient, then reassigned: version 1 still named them."""
    gone, kept = make_patient(), make_patient()
    moved = make_observation(gone.id)
    await adapter.save_many([gone, kept, moved], ADMIN)
    moved.subject = Reference(reference=f"Patient/{kept.id}")
    await adapter.save(moved, ADMIN)
    moved.status = "amended"
    await adapter.save(moved, ADMIN)

    report = await adapter.purge_patient(gone.id, ADMIN)

    versions = await db.fetch(
        "SELECT version FROM hacs_core.resource_versions WHERE id = $1 ORDER BY version", moved.id
    )
    assert [v["version"] for v in versions] == [2, 3]
    assert await rows_mentioning(db, [gone.id]) == {}
    # The resource itself is the other patient's now: kept, at its current version.
    assert (await adapter.read(Observation, moved.id, ADMIN)).status == "amended"
    assert report.resources == {"Patient": 1}
    assert (report.versions, report.foreign_versions) == (1, 1)


async def test_purge_removes_resources_imported_before_the_patient(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    """(b) ``dangling='null'``: the foreign key stayed NULL, the document names the patient."""
    gone = make_patient()
    early = make_observation(gone.id, value=99)
    batch = await adapter.save_many([early], ADMIN, dangling="null")
    assert batch.dangling_references == {f"patients:{gone.id}": 1}
    await adapter.save(gone, ADMIN)
    assert await db.fetchval(
        "SELECT patient_id IS NULL FROM hacs_core.observations WHERE id = $1", early.id
    )

    report = await adapter.purge_patient(gone.id, ADMIN)

    assert await rows_mentioning(db, [gone.id, early.id]) == {}
    assert report.resources == {"Patient": 1, "Observation": 1}


async def test_purge_removes_jsonb_documents_that_name_the_patient_anywhere(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    """(c) A reference inside a list, nested deeper, absolute or with a version."""
    gone, kept = make_patient(), make_patient()
    named = [
        _jsonb("Consent", status="active", performer=[{"reference": f"Patient/{gone.id}"}]),
        _jsonb(
            "CommunicationRequest",
            status="active",
            payload=[{"content_reference": {"reference": f"Patient/{gone.id}/_history/1"}}],
        ),
        _jsonb("Flag", author={"reference": f"https://ehr.example.org/fhir/Patient/{gone.id}"}),
        _jsonb(
            "Group",
            type="person",
            member=[
                {"entity": {"reference": f"Patient/{kept.id}"}},
                {"entity": {"reference": f"Patient/{gone.id}"}},
            ],
        ),
    ]
    # Not references to the patient: another patient, text, a longer id, another type.
    unrelated = [
        _jsonb("Consent", status="active", performer=[{"reference": f"Patient/{kept.id}"}]),
        _jsonb("Flag", author={"reference": f"Patient/{gone.id}0"}),
        _jsonb("Flag", author={"reference": f"Practitioner/{gone.id}"}),
        _jsonb("Basic", note=[{"text": f"see Patient/{gone.id} x"}]),
    ]
    await adapter.save_many([gone, kept, *named, *unrelated], ADMIN)

    report = await adapter.purge_patient(gone.id, ADMIN)

    assert await rows_mentioning(db, [r.id for r in named]) == {}
    remaining = await db.fetch("SELECT id FROM public.hacs_resources")
    assert sorted(r["id"] for r in remaining) == sorted(r.id for r in unrelated)
    assert report.resources == {
        "Patient": 1,
        "Consent": 1,
        "CommunicationRequest": 1,
        "Flag": 1,
        "Group": 1,
    }


async def test_purge_removes_document_bundles_holding_the_patients_resources(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """(d) A FHIR document stored whole: its entries refer to each other by urn:uuid only."""
    gone, kept = make_patient(), make_patient()
    obs = make_observation(gone.id)
    await adapter.save_many([gone, kept, obs], ADMIN)
    holding_patient = _fhir_document(gone.id, f"other-{uuid.uuid4().hex[:8]}")
    holding_observation = _fhir_document(f"copy-{uuid.uuid4().hex[:8]}", obs.id)
    other = _fhir_document(kept.id, f"other-{uuid.uuid4().hex[:8]}")
    for bundle in (holding_patient, holding_observation, other):
        (tmp_path / f"{bundle['id']}.json").write_text(json.dumps(bundle), encoding="utf-8")
    summary = await import_paths([tmp_path], adapter, ADMIN)
    assert summary.types["Bundle"].created == 3

    report = await adapter.purge_patient(gone.id, ADMIN)

    assert await rows_mentioning(db, [gone.id, obs.id]) == {}
    remaining = await db.fetch(
        "SELECT id FROM public.hacs_resources WHERE resource_type = 'Bundle'"
    )
    assert [r["id"] for r in remaining] == [other["id"]]
    assert report.resources == {"Patient": 1, "Observation": 1, "Bundle": 2}


async def test_purge_keeps_other_patients_rows_that_point_into_the_compartment(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    """Transitive: the encounter's foreign key must not stop the erasure, nor delete B's data."""
    gone, kept = make_patient(), make_patient()
    visit = Encounter(
        status="finished", subject=f"Patient/{gone.id}", encounter_class={"code": "AMB"}
    )
    # Another patient's observation filed under the erased patient's encounter (bad data), and
    # a patient whose record links to the erased one.
    misfiled = make_observation(kept.id, encounter=f"Encounter/{visit.id}")
    relative = make_patient(
        link=[{"other": {"reference": f"Patient/{gone.id}"}, "type": "seealso"}]
    )
    # JSONB documents: one the other patient's (top-level `patient`), one nobody's.
    claim = _jsonb(
        "Claim",
        patient={"reference": f"Patient/{kept.id}"},
        item=[{"encounter": [{"reference": f"Encounter/{visit.id}"}]}],
    )
    note = _jsonb("Basic", subject={"reference": f"Encounter/{visit.id}"})
    await adapter.save_many([gone, kept, relative, visit, misfiled, claim, note], ADMIN)

    report = await adapter.purge_patient(gone.id, ADMIN)

    row = await db.fetchrow(
        "SELECT patient_id, encounter_id FROM hacs_core.observations WHERE id = $1", misfiled.id
    )
    assert (row["patient_id"], row["encounter_id"]) == (kept.id, None)
    assert (await adapter.read(Patient, relative.id, ADMIN)).id == relative.id
    assert (await adapter.read("Claim", claim.id, ADMIN)).id == claim.id
    assert report.resources == {"Patient": 1, "Encounter": 1, "Basic": 1}
    assert report.kept_references == sorted(
        [f"Observation/{misfiled.id}", f"Patient/{relative.id}", f"Claim/{claim.id}"]
    )


async def test_purge_leaves_no_row_that_names_the_patient_or_their_resources(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """All of the above at once, plus what references the patient's resources (transitively)."""
    gone, kept = make_patient(), make_patient()
    clinic = Practitioner(full_name="Dr Who")
    visit = Encounter(
        status="finished",
        subject=f"Patient/{gone.id}",
        encounter_class={"code": "AMB"},
        participant=[{"individual": {"reference": f"Practitioner/{clinic.id}"}}],
    )
    early = make_observation(gone.id, value=99)
    await adapter.save_many([early], ADMIN, dangling="null")
    during_visit = make_observation(gone.id, encounter=f"Encounter/{visit.id}")
    # No subject: only the encounter says whose it is.
    visit_only = make_observation(gone.id, value=77).model_copy(
        update={"subject": None, "encounter": Reference(reference=f"Encounter/{visit.id}")}
    )
    moved = make_observation(gone.id, value=130)
    kept_obs = make_observation(kept.id, value=140)
    consent = _jsonb("Consent", status="active", performer=[{"reference": f"Patient/{gone.id}"}])
    provenance = _jsonb("Provenance", target=[{"reference": f"Observation/{during_visit.id}"}])
    unrelated = _jsonb("Consent", status="active", performer=[{"reference": f"Patient/{kept.id}"}])
    await adapter.save_many(
        [gone, kept, clinic, visit, during_visit, visit_only, moved, kept_obs],
        ADMIN,
    )
    for document in (consent, provenance, unrelated):
        await adapter.save(document, ADMIN)
    moved.subject = Reference(reference=f"Patient/{kept.id}")
    moved = await adapter.save(moved, ADMIN)
    gone.gender = "other"
    await adapter.save(gone, ADMIN)
    bundle = _fhir_document(gone.id, during_visit.id)
    (tmp_path / "document.json").write_text(json.dumps(bundle), encoding="utf-8")
    await import_paths([tmp_path], adapter, ADMIN)

    compartment = [
        gone.id,
        visit.id,
        early.id,
        during_visit.id,
        visit_only.id,
        consent.id,
        provenance.id,
        bundle["id"],
    ]
    before = await rows_mentioning(db, compartment)
    assert set(before) == set(compartment)  # the scan sees every one of them beforehand

    report = await adapter.purge_patient(gone.id, ADMIN)

    assert await rows_mentioning(db, compartment) == {}
    # What was not theirs is still there, whole: the moved observation keeps its current version.
    assert (await adapter.read(Observation, moved.id, ADMIN)).version == 2
    assert [h.version for h in await adapter.history(Observation, moved.id, ADMIN)] == [2]
    for model, kept_id in (
        (Patient, kept.id),
        (Observation, kept_obs.id),
        (Practitioner, clinic.id),
        ("Consent", unrelated.id),
    ):
        assert (await adapter.read(model, kept_id, ADMIN)).id == kept_id
    assert report.resources == {
        "Patient": 1,
        "Encounter": 1,
        "Observation": 3,
        "Consent": 1,
        "Provenance": 1,
        "Bundle": 1,
    }
    assert (report.versions, report.foreign_versions, report.kept_references) == (9, 1, [])
    # The audit trail keeps the ids (never content), by design.
    assert await db.fetchval(
        "SELECT count(*) FROM hacs_audit.audit_events WHERE resource_id = $1", gone.id
    )


async def test_purge_with_the_jsonb_adapter_removes_the_patient_document(
    database_url: str, db: asyncpg.Connection
) -> None:
    adapter = await create_postgres_adapter(database_url, kind="jsonb")
    try:
        gone, kept = make_patient(), make_patient()
        obs = make_observation(gone.id)
        await adapter.save_many([gone, kept, obs, make_observation(kept.id)], ADMIN)
        report = await adapter.purge_patient(gone.id, ADMIN)
        assert report.resources == {"Patient": 1, "Observation": 1}
        assert await rows_mentioning(db, [gone.id, obs.id]) == {}
        assert await db.fetchval("SELECT count(*) FROM public.hacs_resources") == 2
    finally:
        await adapter.close()


async def test_purge_function_is_owned_hardened_and_not_public(
    database_url: str, db: asyncpg.Connection
) -> None:
    row = await db.fetchrow(
        "SELECT p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner, "
        "has_function_privilege('public', p.oid, 'EXECUTE') AS public_may, "
        "pg_get_function_result(p.oid) AS result FROM pg_proc p "
        "WHERE p.oid = 'hacs_admin.purge_patient(text, jsonb)'::regprocedure"
    )
    assert row["prosecdef"] is True
    assert row["proconfig"] == ["search_path=pg_catalog, pg_temp"]
    assert row["owner"] == await db.fetchval("SELECT current_user")
    assert row["public_may"] is False
    assert row["result"] == "jsonb"
    keys = await db.fetch(
        "SELECT r, hacs_admin.reference_key(r) AS k FROM unnest($1::text[]) AS r",
        [
            "Patient/p-1.2",
            "https://ehr.example.org/fhir/Patient/p-1/_history/3",
            "urn:uuid:6f1c2f0e-1b7a-4f7e-9a57-3f1b3b2a8c11",
            "see Patient/p-1 now",
            "Patient/",
            "patient/p-1",
            "http://loinc.org",
            "#contained",
            "Patient?identifier=urn:mrn|1",
        ],
    )
    assert [r["k"] for r in keys] == [
        ["Patient", "p-1.2"],
        ["Patient", "p-1"],
        [None, "6f1c2f0e-1b7a-4f7e-9a57-3f1b3b2a8c11"],
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    # The audit trail's guard lets rows go only under retention's grant: purge never deletes
    # audit rows (revision 0006 replaced 0003's session setting with the grant).
    guard = await db.fetchval(
        "SELECT prosrc FROM pg_proc WHERE oid = 'hacs_audit.reject_audit_change()'::regprocedure"
    )
    assert "'audit_retention'" in guard and "'purge'" not in guard
    assert "hacs.audit_retention_cutoff" not in guard
    assert not await db.fetchval(
        "SELECT has_function_privilege('public', 'hacs_admin.reference_key(text)', 'EXECUTE')"
    )
    await downgrade("0003", database_url)
    assert (
        await db.fetchval("SELECT to_regprocedure('hacs_admin.purge_patient(text, jsonb)')") is None
    )
    assert await db.fetchval("SELECT to_regprocedure('hacs_admin.reference_key(text)')") is None
    await upgrade(database_url)
    assert await db.fetchval(
        "SELECT to_regprocedure('hacs_admin.purge_patient(text, jsonb)') IS NOT NULL"
    )


async def test_every_purge_leaves_one_audit_row_however_it_is_called(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    """Called through the adapter or straight in SQL, the function writes the purge's row."""
    through_adapter, in_sql = make_patient(), make_patient()
    await adapter.save_many([through_adapter, in_sql, make_observation(in_sql.id)], ADMIN)
    await adapter.purge_patient(through_adapter.id, ADMIN)
    await db.fetchval("SELECT hacs_admin.purge_patient($1)", in_sql.id)
    rows = await db.fetch(
        "SELECT resource_id, actor_id, outcome, result_count, detail FROM "
        "hacs_audit.audit_events WHERE action = 'purge' AND resource_id = ANY($1::text[]) "
        "ORDER BY id",
        [through_adapter.id, in_sql.id],
    )
    assert [(r["resource_id"], r["actor_id"], r["outcome"]) for r in rows] == [
        (through_adapter.id, ADMIN.id, "success"),
        (in_sql.id, None, "success"),
    ]
    assert rows[1]["result_count"] == 2
    assert all("database role " in r["detail"] for r in rows)
