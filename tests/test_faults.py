"""Faults: transient errors retried, lost connections reported honestly, timeouts applied."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from hacs_models import Observation, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import (
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    OutcomeUnknownError,
    TransientDatabaseError,
)
from tests.factories import ADMIN, make_observation, make_patient


@pytest.fixture
async def adapter(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    created = await create_postgres_adapter(database_url, application_name="hacs-faults")
    try:
        yield created
    finally:
        await created.close()


async def _flaky_inserts(db: asyncpg.Connection, failures: int, sqlstate: str) -> None:
    # Test-only trigger: the first `failures` inserts fail with `sqlstate`. A sequence is not
    # transactional, so the count survives the rollbacks.
    await db.execute("CREATE SEQUENCE flaky_counter")
    await db.execute(f"""
        CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('flaky_counter') <= {failures} THEN
                RAISE EXCEPTION 'simulated transient failure' USING ERRCODE = '{sqlstate}';
            END IF;
            RETURN NEW;
        END $$""")
    await db.execute(
        "CREATE TRIGGER flaky BEFORE INSERT ON hacs_core.patients "
        "FOR EACH ROW EXECUTE FUNCTION flaky()"
    )


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_transient_errors_are_retried(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection, sqlstate: str
) -> None:
    await _flaky_inserts(db, failures=2, sqlstate=sqlstate)
    saved = await adapter.save(make_patient(), ADMIN)
    assert saved.version == 1
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients") == 1
    assert (
        await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'create'")
        == 1
    )
    assert await db.fetchval("SELECT last_value FROM flaky_counter") == 3


async def test_retries_are_bounded(adapter: PostgreSQLAdapter, db: asyncpg.Connection) -> None:
    await _flaky_inserts(db, failures=100, sqlstate="40001")
    patient = make_patient()
    with pytest.raises(TransientDatabaseError):
        await adapter.save_many([patient], ADMIN)
    assert patient.version is None
    assert await db.fetchval("SELECT last_value FROM flaky_counter") == 3
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0


async def _block_inserts_on_lock(db: asyncpg.Connection, table: str) -> None:
    # Test-only trigger: inserts wait for advisory lock 4242, which the test holds.
    await db.execute("""
        CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$""")
    await db.execute(
        f"CREATE TRIGGER wait_for_test BEFORE INSERT ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION wait_for_test()"
    )


async def _blocked_backend(db: asyncpg.Connection) -> int:
    for _ in range(500):
        pid = await db.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'hacs-faults' "
            "AND wait_event_type = 'Lock' LIMIT 1"
        )
        if pid:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError("the write never reached the blocking trigger")


async def test_connection_lost_during_a_write_is_outcome_unknown(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection, database_url: str
) -> None:
    await _block_inserts_on_lock(db, "hacs_core.patients")
    holder = await asyncpg.connect(dsn=None, **_params(db))
    await holder.execute("SELECT pg_advisory_lock(4242)")
    try:
        task = asyncio.create_task(adapter.save(make_patient(), ADMIN))
        pid = await _blocked_backend(db)
        await db.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(OutcomeUnknownError, match="may or may not"):
            await task
    finally:
        await holder.close()
    # The adapter recovers by itself: the pool never hands out the dead connection again.
    await db.execute("DROP TRIGGER wait_for_test ON hacs_core.patients")
    assert (await adapter.save(make_patient(), ADMIN)).version == 1


async def test_pooled_connections_the_server_closed_are_replaced_before_use(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # No pre-ping by default (a round trip per operation): a connection the server closed
    # while it sat in the pool (a restart, a terminated backend) is replaced at checkout.
    assert not adapter.engine.sync_engine.pool._pre_ping
    patients = [make_patient() for _ in range(4)]
    await asyncio.gather(*(adapter.save(p, ADMIN) for p in patients))
    terminated = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'hacs-faults'"
    )
    assert terminated >= 2  # the pool held several connections, all of them now closed
    await asyncio.sleep(0.2)  # the event loop reads the server's goodbye on each socket
    for patient in patients:
        assert (await adapter.read(Patient, patient.id, ADMIN)).id == patient.id
        patient.active = not patient.active
        assert (await adapter.update(patient, ADMIN)).version == 2


def _params(db: asyncpg.Connection) -> dict[str, Any]:
    params = db._params  # the test's own connection parameters
    addr = db._addr
    return {
        "host": addr if isinstance(addr, str) else addr[0],
        "port": None if isinstance(addr, str) else addr[1],
        "user": params.user,
        "database": params.database,
    }


@pytest.mark.parametrize("how", ["terminated", "cancelled"])
async def test_interrupted_save_many_leaves_nothing_behind(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection, how: str
) -> None:
    patient = make_patient()
    await adapter.save(patient, ADMIN)
    await _block_inserts_on_lock(db, "hacs_core.observations")
    holder = await asyncpg.connect(**_params(db))
    await holder.execute("SELECT pg_advisory_lock(4242)")
    observations = [make_observation(patient.id, value=v) for v in range(200)]
    try:
        task = asyncio.create_task(adapter.save_many(observations, ADMIN))
        pid = await _blocked_backend(db)
        if how == "terminated":
            await db.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(DatabaseUnavailableError):
                await task
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await holder.close()
    for _ in range(500):  # the cancelled backend rolls back as its connection closes
        if not await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND application_name = 'hacs-faults' AND state <> 'idle'"
        ):
            break
        await asyncio.sleep(0.01)
    assert await db.fetchval("SELECT count(*) FROM hacs_core.observations") == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_core.resource_versions WHERE resource_type = 'Observation'"
        )
        == 0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE resource_type = 'Observation'"
        )
        == 0
    )
    assert all(o.version is None for o in observations)


async def test_statement_timeout_cancels_a_slow_query(database_url: str) -> None:
    async with await create_postgres_adapter(database_url, statement_timeout=100) as adapter:
        from sqlalchemy import text

        # The caller's own SQL on the transaction's connection: its error leaves the block
        # translated, by the adapter, not by the test.
        with pytest.raises(DatabaseTimeoutError, match="statement_timeout"):
            async with adapter.transaction() as conn:
                await conn.execute(text("SELECT pg_sleep(2)"))


async def test_idle_in_transaction_timeout_is_applied(database_url: str) -> None:
    async with await create_postgres_adapter(
        database_url, idle_in_transaction_session_timeout=100
    ) as adapter:
        with pytest.raises((DatabaseTimeoutError, DatabaseUnavailableError)):
            async with adapter.transaction():
                await adapter.save(make_patient(), ADMIN)
                await asyncio.sleep(0.5)  # idle inside the transaction past the server's limit
                await adapter.save(make_patient(), ADMIN)
        # Nothing of the killed transaction was committed.
        page = await adapter.search(Patient, ADMIN)
        assert len(page) == 0


async def test_pool_exhaustion_is_a_clear_timeout(database_url: str) -> None:
    async with (
        await create_postgres_adapter(
            database_url, connection_pool_size=1, max_overflow=0, pool_timeout=0.3
        ) as adapter,
        adapter.transaction(),
    ):
        await adapter.save(make_patient(), ADMIN)
        # A task outside this transaction (a fresh context: tasks created inside it would join
        # it) cannot get a connection: the only one is in this transaction.
        other = asyncio.create_task(
            adapter.read(Observation, "observation-00000000", ADMIN),
            context=contextvars.Context(),
        )
        with pytest.raises(DatabaseTimeoutError, match="pool_timeout"):
            await other


async def test_connection_lost_during_commit_is_outcome_unknown(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # A test-only deferred constraint trigger runs at COMMIT and waits for the test's lock, so
    # the commit is in flight when the test kills the connection.
    await db.execute("""
        CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(4343); RETURN NULL; END $$""")
    await db.execute(
        "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON hacs_core.patients "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()"
    )
    holder = await asyncpg.connect(**_params(db))
    await holder.execute("SELECT pg_advisory_lock(4343)")
    batch = [make_patient(), make_patient()]
    try:
        task = asyncio.create_task(adapter.save_many(batch, ADMIN))
        pid = await _blocked_backend(db)
        assert await db.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid) in (
            "COMMIT;",
            "COMMIT",
        )
        await db.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(OutcomeUnknownError, match="COMMIT"):
            await task
    finally:
        await holder.close()


async def test_pool_pre_ping_is_a_setting(database_url: str) -> None:
    pinging = await create_postgres_adapter(database_url, pool_pre_ping=True)
    try:
        assert pinging.engine.sync_engine.pool._pre_ping
        assert (await pinging.save(make_patient(), ADMIN)).version == 1
    finally:
        await pinging.close()
