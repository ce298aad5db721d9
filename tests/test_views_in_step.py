"""The views follow every adapter write without ``hacs views sync``.

Each write stores the resource's FHIR JSON (``to_fhir``) in ``hacs_views.fhir_resources`` in the
write's own transaction (``adapters.fhir_snapshot``), so a created view read by plain SQL shows
a save, an update, a delete, a batch, an import and a purge at once, and a rolled back write
leaves no trace there either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, bindparam, select, text

from hacs_models import Actor, BaseResource
from hacs_models.fhir import dumps, to_fhir
from hacs_models.fhir._keys import format_datetime
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths
from hacs_persistence.storage.statements import fhir_instant
from hacs_persistence.views import create_view
from tests.conftest import db_connect
from tests.factories import make_observation, make_patient
from tests.test_views import SYSTOLIC

ADMIN = Actor(name="views-in-step", role="admin", permissions=["admin:*"])


class Rollback(Exception):
    """Raised inside a transaction to roll it back."""


@pytest.fixture
async def adapter(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    adapter = await create_postgres_adapter(database_url)
    try:
        await create_view(adapter, SYSTOLIC, actor=ADMIN)
        yield adapter
    finally:
        await adapter.close()


async def view(database_url: str) -> dict[str, Decimal]:
    """The ``systolic`` view read with plain SQL: observation id -> value."""
    conn = await db_connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, value FROM hacs_views.systolic")
    finally:
        await conn.close()
    return {r["id"]: r["value"] for r in rows}


async def snapshot(database_url: str) -> dict[tuple[str, str], Any]:
    conn = await db_connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT resource_type, id, version, patient_id FROM hacs_views.fhir_resources"
        )
    finally:
        await conn.close()
    return {(r["resource_type"], r["id"]): (r["version"], r["patient_id"]) for r in rows}


async def test_save_update_delete_show_in_the_view_at_once(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    patient = await adapter.save(make_patient(), ADMIN)
    obs = await adapter.save(make_observation(patient.id, 118), ADMIN)
    assert await view(database_url) == {obs.id: Decimal(118)}
    assert (await snapshot(database_url))[("Observation", obs.id)] == (1, patient.id)

    obs.value_quantity.value = 141.25  # type: ignore[union-attr]
    updated = await adapter.update(obs, ADMIN)
    assert await view(database_url) == {obs.id: Decimal("141.25")}
    assert (await snapshot(database_url))[("Observation", obs.id)] == (updated.version, patient.id)

    await adapter.delete("Observation", obs.id, ADMIN)
    assert await view(database_url) == {}
    assert ("Observation", obs.id) not in await snapshot(database_url)


async def test_save_many_shows_in_the_view_and_updates_replace_rows(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    patient = make_patient()
    first, second = make_observation(patient.id, 120), make_observation(patient.id, 125)
    await adapter.save_many([first, second, patient], ADMIN)
    assert await view(database_url) == {first.id: Decimal(120), second.id: Decimal(125)}
    first.value_quantity.value = 99  # type: ignore[union-attr]
    await adapter.save_many([first], ADMIN)
    assert await view(database_url) == {first.id: Decimal(99), second.id: Decimal(125)}


async def test_a_rolled_back_write_leaves_the_view_unchanged(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    patient = await adapter.save(make_patient(), ADMIN)
    with pytest.raises(Rollback):
        async with adapter.transaction():
            await adapter.save(make_observation(patient.id, 130), ADMIN)
            raise Rollback
    assert await view(database_url) == {}
    assert set(await snapshot(database_url)) == {("Patient", patient.id)}


async def test_purge_removes_the_patients_rows(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    kept = await adapter.save(make_patient(full_name="Kept Patient"), ADMIN)
    kept_obs = await adapter.save(make_observation(kept.id, 110), ADMIN)
    erased = await adapter.save(make_patient(), ADMIN)
    await adapter.save(make_observation(erased.id, 150), ADMIN)
    await adapter.purge_patient(erased.id, ADMIN)
    assert await view(database_url) == {kept_obs.id: Decimal(110)}
    assert set(await snapshot(database_url)) == {
        ("Patient", kept.id),
        ("Observation", kept_obs.id),
    }


async def test_an_import_shows_in_the_view(
    adapter: PostgreSQLAdapter, database_url: str, tmp_path: Path
) -> None:
    patient = make_patient()
    obs = make_observation(patient.id, 133)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": patient.id}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": obs.id,
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": f"Patient/{patient.id}"},
                    "valueQuantity": {"value": 133, "unit": "mmHg"},
                }
            },
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    summary = await import_paths([path], adapter, ADMIN)
    assert summary.ok
    assert await view(database_url) == {obs.id: Decimal(133)}


class Device(BaseResource):
    """A type without a typed table: its documents and FHIR JSON live in the JSONB fallback."""

    resource_type: str = "InStepDevice"
    status: str | None = None


async def stored_fhir(database_url: str, resource: BaseResource) -> Any:
    conn = await db_connect(database_url)
    try:
        text = await conn.fetchval(
            "SELECT resource::text FROM hacs_views.fhir_resources "
            "WHERE resource_type = $1 AND id = $2",
            resource.resource_type,
            resource.id,
        )
    finally:
        await conn.close()
    return json.loads(text, parse_float=Decimal)


def fhir_of(resource: BaseResource) -> Any:
    return json.loads(dumps(to_fhir(resource)), parse_float=Decimal)


async def test_a_single_write_stores_the_fhir_json_of_exactly_what_it_stored(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    # A save or update writes the FHIR JSON in its own statement, where the version and time
    # are known only to the database: the row must equal to_fhir of the stored resource.
    patient = await adapter.save(make_patient(), ADMIN)
    written = [
        patient,
        await adapter.save(make_observation(patient.id, 118.50), ADMIN),
        await adapter.save(Device(status="active"), ADMIN),
    ]
    for _ in range(3):
        for resource in written:
            stored = await adapter.read(type(resource), resource.id, ADMIN)
            assert stored == resource
            assert await stored_fhir(database_url, resource) == fhir_of(stored)
            assert fhir_of(stored)["meta"]["versionId"] == str(stored.version)
        written = [await adapter.update(resource, ADMIN) for resource in written]


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 12, 4, 18, 36, 12, tzinfo=UTC),
        datetime(2026, 12, 4, 18, 36, 12, 100000, tzinfo=UTC),
        datetime(2026, 12, 4, 18, 36, 12, 120000, tzinfo=UTC),
        datetime(2026, 12, 4, 18, 36, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 4, 18, 36, 12, 123456, tzinfo=UTC),
        datetime(2027, 1, 1, 3, 4, 5, 10, tzinfo=timezone(timedelta(hours=5))),
    ],
)
async def test_the_statement_writes_last_updated_as_to_fhir_does(
    adapter: PostgreSQLAdapter, instant: datetime
) -> None:
    expression = fhir_instant(bindparam("t", instant, type_=DateTime(timezone=True)))
    async with adapter.engine.connect() as conn:
        # Whatever the session's time zone: lastUpdated is UTC.
        await conn.execute(text("SET TIME ZONE 'America/New_York'"))
        assert await conn.scalar(select(expression)) == format_datetime(instant)


async def test_a_batch_stores_the_fhir_json_of_exactly_what_it_stored(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    # save_many writes the whole batch's FHIR JSON once its statements have stamped it.
    taken = await adapter.save(make_patient(full_name="Taken Patient"), ADMIN)
    patient = make_patient()
    colliding = make_patient(full_name="Redrawn Patient")
    colliding.__dict__["id"] = taken.id  # a generated id that happens to be taken: redrawn
    observation = make_observation(patient.id, 118.50)
    device = Device(status="active")
    batch = [patient, observation, device, colliding]
    await adapter.save_many(batch, ADMIN)
    assert colliding.id != taken.id
    for _ in range(2):
        for resource in [taken, *batch]:
            stored = await adapter.read(type(resource), resource.id, ADMIN)
            assert await stored_fhir(database_url, resource) == fhir_of(stored)
        patient.active = colliding.active = False
        observation.status = "amended"
        device.status = "inactive"
        await adapter.save_many(batch, ADMIN)  # now an update of each
