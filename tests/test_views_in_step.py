"""The views follow every adapter write without ``hacs views sync``.

Each write stores the resource's FHIR JSON (``to_fhir``) in ``hacs_views.fhir_resources`` in the
write's own transaction (``adapters.fhir_snapshot``), so a created view read by plain SQL shows
a save, an update, a delete, a batch, an import and a purge at once, and a rolled back write
leaves no trace there either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths
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
