"""Erasure of a patient's compartment and audit retention, both audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from hacs_models import Actor, BaseResource, Observation, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceNotFoundError
from tests.test_adapter import make_observation, make_patient

ADMIN = Actor(name="admin", role="admin", permissions=["admin:*"])
CLINICIAN = Actor(name="doc", role="physician", permissions=["*:read", "*:write", "*:delete"])


@pytest.fixture
async def adapter(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    created = await create_postgres_adapter(database_url)
    try:
        yield created
    finally:
        await created.close()


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
    await db.execute(
        "INSERT INTO hacs_audit.audit_events (occurred_at, action, outcome) "
        "SELECT now() - interval '400 days', 'read', 'success' FROM generate_series(1, 5)"
    )
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
    await db.execute(
        "INSERT INTO hacs_audit.audit_events (occurred_at, action, outcome) "
        "VALUES (now() - interval '900 days', 'read', 'success')"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute(
            "DELETE FROM hacs_audit.audit_events WHERE occurred_at < now() - interval '800 days'"
        )
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await db.execute("SELECT hacs_audit.apply_retention(interval '1 hour', 'x')")
