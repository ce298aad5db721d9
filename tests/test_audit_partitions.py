"""Revision 0012: ``hacs_audit.audit_events`` partitioned by UTC month.

The upgrade keeps every row (ids, times, the identity's next value, grants) and the downgrade
gives them back to a plain table; writes land in their month; ``ensure_audit_partitions``
(``hacs db maintain``) creates months ahead, once, and empties the DEFAULT partition; retention
drops whole months and deletes rows only in the month that straddles the cutoff; the seal tells
those rows from deleted ones; and neither the application role nor the owner can change a
partition behind the append-only triggers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from typer.testing import CliRunner

from hacs_cli.db import MAINTAIN_MONTHS_AHEAD
from hacs_cli.main import app
from hacs_persistence.adapter import PostgreSQLAdapter
from hacs_persistence.db.engine import close_engines
from hacs_persistence.errors import DatabaseTimeoutError, PermissionDeniedError
from hacs_persistence.migrations import downgrade, upgrade
from hacs_persistence.ops.audit_seal import FindingKind, seal_audit, verify_audit
from hacs_persistence.ops.partitions import (
    DEFAULT_MONTHS_AHEAD,
    audit_partitions,
    ensure_audit_partitions,
)
from tests.conftest import db_connect
from tests.factories import ADMIN, make_patient
from tests.pgservers import PgServer, embedded_bin_dir, running_server
from tests.test_roles import NOT_ALLOWED, Deployment, deploy

AUDIT = "hacs_audit.audit_events"
# Old rows: only a superuser with the triggers off (as a restore would) can write one.
BACKDATE = (
    f"INSERT INTO {AUDIT} (occurred_at, action, outcome) "
    "SELECT $1::timestamptz, $2, 'success' FROM generate_series(1, $3::int)"
)


def month_name(when: datetime) -> str:
    return f"audit_events_y{when.year:04d}m{when.month:02d}"


def add_months(when: datetime, months: int) -> datetime:
    index = when.year * 12 + when.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def backdate(db: asyncpg.Connection, when: datetime, action: str, count: int = 1) -> None:
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(BACKDATE, when, action, count)


async def where_rows_are(db: asyncpg.Connection, action: str) -> dict[str, int]:
    rows = await db.fetch(
        f"SELECT tableoid::regclass::text AS part, count(*) AS n FROM {AUDIT} "
        "WHERE action = $1 GROUP BY 1",
        action,
    )
    return {r["part"].removeprefix("hacs_audit."): int(r["n"]) for r in rows}


async def partition_names(db: asyncpg.Connection) -> list[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = '{AUDIT}'::regclass ORDER BY 1"
    )
    return [r["relname"] for r in rows]


def test_the_cli_default_is_the_librarys() -> None:
    assert MAINTAIN_MONTHS_AHEAD == DEFAULT_MONTHS_AHEAD


# -- upgrade and downgrade with rows ---------------------------------------------------------------


async def test_upgrade_keeps_rows_ids_grants_and_downgrade_gives_them_back(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url, "0011")
    db = await db_connect(empty_database_url)
    try:
        now = datetime.now(UTC)
        old = now - timedelta(days=400)
        await backdate(db, old, "old", 3)
        await db.execute(f"INSERT INTO {AUDIT} (action, outcome) VALUES ('recent', 'success')")
        await db.execute(f"GRANT SELECT ON {AUDIT} TO PUBLIC")
        before = [tuple(r) for r in await db.fetch(f"SELECT * FROM {AUDIT} ORDER BY id")]
        await db.close()
        await upgrade(empty_database_url)
        await close_engines()
        db = await db_connect(empty_database_url)
        assert (
            await db.fetchval(f"SELECT relkind::text FROM pg_class WHERE oid = '{AUDIT}'::regclass")
            == "p"
        )
        after = [tuple(r) for r in await db.fetch(f"SELECT * FROM {AUDIT} ORDER BY id")]
        assert after == before
        assert await where_rows_are(db, "old") == {month_name(old): 3}
        assert await where_rows_are(db, "recent") == {month_name(now): 1}
        # The months the rows need, every month since, and three ahead; the DEFAULT partition.
        names = await partition_names(db)
        assert "audit_events_default" in names
        assert month_name(add_months(now, 3)) in names
        assert month_name(add_months(now, 4)) not in names
        assert month_name(add_months(old, 1)) in names
        # The identity goes on; the grant is kept; the primary key holds the partition key.
        new_id = await db.fetchval(
            f"INSERT INTO {AUDIT} (action, outcome) VALUES ('after', 'success') RETURNING id"
        )
        assert new_id > max(row[0] for row in before)
        assert await db.fetchval(f"SELECT has_table_privilege('public', '{AUDIT}', 'SELECT')")
        assert (
            await db.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_audit_events'"
            )
            == "PRIMARY KEY (id, occurred_at)"
        )
        before = [tuple(r) for r in await db.fetch(f"SELECT * FROM {AUDIT} ORDER BY id")]
        await db.close()
        await downgrade("0011", empty_database_url)
        await close_engines()
        db = await db_connect(empty_database_url)
        assert (
            await db.fetchval(f"SELECT relkind::text FROM pg_class WHERE oid = '{AUDIT}'::regclass")
            == "r"
        )
        assert [tuple(r) for r in await db.fetch(f"SELECT * FROM {AUDIT} ORDER BY id")] == before
        assert (
            await db.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_audit_events'"
            )
            == "PRIMARY KEY (id)"
        )
        assert await db.fetchval(f"SELECT has_table_privilege('public', '{AUDIT}', 'SELECT')")
        # 0006's server stamp is back: any time the writer gives is replaced.
        stamped = await db.fetchrow(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome) "
            "VALUES ('2001-01-01', 'read', 'success') RETURNING id, occurred_at, now() AS now"
        )
        assert stamped["occurred_at"] == stamped["now"] and stamped["id"] > new_id
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(f"DELETE FROM {AUDIT}")
    finally:
        await db.close()


# -- writes and maintain ------------------------------------------------------------------------


async def test_writes_land_in_the_current_month(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    await granular.save(make_patient(), ADMIN)
    now = await db.fetchval("SELECT now()")
    assert await where_rows_are(db, "create") == {month_name(now.astimezone(UTC)): 1}


async def test_maintain_creates_ahead_once_and_empties_the_default_partition(
    database_url: str, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    far = add_months(now, 8) + timedelta(days=2)
    await backdate(db, far, "future", 2)
    assert await where_rows_are(db, "future") == {"audit_events_default": 2}
    ids = sorted(r[0] for r in await db.fetch(f"SELECT id FROM {AUDIT} WHERE action = 'future'"))
    report = await ensure_audit_partitions(database_url, months_ahead=5)
    # Months 4 and 5 ahead, and every month up to the row's (8 ahead).
    assert report.created == [month_name(add_months(now, n)) for n in range(4, 9)]
    assert report.moved_rows == 2 and report.default_rows == 0
    assert await where_rows_are(db, "future") == {month_name(far): 2}
    assert (
        sorted(r[0] for r in await db.fetch(f"SELECT id FROM {AUDIT} WHERE action = 'future'"))
        == ids
    )
    again = await ensure_audit_partitions(database_url, months_ahead=5)
    assert again.created == [] and again.moved_rows == 0
    assert [p.name for p in again.partitions] == [p.name for p in report.partitions]
    assert report.through == add_months(now, 9)
    # A moved month is a partition like the others: its triggers and the TRUNCATE guard.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(f"DELETE FROM hacs_audit.{month_name(far)}")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(f"TRUNCATE hacs_audit.{month_name(far)}")
    assert [p.name for p in await audit_partitions(database_url)] == [
        p.name for p in report.partitions
    ]


async def test_maintain_gives_up_on_the_lock_rather_than_queue_writers_behind_it(
    database_url: str, db: asyncpg.Connection
) -> None:
    async with db.transaction():
        # A writer's transaction, still open.
        await db.execute(f"INSERT INTO {AUDIT} (action, outcome) VALUES ('read', 'success')")
        with pytest.raises(DatabaseTimeoutError):
            await ensure_audit_partitions(database_url, months_ahead=4, lock_timeout_seconds=0.05)
    assert month_name(add_months(datetime.now(UTC), 4)) not in await partition_names(db)
    report = await ensure_audit_partitions(database_url, months_ahead=4)
    assert report.created == [month_name(add_months(datetime.now(UTC), 4))]


def test_hacs_db_maintain_prints_what_it_created(database_url: str) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    first = runner.invoke(app, ["db", "maintain", "--months-ahead", "4"], env=env)
    assert first.exit_code == 0, first.output
    now = datetime.now(UTC)
    assert f"Created 1 audit partition(s): {month_name(add_months(now, 4))}" in first.output
    second = runner.invoke(app, ["db", "maintain", "--months-ahead", "4"], env=env)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines() == [
        "Audit partitions: nothing to create.",
        f"5 monthly partition(s) up to {add_months(now, 5):%Y-%m-%d} (exclusive), "
        "0 row(s) in audit_events_default.",
    ]


# -- retention and the seal ---------------------------------------------------------------------


async def test_retention_drops_whole_months_deletes_the_straddling_rows_and_seal_holds(
    granular: PostgreSQLAdapter, database_url: str, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=365)
    whole = add_months(cutoff, -2)  # a month that ends well before the cutoff
    await backdate(db, whole + timedelta(days=3), "whole", 4)
    await backdate(db, cutoff - timedelta(hours=2), "straddle-old", 2)
    await backdate(db, cutoff + timedelta(hours=2), "straddle-kept", 1)
    await ensure_audit_partitions(database_url)
    assert await where_rows_are(db, "whole") == {month_name(whole): 4}
    straddling = month_name(cutoff)
    await granular.save(make_patient(), ADMIN)
    sealed = await seal_audit(database_url)
    assert sealed.rows == 8
    removed = await granular.apply_audit_retention(timedelta(days=365), ADMIN)
    assert removed == 6
    names = await partition_names(db)
    # The whole months are gone, detached and dropped; the straddling one keeps its new rows.
    assert month_name(whole) not in names and month_name(add_months(whole, 1)) not in names
    assert straddling in names
    assert await where_rows_are(db, "whole") == {}
    assert await where_rows_are(db, "straddle-old") == {}
    assert await where_rows_are(db, "straddle-kept") == {month_name(cutoff + timedelta(hours=2)): 1}
    run = await db.fetchrow("SELECT removed, requested_by FROM hacs_audit.audit_retention_runs")
    assert (run["removed"], run["requested_by"]) == (6, ADMIN.id)
    assert (
        await db.fetchval(f"SELECT result_count FROM {AUDIT} WHERE action = 'audit_retention'") == 6
    )
    assert await db.fetchval("SELECT count(*) FROM hacs_audit.transaction_grants") == 0
    report = await verify_audit(database_url)
    assert report.ok, report.findings
    assert report.retained_rows == 6
    # Tampering shows: a row changed in its partition, a month dropped behind retention's back,
    # a guard disabled on one partition.
    kept = await db.fetchval(f"SELECT id FROM {AUDIT} WHERE action = 'straddle-kept'")
    create = await db.fetchval(f"SELECT id FROM {AUDIT} WHERE action = 'create'")
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(f"UPDATE {AUDIT} SET outcome = 'denied' WHERE id = $1", kept)
    current = month_name(now)
    await db.execute(f"ALTER TABLE {AUDIT} DETACH PARTITION hacs_audit.{current}")
    await db.execute(f"DROP TABLE hacs_audit.{current}")
    nxt = month_name(add_months(now, 1))
    await db.execute(f"ALTER TABLE hacs_audit.{nxt} DISABLE TRIGGER audit_events_no_update_delete")
    found = await verify_audit(database_url)
    assert not found.ok
    kinds = {(f.kind, f.audit_event_id) for f in found.findings}
    assert (FindingKind.ALTERED, kept) in kinds
    assert (FindingKind.DELETED, create) in kinds
    assert any(
        f.kind is FindingKind.GUARD_MISSING and f.trigger and nxt in f.trigger
        for f in found.findings
    )


async def test_a_second_row_with_a_sealed_id_is_an_insertion(
    database_url: str, db: asyncpg.Connection
) -> None:
    first = await db.fetchval(
        f"INSERT INTO {AUDIT} (action, outcome) VALUES ('read', 'success') RETURNING id"
    )
    await seal_audit(database_url)
    # The key is (id, occurred_at): a writer that picks its id can repeat one; the seal sees it.
    await db.execute(
        f"INSERT INTO {AUDIT} (id, action, outcome) OVERRIDING SYSTEM VALUE "
        "VALUES ($1, 'read', 'success')",
        first,
    )
    report = await verify_audit(database_url)
    assert (FindingKind.INSERTED, first) in {(f.kind, f.audit_event_id) for f in report.findings}


# -- roles: what the application role and the owner may do to a partition -----------------------


@pytest.fixture(scope="module")
def roles_server() -> Iterator[PgServer]:
    with running_server(embedded_bin_dir()) as server:
        yield server


@pytest.fixture(scope="module")
async def deployment(roles_server: PgServer) -> AsyncIterator[Deployment]:
    """docs/operations.md's deployment (as tests/test_roles.py runs it), on a server of its own."""
    yield await deploy(roles_server)
    await close_engines()


def app_statements(partition: str) -> list[str]:
    table = f"hacs_audit.{partition}"
    return [
        f"DELETE FROM {table}",
        f"UPDATE {table} SET outcome = 'denied'",
        f"TRUNCATE {table}",
        f"INSERT INTO {table} (action, outcome) VALUES ('read', 'success')",
        f"ALTER TABLE {AUDIT} DETACH PARTITION {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table} DISABLE TRIGGER audit_events_no_update_delete",
        f"CREATE TABLE hacs_audit.audit_events_y2999m01 PARTITION OF {AUDIT} "
        "FOR VALUES FROM ('2999-01-01') TO ('2999-02-01')",
        "SELECT count(*) FROM hacs_audit.ensure_audit_partitions(3, NULL)",
    ]


@pytest.mark.parametrize("statement", range(len(app_statements("x"))))
async def test_app_role_cannot_touch_a_partition(deployment: Deployment, statement: int) -> None:
    app_role = await deployment.connect("hacs_app")
    try:
        await app_role.execute(f"INSERT INTO {AUDIT} (action, outcome) VALUES ('probe', 'success')")
        partition = month_name(datetime.now(UTC))
        before = await app_role.fetchval(f"SELECT count(*) FROM {AUDIT}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=NOT_ALLOWED):
            await app_role.execute(app_statements(partition)[statement])
        assert await app_role.fetchval(f"SELECT count(*) FROM {AUDIT}") == before
    finally:
        await app_role.close()


async def test_owner_maintains_the_app_keeps_writing_and_no_one_truncates_a_partition(
    deployment: Deployment,
) -> None:
    with pytest.raises(PermissionDeniedError, match="owner"):
        await ensure_audit_partitions(deployment.url("hacs_app"))
    report = await ensure_audit_partitions(deployment.url("hacs_owner"), months_ahead=6)
    assert len(report.created) == 3
    partition = month_name(datetime.now(UTC))
    app_role = await deployment.connect("hacs_app")
    try:
        written = await app_role.fetchval(
            f"INSERT INTO {AUDIT} (action, outcome) VALUES ('probe', 'success') "
            "RETURNING tableoid::regclass::text"
        )
    finally:
        await app_role.close()
    assert written == f"hacs_audit.{partition}"
    owner = await deployment.connect("hacs_owner")
    try:
        for statement in (
            f"TRUNCATE hacs_audit.{partition}",
            f"TRUNCATE hacs_audit.{report.created[-1]}",
            f"DELETE FROM hacs_audit.{partition}",
            f"UPDATE hacs_audit.{partition} SET outcome = 'denied'",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await owner.execute(statement)
    finally:
        await owner.close()
