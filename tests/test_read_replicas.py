"""Read replicas against a real streaming standby built from the embedded server's binaries.

A module fixture starts a dedicated primary (``wal_level = replica``, replication allowed on its
socket), copies it with ``pg_basebackup -R`` (which writes ``standby.signal`` and
``primary_conninfo``) into a second data directory, starts that as a hot standby on another
port, and migrates the primary to head (the standby replays the migration). As root both run as
the unprivileged user of tests/pgservers.py. Nothing here skips: a server that cannot be built
fails the tests.

Which server served a read is shown two ways: the router's ``served`` counts, and data that
only one of them has (a row written while the standby's replay is paused is on the primary
only, so reading it proves where the read went).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_auth import Actor
from hacs_models import MemoryBlock, Patient
from hacs_persistence import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.db.config import load_settings, mask_url, resolve_replica_urls
from hacs_persistence.db.replicas import PRIMARY, create_read_router
from hacs_persistence.errors import ResourceNotFoundError
from hacs_persistence.interchange.exporter import iter_resources
from hacs_persistence.migrations import upgrade
from tests import pgservers
from tests.factories import make_patient

pytestmark = pytest.mark.db

DATABASE = "hacs_replicas"
PASSWORD = "replica-suite-pw"
WAIT_SECONDS = 60.0  # bound of every wait for the standby; past it the test fails saying so
WRITER = Actor(
    name="replica-writer",
    role="system",
    permissions=["patient:write", "patient:read", "patient:delete"],
)
READER = Actor(name="replica-reader", role="physician", permissions=["patient:read"])


@dataclass
class Cluster:
    primary: pgservers.PgServer
    standby: pgservers.PgServer
    runner: pgservers._Runner

    def primary_url(self) -> str:
        return self.primary.url("postgres", PASSWORD, DATABASE)

    def standby_url(self) -> str:
        return self.standby.url("postgres", PASSWORD, DATABASE)

    def start_standby(self) -> None:
        started = self.runner.run(
            "pg_ctl", "-D", str(self.standby.data_dir), "-l", str(self.standby.log_file),
            "-w", "-t", "60", "start",
            timeout=80,
        )  # fmt: skip
        if started.returncode != 0:
            raise pgservers.ServerStartError(
                f"the standby did not start:\n{started.stdout}\n{self.standby.log()}"
            )
        pgservers._wait_ready(self.runner, self.standby, 60)

    def stop_standby(self) -> None:
        pgservers._stop(self.runner, self.standby)


@contextlib.contextmanager
def _standby_of(primary: pgservers.PgServer) -> Iterator[Cluster]:
    """A hot standby of ``primary``: pg_basebackup -R into a new directory, on a new port."""
    os_user = primary.os_user
    base = Path(tempfile.mkdtemp(prefix="hacs-standby-"))
    runner = pgservers._Runner(primary.bin_dir, os_user, base)
    standby = pgservers.PgServer(
        primary.bin_dir, base, pgservers._free_port(), primary.superuser_password, os_user
    )
    cluster = Cluster(primary, standby, runner)
    try:
        runner.chown(base)
        (base / "sock").mkdir(mode=0o700)
        runner.chown(base / "sock")
        copied = runner.run(
            "pg_basebackup", "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast",
            "-N", "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres",
            timeout=300,
        )  # fmt: skip
        if copied.returncode != 0:
            raise pgservers.ServerStartError(f"pg_basebackup failed:\n{copied.stdout[-3000:]}")
        assert (standby.data_dir / "standby.signal").is_file(), "pg_basebackup -R made no standby"
        with (standby.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# -- tests/test_read_replicas.py: the standby --\n"
                f"port = {standby.port}\nunix_socket_directories = '{standby.socket_dir}'\n"
                "hot_standby = on\n"
            )
        cluster.start_standby()
        yield cluster
    finally:
        try:
            pgservers._stop(runner, standby)
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    settings: dict[str, pgservers.Setting] = {
        "wal_level": "replica",
        "max_wal_senders": 5,
        "wal_keep_size": "256MB",
    }
    hba = [
        "local all all trust",
        "local replication all trust",
        "host all all 127.0.0.1/32 scram-sha-256",
    ]
    with (
        pgservers.running_server(
            pgservers.embedded_bin_dir(), settings=settings, hba=hba, superuser_password=PASSWORD
        ) as primary,
        _standby_of(primary) as built,
    ):
        yield built


@pytest.fixture(scope="module")
async def migrated(cluster: Cluster) -> Cluster:
    conn = await cluster.primary.connect()
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
        await conn.execute("CREATE TABLE tick (n int)")
    finally:
        await conn.close()
    await upgrade(cluster.primary_url())
    await wait_replayed(cluster)
    return cluster


async def wait_replayed(cluster: Cluster) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    primary = await cluster.primary.connect()
    standby = await cluster.standby.connect()
    try:
        target = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
        deadline = time.monotonic() + WAIT_SECONDS
        while not await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
            assert time.monotonic() < deadline, "the standby did not replay:\n" + (
                cluster.standby.log()
            )
            await asyncio.sleep(0.02)
    finally:
        await primary.close()
        await standby.close()


@contextlib.asynccontextmanager
async def replay_paused(cluster: Cluster) -> AsyncIterator[None]:
    """The standby's replay paused (really paused, not only requested), resumed afterwards."""
    primary = await cluster.primary.connect()
    standby = await cluster.standby.connect()
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + WAIT_SECONDS
        # Recovery pauses before it applies the next record: give it records until it has.
        while await standby.fetchval("SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "replay did not pause:\n" + cluster.standby.log()
            await primary.execute("INSERT INTO tick VALUES (1)")
            await asyncio.sleep(0.02)
        yield
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await standby.execute("SELECT pg_wal_replay_resume()")
        await primary.close()
        await standby.close()


@pytest.fixture
async def routed(migrated: Cluster) -> AsyncIterator[PostgreSQLAdapter]:
    """An adapter on the primary with the standby as its read replica (a generous lag bound)."""
    adapter = await create_postgres_adapter(
        migrated.primary_url(),
        read_replica_urls=[migrated.standby_url()],
        replica_max_lag=3600,
        read_your_writes_timeout=0.3,
    )
    try:
        yield adapter
    finally:
        await adapter.close()


def served(adapter: PostgreSQLAdapter) -> dict[str, int]:
    assert adapter.replicas is not None
    return dict(adapter.replicas.served)


async def audit_rows(cluster: Cluster, actor: Actor, action: str) -> list[asyncpg.Record]:
    conn = await cluster.primary.connect(DATABASE)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM hacs_audit.audit_events WHERE actor_id = $1 AND action = $2 ORDER BY id",
            actor.id,
            action,
        )
        return rows
    finally:
        await conn.close()


def replica_name(cluster: Cluster) -> str:
    """How the router names the standby (masked URL)."""
    return mask_url(cluster.standby_url())


def reader() -> Actor:
    return READER.model_copy(update={"id": f"reader-{time.monotonic_ns()}"})


# --- settings ---------------------------------------------------------------------------------


async def test_replica_urls_come_from_argument_or_environment_and_print_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "HACS_READ_REPLICA_URLS",
        "postgresql://app:s3cret-one@replica-a/db, postgresql://app:s3cret-two@replica-b/db,",
    )
    urls, source = resolve_replica_urls()
    assert source == "HACS_READ_REPLICA_URLS"
    assert urls == [
        "postgresql://app:s3cret-one@replica-a/db",
        "postgresql://app:s3cret-two@replica-b/db",
    ]
    assert resolve_replica_urls("postgresql://x@y/z") == (["postgresql://x@y/z"], "argument")
    router = await create_read_router(None, load_settings())
    assert router is not None
    try:
        shown = f"{router!r} {router} {router.names} {[r.database for r in router.replicas]}"
        assert "s3cret" not in shown
        assert mask_url(urls[0]) in shown and "replica-b" in shown
    finally:
        await router.close()
    monkeypatch.delenv("HACS_READ_REPLICA_URLS")
    assert resolve_replica_urls() == ([], "none")
    assert await create_read_router(None, load_settings()) is None
    settings = load_settings()
    assert (settings.replica_max_lag, settings.read_your_writes_timeout) == (5.0, 1.0)


# --- routing ----------------------------------------------------------------------------------


async def test_reads_outside_a_transaction_are_served_by_the_replica(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    replica = migrated.standby.url("postgres", PASSWORD, DATABASE)
    patient = await routed.save(make_patient(), WRITER)
    await wait_replayed(migrated)
    someone = reader()
    before = served(routed)
    found = await routed.read(Patient, patient.id, someone)
    assert found.id == patient.id and found.version == 1
    page = await routed.search(Patient, someone, filters={"id": patient.id})
    assert [p.id for p in page] == [patient.id]
    history = await routed.history(Patient, patient.id, someone)
    assert [e.version for e in history] == [1]
    exported = [r.id async for r in iter_resources(routed, "Patient", someone)]
    assert patient.id in exported
    after = served(routed)
    assert after.get(PRIMARY, 0) == before.get(PRIMARY, 0)
    assert after[mask_url(replica)] - before.get(mask_url(replica), 0) >= 4

    # The proof by data: a row the standby has not replayed is not found by a replica read.
    async with replay_paused(migrated):
        unseen = await routed.save(make_patient(), WRITER)
        with pytest.raises(ResourceNotFoundError):
            await routed.read(Patient, unseen.id, reader())
    await wait_replayed(migrated)
    assert (await routed.read(Patient, unseen.id, reader())).id == unseen.id


async def test_similarity_search_is_served_by_the_replica_and_audited_on_the_primary(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    assert routed.vector_dim is not None
    agent = Actor(
        id=f"agent-{time.monotonic_ns()}",
        name="replica-agent",
        role="agent",
        permissions=["memoryblock:write", "memoryblock:read"],
    )
    direction = [1.0] + [0.0] * (routed.vector_dim - 1)
    memory = await routed.save(
        MemoryBlock(content="near", agent_id=agent.id, embedding=direction), agent
    )
    await wait_replayed(migrated)
    searcher = agent.model_copy(update={"session_id": "another-session"})
    before = served(routed)
    hits = await routed.search_similar(
        MemoryBlock, direction, searcher, k=5, filters={"agent_id": agent.id}
    )
    assert [m.id for m, _ in hits] == [memory.id]
    after = served(routed)
    assert after.get(PRIMARY, 0) == before.get(PRIMARY, 0)
    assert after[replica_name(migrated)] == before.get(replica_name(migrated), 0) + 1
    [row] = await audit_rows(migrated, agent, "search_similar")
    assert (row["outcome"], row["resource_ids"]) == ("success", [memory.id])


async def test_audit_rows_of_replica_reads_are_written_on_the_primary(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    patient = await routed.save(make_patient(), WRITER)
    await wait_replayed(migrated)
    someone = reader()
    before = served(routed)
    await routed.read(Patient, patient.id, someone)
    await routed.search(Patient, someone, filters={"id": patient.id})
    await routed.history(Patient, patient.id, someone)
    [_ async for _ in iter_resources(routed, "Patient", someone)]
    with pytest.raises(ResourceNotFoundError):
        await routed.read(Patient, "no-such-patient", someone)
    after = served(routed)
    assert after.get(PRIMARY, 0) == before.get(PRIMARY, 0), "all went to the replica"
    assert after[replica_name(migrated)] - before.get(replica_name(migrated), 0) >= 5
    reads = await audit_rows(migrated, someone, "read")
    assert [(r["outcome"], r["resource_id"]) for r in reads] == [
        ("success", patient.id),
        ("not_found", "no-such-patient"),
    ]
    assert reads[0]["resource_ids"] == [patient.id]
    [search] = await audit_rows(migrated, someone, "search")
    assert (search["outcome"], search["result_count"], search["resource_ids"]) == (
        "success",
        1,
        [patient.id],
    )
    [history] = await audit_rows(migrated, someone, "history")
    assert history["outcome"] == "success" and history["detail"] == "versions=1"
    exports = await audit_rows(migrated, someone, "export")
    assert exports and patient.id in exports[0]["resource_ids"]


async def test_writes_never_go_to_the_replica(routed: PostgreSQLAdapter) -> None:
    before = served(routed)
    patient = await routed.save(make_patient(), WRITER)
    patient.full_name = "Renamed Once"
    await routed.update(patient, WRITER)
    batch = await routed.save_many([make_patient(), make_patient()], WRITER)
    assert await routed.delete(Patient, batch[0].id, WRITER) == 2
    # A replica would have refused every one of them (read-only); none was even routed there.
    assert served(routed) == before


async def test_a_transaction_stays_on_the_primary(routed: PostgreSQLAdapter) -> None:
    before = served(routed)
    async with routed.transaction():
        patient = await routed.save(make_patient(), WRITER)
        # Uncommitted: only the transaction's own connection, on the primary, can see it.
        assert (await routed.read(Patient, patient.id, reader())).id == patient.id
        page = await routed.search(Patient, reader(), filters={"id": patient.id})
        assert [p.id for p in page] == [patient.id]
    assert served(routed) == before


# --- read your writes -------------------------------------------------------------------------


async def test_read_your_writes_waits_for_replay_then_reads_the_primary(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    replica = mask_url(migrated.standby.url("postgres", PASSWORD, DATABASE))
    writer = WRITER.model_copy(update={"id": f"writer-{time.monotonic_ns()}", "session_id": "s1"})
    async with replay_paused(migrated):
        patient = await routed.save(make_patient(full_name="Written While Paused"), writer)
        before = served(routed)
        # The writer's own read: the replica has not replayed the write within the bounded
        # wait, so the primary serves it, with the data just written.
        found = await routed.read(Patient, patient.id, writer)
        assert (found.id, found.full_name, found.version) == (
            patient.id,
            "Written While Paused",
            1,
        )
        after = served(routed)
        assert after[PRIMARY] == before.get(PRIMARY, 0) + 1
        assert after.get(replica, 0) == before.get(replica, 0)
        # Another caller (another session of the same actor counts as one) reads the replica.
        other_session = writer.model_copy(update={"session_id": "s2"})
        with pytest.raises(ResourceNotFoundError):
            await routed.read(Patient, patient.id, other_session)
        assert served(routed).get(replica, 0) == before.get(replica, 0) + 1
    await wait_replayed(migrated)
    before = served(routed)
    found = await routed.read(Patient, patient.id, writer)
    assert found.full_name == "Written While Paused"
    after = served(routed)
    assert after.get(PRIMARY, 0) == before.get(PRIMARY, 0), "replayed: the replica again"
    assert after[replica] == before.get(replica, 0) + 1


async def test_writes_inside_a_transaction_are_read_back_after_commit(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    writer = WRITER.model_copy(update={"id": f"writer-{time.monotonic_ns()}"})
    async with replay_paused(migrated):
        async with routed.transaction():
            patient = await routed.save(make_patient(full_name="Committed Together"), writer)
        before = served(routed)
        assert (await routed.read(Patient, patient.id, writer)).full_name == "Committed Together"
        assert served(routed)[PRIMARY] == before.get(PRIMARY, 0) + 1
    await wait_replayed(migrated)


# --- health -----------------------------------------------------------------------------------


async def test_a_lagging_replica_is_skipped(migrated: Cluster) -> None:
    adapter = await create_postgres_adapter(
        migrated.primary_url(),
        read_replica_urls=[migrated.standby_url()],
        replica_max_lag=0.2,
        read_your_writes_timeout=0,
    )
    try:
        async with replay_paused(migrated):
            patient = await adapter.save(make_patient(), WRITER)
            standby = await migrated.standby.connect()
            try:
                deadline = time.monotonic() + WAIT_SECONDS
                while not await standby.fetchval(
                    "SELECT now() - pg_last_xact_replay_timestamp() > interval '0.5 seconds'"
                ):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            finally:
                await standby.close()
            before = served(adapter)
            # Another caller, so no read-your-writes: the lag alone sends it to the primary.
            assert (await adapter.read(Patient, patient.id, reader())).id == patient.id
            assert served(adapter)[PRIMARY] == before.get(PRIMARY, 0) + 1
    finally:
        await adapter.close()
    await wait_replayed(migrated)


async def test_reads_fail_over_to_the_primary_when_the_replica_is_down(
    routed: PostgreSQLAdapter, migrated: Cluster
) -> None:
    patient = await routed.save(make_patient(), WRITER)
    await wait_replayed(migrated)
    someone = reader()
    await routed.read(Patient, patient.id, someone)  # a pooled connection to the replica
    migrated.stop_standby()
    try:
        before = served(routed)
        assert (await routed.read(Patient, patient.id, someone)).id == patient.id
        page = await routed.search(Patient, someone, filters={"id": patient.id})
        assert [p.id for p in page] == [patient.id]
        assert served(routed)[PRIMARY] == before.get(PRIMARY, 0) + 2
        # A fresh adapter whose replica refuses connections from the start reads too.
        async with await create_postgres_adapter(
            migrated.primary_url(), read_replica_urls=[migrated.standby_url()]
        ) as fresh:
            assert (await fresh.read(Patient, patient.id, someone)).id == patient.id
            assert served(fresh) == {PRIMARY: 1}
        reads = await audit_rows(migrated, someone, "read")
        assert [r["outcome"] for r in reads] == ["success"] * 3
    finally:
        migrated.start_standby()
    await wait_replayed(migrated)


async def test_a_restarted_replica_serves_again_without_an_error(
    migrated: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The replicas from the environment this time, as a deployment would set them.
    monkeypatch.setenv("HACS_READ_REPLICA_URLS", migrated.standby_url())
    adapter = await create_postgres_adapter(migrated.primary_url(), replica_retry_interval=0)
    try:
        assert adapter.replicas is not None
        assert adapter.replicas.names == [replica_name(migrated)]
        patient = await adapter.save(make_patient(), WRITER)
        await wait_replayed(migrated)
        someone = reader()
        await adapter.read(Patient, patient.id, someone)  # leaves a pooled replica connection
        migrated.stop_standby()
        try:
            with caplog.at_level(logging.WARNING, logger="hacs_persistence.replicas"):
                assert (await adapter.read(Patient, patient.id, someone)).id == patient.id
            assert "left out" in caplog.text and replica_name(migrated) in caplog.text
            assert PASSWORD not in caplog.text
        finally:
            migrated.start_standby()
        await wait_replayed(migrated)
        await adapter.read(Patient, patient.id, someone)  # a pooled connection again
        migrated.stop_standby()
        migrated.start_standby()
        await wait_replayed(migrated)
        before = served(adapter)
        # The pool's connections died with the old standby process: a fresh one is used.
        assert (await adapter.read(Patient, patient.id, someone)).id == patient.id
        assert served(adapter) == {
            **before,
            replica_name(migrated): before[replica_name(migrated)] + 1,
        }
    finally:
        await adapter.close()


async def test_a_replica_that_breaks_off_mid_read_is_read_again_on_the_primary(
    routed: PostgreSQLAdapter, migrated: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = await routed.save(make_patient(), WRITER)
    await wait_replayed(migrated)
    router = routed.replicas
    assert router is not None
    healthy = router._healthy
    killer = await migrated.standby.connect()

    async def healthy_then_cut(replica: Any) -> Any:
        # The standby goes away between the health query and the read's statement: its server
        # process for this connection is terminated (and waited for) right after the check.
        conn = await healthy(replica)
        if conn is not None:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            pid = await driver.fetchval("SELECT pg_backend_pid()")
            assert await killer.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
        return conn

    monkeypatch.setattr(router, "_healthy", healthy_then_cut)
    someone = reader()
    before = served(routed)
    try:
        found = await routed.read(Patient, patient.id, someone)
    finally:
        await killer.close()
    assert found.id == patient.id
    after = served(routed)
    assert after[replica_name(migrated)] == before.get(replica_name(migrated), 0) + 1
    assert after[PRIMARY] == before.get(PRIMARY, 0) + 1, "read again on the primary"
    [row] = await audit_rows(migrated, someone, "read")
    assert (row["outcome"], row["resource_id"]) == ("success", patient.id)
