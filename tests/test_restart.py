"""Server outage mid-workload: clear errors while it is down, recovery by itself, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from hacs_models import Actor, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import DatabaseUnavailableError, OutcomeUnknownError
from hacs_persistence.migrations import upgrade
from tests.factories import make_patient
from tests.pgservers import PgServer, _Runner, embedded_bin_dir, running_server

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

ACTOR = Actor(name="w", role="system", permissions=["patient:write"])


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    # Durable settings: this test crashes the server and counts on every commit surviving.
    durable = {"fsync": True, "synchronous_commit": True, "full_page_writes": True}
    with running_server(embedded_bin_dir(), settings=durable) as started:
        yield started


def _pg_ctl(server: PgServer, *args: str) -> None:
    runner = _Runner(server.bin_dir, server.os_user, server.base_dir)
    result = runner.run(
        "pg_ctl", "-D", str(server.data_dir), "-l", str(server.log_file), "-w", *args,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_outage_is_reported_and_recovered_without_losing_writes(
    server: PgServer, mode: str
) -> None:
    url = server.socket_url()
    await upgrade(url)
    adapter = await create_postgres_adapter(url)
    acknowledged: list[str] = []
    unknown: list[str] = []
    try:
        for _ in range(20):
            acknowledged.append((await adapter.save(make_patient(), ACTOR)).id)
        # "immediate" is a crash: no shutdown checkpoint, recovery from the WAL on start.
        _pg_ctl(server, "-m", mode, "stop")
        for _ in range(5):
            attempt = make_patient()
            with pytest.raises(DatabaseUnavailableError) as info:
                await adapter.save(attempt, ACTOR)
            if isinstance(info.value, OutcomeUnknownError):
                unknown.append(attempt.id)
        with pytest.raises(DatabaseUnavailableError):
            await adapter.read(Patient, acknowledged[0], ACTOR)
        _pg_ctl(server, "start")
        # The adapter recovers by itself: the pool's pre-ping replaces dead connections.
        for _ in range(20):
            acknowledged.append((await adapter.save(make_patient(), ACTOR)).id)
        assert (await adapter.read(Patient, acknowledged[0], ACTOR)).id == acknowledged[0]
    finally:
        await adapter.close()
    conn = await asyncpg.connect(
        host=str(server.socket_dir), port=server.port, user="postgres", database="postgres"
    )
    try:
        stored = {r["id"] for r in await conn.fetch("SELECT id FROM hacs_core.patients")}
        await conn.execute("TRUNCATE hacs_core.patients, hacs_core.resource_versions CASCADE")
    finally:
        await conn.close()
    # No committed write lost, and nothing stored that was not acknowledged (or reported as
    # "outcome unknown").
    assert set(acknowledged) <= stored
    assert stored - set(acknowledged) <= set(unknown)
