"""Revision 0006: what the database itself allows on the audit trail and the resource versions.

As a superuser (the ``db`` fixture), for whom no privilege check applies: only the triggers
stand between the session and the rows. Role-specific checks are in tests/test_roles.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from hacs_models import Patient
from hacs_persistence.adapter import PostgreSQLAdapter
from hacs_persistence.migrations import downgrade, upgrade
from tests.factories import ADMIN, make_observation, make_patient

AUDIT = "hacs_audit.audit_events"
VERSIONS = "hacs_core.resource_versions"
XACT = "pg_current_xact_id()::text::bigint"


@pytest.fixture
def adapter(granular: PostgreSQLAdapter) -> PostgreSQLAdapter:
    """Every test here is about the typed-table adapter (tests/conftest.py opens it)."""
    return granular


async def probe(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            f"INSERT INTO {AUDIT} (action, outcome) VALUES ('read', 'success') RETURNING id"
        )
    )


@pytest.mark.parametrize("setting", ["SET", "SET LOCAL", "set_config"])
async def test_no_session_setting_lets_a_superuser_delete_audit_rows(
    db: asyncpg.Connection, setting: str
) -> None:
    await probe(db)
    before = await db.fetchval(f"SELECT count(*) FROM {AUDIT}")
    async with db.transaction():
        if setting == "set_config":
            await db.execute("SELECT set_config('hacs.audit_retention_cutoff', 'infinity', true)")
        else:
            await db.execute(f"{setting} hacs.audit_retention_cutoff = 'infinity'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(f"DELETE FROM {AUDIT}")
    assert await db.fetchval(f"SELECT count(*) FROM {AUDIT}") == before


async def test_every_audit_row_gets_the_server_time_and_the_writing_role(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # Another time of the same (UTC) month is replaced; another month's is refused (revision
    # 0012: the row was routed to that month's partition, and may not leave it).
    row = await db.fetchrow(
        f"INSERT INTO {AUDIT} (occurred_at, action, outcome, database_role) "
        "VALUES (date_trunc('month', now(), 'UTC'), 'read', 'success', 'someone-else') "
        "RETURNING occurred_at, database_role, now() AS now, session_user AS me"
    )
    assert (row["occurred_at"], row["database_role"]) == (row["now"], row["me"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="server's time"):
        await db.execute(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome) "
            "VALUES ('2001-01-01', 'read', 'success')"
        )
    # The statement path and the COPY path of save_many get the same stamp.
    patients = [make_patient(), make_patient()]
    await adapter.save_many(patients, ADMIN)
    await adapter.save(make_observation(patients[0].id), ADMIN)
    stamped = await db.fetch(
        f"SELECT occurred_at, database_role FROM {AUDIT} WHERE action = 'create'"
    )
    assert len(stamped) == 3
    assert {r["database_role"] for r in stamped} == {row["me"]}
    recent = datetime.now(UTC) - timedelta(minutes=5)
    assert all(r["occurred_at"] > recent for r in stamped)


async def test_retention_removes_old_rows_audits_itself_and_leaves_no_grant(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    async with db.transaction():
        # Old rows need the triggers off (the server stamps its own time otherwise).
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome) "
            "SELECT now() - interval '400 days', 'read', 'success' FROM generate_series(1, 3)"
        )
    await probe(db)
    assert await adapter.apply_audit_retention(timedelta(days=365), ADMIN) == 3
    assert await db.fetchval(f"SELECT count(*) FROM {AUDIT} WHERE action = 'read'") == 1
    run = await db.fetchrow(
        "SELECT removed, requested_by, database_role, ran_at - cutoff AS kept "
        "FROM hacs_audit.audit_retention_runs"
    )
    assert (run["removed"], run["requested_by"], run["kept"]) == (3, ADMIN.id, timedelta(365))
    audited = await db.fetchrow(
        f"SELECT result_count, database_role FROM {AUDIT} WHERE action = 'audit_retention'"
    )
    assert audited["result_count"] == 3 and audited["database_role"] == run["database_role"]
    assert await db.fetchval("SELECT count(*) FROM hacs_audit.transaction_grants") == 0


async def test_a_grant_counts_only_for_its_purpose_and_its_cutoff(db: asyncpg.Connection) -> None:
    await probe(db)
    async with db.transaction():
        await db.execute(f"INSERT INTO hacs_audit.transaction_grants VALUES ({XACT}, 'purge')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(f"DELETE FROM {AUDIT}")
    async with db.transaction():
        await db.execute(
            "INSERT INTO hacs_audit.transaction_grants "
            f"VALUES ({XACT}, 'audit_retention', now() - interval '1 day')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(f"DELETE FROM {AUDIT}")  # rows newer than the cutoff stay


async def test_versions_refuse_update_and_delete_outside_the_purge(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patient = await adapter.save(make_patient(), ADMIN)
    for statement in (
        f"UPDATE {VERSIONS} SET changed_by = 'someone-else'",
        f"DELETE FROM {VERSIONS}",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="resource_versions"):
            await db.execute(statement)
    async with db.transaction():
        # A retention grant is not an erasure's.
        await db.execute(
            f"INSERT INTO hacs_audit.transaction_grants VALUES ({XACT}, 'audit_retention', now())"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="resource_versions"):
            await db.execute(f"DELETE FROM {VERSIONS}")
    assert await db.fetchval(f"SELECT count(*) FROM {VERSIONS} WHERE id = $1", patient.id) == 1
    report = await adapter.purge_patient(patient.id, ADMIN)
    assert report.versions == 1
    assert await db.fetchval(f"SELECT count(*) FROM {VERSIONS} WHERE id = $1", patient.id) == 0
    assert await db.fetchval("SELECT count(*) FROM hacs_audit.transaction_grants") == 0
    # The purge's grant ended with it: in the same transaction, nothing more may go.
    other = await adapter.save(Patient(full_name="Kim Kept"), ADMIN)
    async with db.transaction():
        await db.fetchval("SELECT hacs_admin.purge_patient('no-such-patient')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="resource_versions"):
            await db.execute(f"DELETE FROM {VERSIONS} WHERE id = $1", other.id)


async def test_downgrade_restores_revision_0005_and_upgrade_hardens_again(
    database_url: str, db: asyncpg.Connection
) -> None:
    guard = (
        "SELECT prosrc, prosecdef FROM pg_proc "
        "WHERE oid = 'hacs_audit.reject_audit_change()'::regprocedure"
    )
    purge = (
        "SELECT prosrc FROM pg_proc "
        "WHERE oid = 'hacs_admin.purge_patient(text, jsonb)'::regprocedure"
    )
    await downgrade("0005", database_url)
    old = await db.fetchrow(guard)
    assert "hacs.audit_retention_cutoff" in old["prosrc"] and old["prosecdef"] is False
    assert "transaction_grants" not in await db.fetchval(purge)
    assert await db.fetchval("SELECT to_regclass('hacs_audit.audit_seals')") is None
    assert (
        await db.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgname IN "
            "('audit_events_server_stamp', 'resource_versions_no_update_delete')"
        )
        == 0
    )
    await upgrade(database_url)
    new = await db.fetchrow(guard)
    assert "hacs.audit_retention_cutoff" not in new["prosrc"] and new["prosecdef"] is True
    assert (await db.fetchval(purge)).count("transaction_grants") == 2
