"""A bounded load test on the local server: 50 concurrent tasks, mixed workload, then an audit.

Every acknowledged write must be in the database at the version that was acknowledged, the
history must be complete, audit rows must equal the operations, and every version conflict must
be explained by another writer that won that version. The workload and the audit are in
tests/load_workload.py: tests/test_pgbouncer.py runs the same through PgBouncer.
"""

from __future__ import annotations

import asyncpg
import pytest

from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import VersionConflictError
from tests.factories import make_patient
from tests.load_workload import ACTOR, audit_workload, run_mixed_workload


async def test_mixed_workload_under_50_concurrent_tasks(
    database_url: str, db: asyncpg.Connection
) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        result = await run_mixed_workload(adapter)
    finally:
        await adapter.close()
    print(f"\nload: {result.summary()}")
    await audit_workload(db, result)


async def test_a_refused_write_is_audited_after_its_transaction_ends(
    database_url: str, db: asyncpg.Connection
) -> None:
    """With one pooled connection, a refused write still audits and raises its own error.

    A refused update may hold the row's lock (READ COMMITTED locks the newest version before
    rechecking the expected one); auditing on a second connection before the transaction ended
    made racing writers starve the pool and wait on each other's locks until statement_timeout.
    """
    adapter = await create_postgres_adapter(
        database_url, connection_pool_size=1, max_overflow=0, pool_timeout=2
    )
    try:
        stored = await adapter.save(make_patient(), ACTOR)
        stale = stored.model_copy()
        await adapter.update(stored, ACTOR)
        with pytest.raises(VersionConflictError):
            await adapter.update(stale, ACTOR, expected_version=1)
        with pytest.raises(VersionConflictError):
            await adapter.save(make_patient(id=stored.id), ACTOR)  # a taken id
        with pytest.raises(VersionConflictError):
            await adapter.save_many([stale], ACTOR)
    finally:
        await adapter.close()
    audit = {
        (r["action"], r["outcome"]): r["n"]
        for r in await db.fetch(
            "SELECT action, outcome, count(*) AS n FROM hacs_audit.audit_events "
            "WHERE resource_id = $1 GROUP BY action, outcome",
            stored.id,
        )
    }
    assert audit == {
        ("create", "success"): 1,
        ("update", "success"): 1,
        ("update", "conflict"): 1,
        ("create", "conflict"): 1,
        ("save_many", "conflict"): 1,
    }
