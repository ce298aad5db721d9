"""Sealing the audit trail: whoever changes sealed rows afterwards, verification names them.

The tampering is done as a superuser with triggers off (``session_replication_role =
replica``), the one thing the database's own guards cannot stop; retention's removals are not
tampering; a row still being written while a seal starts is waited for, not misreported.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_persistence.errors import DatabaseTimeoutError
from hacs_persistence.ops.audit_seal import (
    ROW_HASH_SQL,
    Finding,
    FindingKind,
    seal_audit,
    verify_audit,
)
from tests.conftest import admin_connect, db_connect, with_database
from tests.pgservers import embedded_bin_dir

AUDIT = "hacs_audit.audit_events"


async def write_rows(db: asyncpg.Connection, count: int, action: str = "read") -> list[int]:
    rows = await db.fetch(
        f"INSERT INTO {AUDIT} (action, outcome, actor_id) "
        "SELECT $1, 'success', 'actor-' || n FROM generate_series(1, $2) AS n RETURNING id",
        action,
        count,
    )
    return [r["id"] for r in rows]


async def rolled_back_id(db: asyncpg.Connection) -> int:
    """An id drawn by an insert that rolled back: a gap inside the range a seal will cover."""
    tx = db.transaction()
    await tx.start()
    gap = await db.fetchval(
        f"INSERT INTO {AUDIT} (action, outcome) VALUES ('x', 'success') RETURNING id"
    )
    await tx.rollback()
    return int(gap)


@pytest.fixture
async def tamper(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection with every trigger off: what no guard in the database stops."""
    conn = await db_connect(database_url)
    await conn.execute("SET session_replication_role = replica")
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_clean_trail_verifies_and_a_second_seal_adds_only_new_rows(
    database_url: str, db: asyncpg.Connection
) -> None:
    ids = await write_rows(db, 5)
    first = await seal_audit(database_url)
    assert (first.seals, first.rows, first.last_id) == (1, 5, ids[-1])
    assert first.head and len(first.head) == 64
    again = await seal_audit(database_url)
    assert (again.seals, again.rows, again.head) == (0, 0, first.head)
    more = await write_rows(db, 3)
    second = await seal_audit(database_url)
    assert (second.seals, second.rows, second.last_id) == (1, 3, more[-1])
    assert second.head != first.head
    report = await verify_audit(database_url, expect_head=first.head)
    assert report.ok, report.findings
    assert (report.seals, report.sealed_rows, report.unsealed_rows) == (2, 8, 0)
    assert report.head == second.head
    await write_rows(db, 2)
    assert (await verify_audit(database_url)).unsealed_rows == 2


async def test_a_long_trail_is_sealed_in_batches_and_concurrent_seals_take_turns(
    database_url: str, db: asyncpg.Connection
) -> None:
    ids = await write_rows(db, 5)
    batched = await seal_audit(database_url, batch_size=2)
    assert (batched.seals, batched.rows, batched.last_id) == (3, 5, ids[-1])
    await write_rows(db, 4)
    both = await asyncio.gather(seal_audit(database_url), seal_audit(database_url))
    assert sorted(r.seals for r in both) == [0, 1]
    assert both[0].head == both[1].head
    report = await verify_audit(database_url)
    assert report.ok, report.findings
    assert (report.seals, report.sealed_rows) == (4, 9)


async def test_verify_names_each_deleted_altered_and_inserted_row(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    ids = await write_rows(db, 3)
    gap = await rolled_back_id(db)
    ids += await write_rows(db, 3)
    await seal_audit(database_url)
    deleted, altered = ids[1], ids[4]
    await tamper.execute(f"DELETE FROM {AUDIT} WHERE id = $1", deleted)
    await tamper.execute(f"UPDATE {AUDIT} SET outcome = 'denied' WHERE id = $1", altered)
    await tamper.execute(
        f"INSERT INTO {AUDIT} (id, action, outcome) OVERRIDING SYSTEM VALUE "
        "VALUES ($1, 'read', 'success')",
        gap,
    )
    report = await verify_audit(database_url)
    assert not report.ok
    assert report.findings == sorted(
        [
            Finding(FindingKind.DELETED, audit_event_id=deleted),
            Finding(FindingKind.ALTERED, audit_event_id=altered),
            Finding(FindingKind.INSERTED, audit_event_id=gap),
        ],
        key=lambda f: f.audit_event_id or 0,
    )


async def test_a_change_of_time_alone_is_found(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    [row] = await write_rows(db, 1)
    await seal_audit(database_url)
    await tamper.execute(
        f"UPDATE {AUDIT} SET occurred_at = occurred_at - interval '1 microsecond' WHERE id = $1",
        row,
    )
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.ALTERED, audit_event_id=row)
    ]


async def test_rows_aged_out_by_retention_are_not_tampering_other_missing_rows_are(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    old = [
        r["id"]
        for r in await tamper.fetch(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome) SELECT now() - interval "
            "'400 days', 'read', 'success' FROM generate_series(1, 4) RETURNING id"
        )
    ]
    recent = await write_rows(db, 2)
    await seal_audit(database_url)
    removed = await db.fetchval(
        "SELECT hacs_audit.apply_retention(interval '365 days', 'retention-job')"
    )
    assert removed == 4
    report = await verify_audit(database_url)
    assert report.ok, report.findings
    assert (report.sealed_rows, report.retained_rows) == (6, 4)
    # A recent row is gone too, with no retention run that covers it: that is tampering.
    await tamper.execute(f"DELETE FROM {AUDIT} WHERE id = $1", recent[0])
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.DELETED, audit_event_id=recent[0])
    ]
    assert old  # (the old rows were the ones retention removed)


async def test_an_old_row_deleted_without_a_retention_run_is_found(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    [old] = [
        r["id"]
        for r in await tamper.fetch(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome) "
            "VALUES (now() - interval '900 days', 'read', 'success') RETURNING id"
        )
    ]
    await seal_audit(database_url)
    await tamper.execute(f"DELETE FROM {AUDIT} WHERE id = $1", old)
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.DELETED, audit_event_id=old)
    ]


async def test_a_row_in_flight_when_the_seal_starts_is_waited_for_not_misreported(
    database_url: str, db: asyncpg.Connection
) -> None:
    writer = await db_connect(database_url)
    try:
        tx = writer.transaction()
        await tx.start()
        in_flight = await writer.fetchval(
            f"INSERT INTO {AUDIT} (action, outcome) VALUES ('read', 'success') RETURNING id"
        )
        [later] = await write_rows(db, 1)  # committed, with a higher id
        sealing = asyncio.create_task(seal_audit(database_url))
        await asyncio.sleep(0.3)
        # It cannot finish while a transaction that drew an id below its bound is open.
        assert not sealing.done()
        await tx.commit()
        result = await sealing
    finally:
        await writer.close()
    assert in_flight < later
    assert (result.rows, result.last_id) == (2, later)
    report = await verify_audit(database_url)
    assert report.ok, report.findings
    assert report.sealed_rows == 2


async def test_the_seal_gives_up_with_a_clear_error_when_a_writer_stays_open(
    database_url: str, db: asyncpg.Connection
) -> None:
    writer = await db_connect(database_url)
    try:
        tx = writer.transaction()
        await tx.start()
        await writer.execute(f"INSERT INTO {AUDIT} (action, outcome) VALUES ('read', 'success')")
        with pytest.raises(DatabaseTimeoutError, match="hacs audit seal"):
            await seal_audit(database_url, wait_seconds=0.2)
        await tx.rollback()
    finally:
        await writer.close()
    assert await db.fetchval("SELECT count(*) FROM hacs_audit.audit_seals") == 0


async def test_expect_head_catches_a_trail_rewritten_and_sealed_again(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    ids = await write_rows(db, 3)
    kept = (await seal_audit(database_url)).head
    assert kept is not None
    assert (await verify_audit(database_url, expect_head=kept)).ok
    wrong = await verify_audit(database_url, expect_head="0" * 64)
    assert wrong.findings == [Finding(FindingKind.HEAD_MISMATCH)]
    # A superuser rewrites a row, throws the seals away and seals again: consistent...
    await tamper.execute(f"UPDATE {AUDIT} SET actor_id = 'someone-else' WHERE id = $1", ids[0])
    await tamper.execute("DELETE FROM hacs_audit.audit_sealed_rows")
    await tamper.execute("DELETE FROM hacs_audit.audit_seals")
    await seal_audit(database_url)
    assert (await verify_audit(database_url)).ok
    # ...but not with the head kept outside the database.
    assert (await verify_audit(database_url, expect_head=kept)).findings == [
        Finding(FindingKind.HEAD_MISMATCH)
    ]


async def test_verify_names_a_seal_altered_or_removed(
    database_url: str, db: asyncpg.Connection, tamper: asyncpg.Connection
) -> None:
    for _ in range(3):
        await write_rows(db, 2)
        await seal_audit(database_url)
    # A sealed row's stored hash replaced to match an edit: its seal's digest no longer holds.
    [row] = await write_rows(db, 1)
    await seal_audit(database_url)
    await tamper.execute(f"UPDATE {AUDIT} SET detail = 'edited' WHERE id = $1", row)
    await tamper.execute(
        f"UPDATE hacs_audit.audit_sealed_rows s SET row_hash = {ROW_HASH_SQL} "
        f"FROM {AUDIT} e WHERE e.id = s.audit_event_id AND e.id = $1",
        row,
    )
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.SEAL_ALTERED, seal_id=4)
    ]
    # Seal 2 and its rows removed: the gap in the numbers, and its rows no longer sealed.
    await tamper.execute("DELETE FROM hacs_audit.audit_sealed_rows WHERE seal_id = 2")
    await tamper.execute("DELETE FROM hacs_audit.audit_seals WHERE id = 2")
    findings = (await verify_audit(database_url)).findings
    assert Finding(FindingKind.SEAL_MISSING, seal_id=2) in findings
    assert [f.kind for f in findings].count(FindingKind.INSERTED) == 2


async def test_verify_names_an_append_only_trigger_dropped_or_disabled(
    database_url: str, db: asyncpg.Connection
) -> None:
    await db.execute(f"ALTER TABLE {AUDIT} DISABLE TRIGGER audit_events_server_stamp")
    await db.execute(
        "DROP TRIGGER resource_versions_no_update_delete ON hacs_core.resource_versions"
    )
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.GUARD_MISSING, trigger="audit_events_server_stamp"),
        Finding(FindingKind.GUARD_MISSING, trigger="resource_versions_no_update_delete"),
    ]
    await db.execute(f"ALTER TABLE {AUDIT} ENABLE TRIGGER audit_events_server_stamp")
    await db.execute(f"ALTER TABLE {AUDIT} ENABLE REPLICA TRIGGER audit_events_no_truncate")
    assert (await verify_audit(database_url)).findings == [
        Finding(FindingKind.GUARD_MISSING, trigger="audit_events_no_truncate"),
        Finding(FindingKind.GUARD_MISSING, trigger="resource_versions_no_update_delete"),
    ]


def pg_tool(tool: str, url: str, *args: str) -> None:
    """Run pg_dump or pg_restore (the embedded build's) against the database of ``url``."""
    parsed = make_url(url)
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    host = dict(parsed.query).get("host") or parsed.host or ""
    where = ["-h", str(host), "-p", str(parsed.port or 5432), "-U", str(parsed.username)]
    command = [str(Path(embedded_bin_dir()) / tool), *where, "-d", str(parsed.database), *args]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)


async def test_a_dump_restored_elsewhere_verifies_against_the_same_head(
    server_url: str, database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await write_rows(db, 3)
    await db.fetchval("SELECT hacs_audit.apply_retention(interval '30 days', 'job')")
    sealed = await seal_audit(database_url)
    dump = tmp_path / "hacs.dump"
    await asyncio.to_thread(pg_tool, "pg_dump", database_url, "-Fc", "-f", str(dump))
    name = f"hacs_restored_{uuid.uuid4().hex[:8]}"
    admin = await admin_connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        restored = with_database(server_url, name)
        # A full restore loads the data before it creates the triggers: times are kept.
        await asyncio.to_thread(pg_tool, "pg_restore", restored, str(dump))
        report = await verify_audit(restored, expect_head=sealed.head)
        assert report.ok, report.findings
        assert (report.sealed_rows, report.head) == (4, sealed.head)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_row_hash_does_not_depend_on_the_session_time_zone(
    db: asyncpg.Connection,
) -> None:
    await write_rows(db, 1)
    query = f"SELECT {ROW_HASH_SQL} FROM {AUDIT} e ORDER BY e.id LIMIT 1"
    await db.execute("SET timezone = 'UTC'")
    utc = await db.fetchval(query)
    await db.execute("SET timezone = 'Pacific/Chatham'")
    assert await db.fetchval(query) == utc


def test_cli_seal_prints_the_head_and_verify_exits_non_zero_on_tampering(
    database_url: str,
) -> None:
    runner = CliRunner()

    async def setup() -> int:
        conn = await db_connect(database_url)
        try:
            return (await write_rows(conn, 2))[0]
        finally:
            await conn.close()

    row = asyncio.run(setup())
    sealed = runner.invoke(app, ["--database-url", database_url, "audit", "seal"])
    assert sealed.exit_code == ExitCode.OK, sealed.output
    head = sealed.stdout.strip().splitlines()[-1].removeprefix("Head: ")
    assert len(head) == 64
    ok = runner.invoke(
        app, ["--database-url", database_url, "audit", "verify", "--expect-head", head]
    )
    assert ok.exit_code == ExitCode.OK, ok.output
    assert ok.stdout.startswith("OK:")
    wrong = runner.invoke(
        app, ["--database-url", database_url, "audit", "verify", "--expect-head", "f" * 64]
    )
    assert wrong.exit_code == ExitCode.FAILED
    assert "head_mismatch" in wrong.stdout

    async def tamper() -> None:
        conn = await db_connect(database_url)
        try:
            await conn.execute("SET session_replication_role = replica")
            await conn.execute(f"DELETE FROM {AUDIT} WHERE id = $1", row)
        finally:
            await conn.close()

    asyncio.run(tamper())
    found = runner.invoke(app, ["--database-url", database_url, "audit", "verify"])
    assert found.exit_code == ExitCode.FAILED
    assert f"deleted: audit row {row}" in found.stdout
    assert "TAMPERED" in found.stdout
    again = runner.invoke(app, ["--database-url", database_url, "audit", "seal", "--json"])
    assert again.exit_code == ExitCode.OK, again.output
    assert f'"head": "{head}"' in again.stdout


def test_cli_seal_of_an_unmigrated_database_fails_with_a_hint(empty_database_url: str) -> None:
    result = CliRunner().invoke(app, ["--database-url", empty_database_url, "audit", "seal"])
    assert result.exit_code == ExitCode.FAILED
    assert "hacs db upgrade" in result.stderr


async def test_retention_keeps_its_cutoff_for_verification(
    database_url: str, db: asyncpg.Connection
) -> None:
    await db.fetchval("SELECT hacs_audit.apply_retention($1, 'job')", timedelta(days=30))
    run = await db.fetchrow(
        "SELECT removed, requested_by, ran_at - cutoff AS kept FROM hacs_audit.audit_retention_runs"
    )
    assert (run["removed"], run["requested_by"], run["kept"]) == (0, "job", timedelta(days=30))
