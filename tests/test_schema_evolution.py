"""Schema evolution with data: revision 0002 adds a back-filled column; nothing is ever lost."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from hacs_models import Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.engine import close_engines
from hacs_persistence.migrations import downgrade, get_migration_status, upgrade
from tests.factories import ADMIN


async def _snapshot(db: asyncpg.Connection) -> tuple[int, int, int]:
    return (
        await db.fetchval("SELECT count(*) FROM hacs_core.patients"),
        await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions"),
        await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events"),
    )


async def test_deceased_column_round_trips_through_downgrade_and_upgrade(
    database_url: str, db: asyncpg.Connection
) -> None:
    # Populate through the API, then go down and up again: the back-fill must rebuild the column
    # from the documents alone.
    async with await create_postgres_adapter(database_url) as adapter:
        with_flag = await adapter.save(Patient(full_name="A", deceased_boolean=True), ADMIN)
        with_date = await adapter.save(
            Patient(full_name="B", deceased_date_time=datetime(2020, 5, 1, tzinfo=UTC)), ADMIN
        )
        alive = await adapter.save(Patient(full_name="C", deceased_boolean=False), ADMIN)
        unknown = await adapter.save(Patient(full_name="D"), ADMIN)
        unknown.full_name = "D2"
        await adapter.save(unknown, ADMIN)
    await close_engines()
    before = await _snapshot(db)

    await upgrade(database_url)
    flags = dict(await db.fetch("SELECT id, deceased FROM hacs_core.patients"))
    assert flags == {with_flag.id: True, with_date.id: True, alive.id: False, unknown.id: None}
    assert await _snapshot(db) == before
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients_current WHERE deceased") == 2

    await downgrade("0001", database_url)
    assert await _snapshot(db) == before
    assert (
        await db.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'hacs_core' "
            "AND table_name = 'patients' AND column_name = 'deceased'"
        )
        == 0
    )

    await upgrade(database_url)
    assert (await get_migration_status(database_url))["migration_complete"] is True
    assert dict(await db.fetch("SELECT id, deceased FROM hacs_core.patients")) == flags
    assert await _snapshot(db) == before
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients_current WHERE deceased") == 2
    # Documents written before the change still load, history included.
    async with await create_postgres_adapter(database_url) as adapter:
        for saved in (with_flag, with_date, alive, unknown):
            assert (await adapter.read(Patient, saved.id, ADMIN)) == saved
        assert len(await adapter.history(Patient, unknown.id, ADMIN)) == 2
        # New writes fill the column through the mapping.
        later = await adapter.save(Patient(full_name="E", deceased_boolean=True), ADMIN)
    assert (
        await db.fetchval("SELECT deceased FROM hacs_core.patients WHERE id = $1", later.id) is True
    )
