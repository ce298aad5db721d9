"""A bounded load test on the local server: 50 concurrent tasks, mixed workload, then an audit.

Every acknowledged write must be in the database at the version that was acknowledged, the
history must be complete, audit rows must equal the operations, and every version conflict must
be explained by another writer that won that version.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict

import asyncpg
import pytest

from hacs_models import Actor, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import VersionConflictError
from tests.factories import make_patient

TASKS = 50
OPERATIONS_PER_TASK = 40
SHARED = 20  # patients every task may update: where writers race
ACTOR = Actor(name="load", role="system", permissions=["patient:write"])


async def test_mixed_workload_under_50_concurrent_tasks(
    database_url: str, db: asyncpg.Connection
) -> None:
    adapter = await create_postgres_adapter(database_url)
    shared = [make_patient(full_name=f"Shared {i}", name=[]) for i in range(SHARED)]
    await adapter.save_many(shared, ACTOR)
    acknowledged: dict[str, set[int]] = defaultdict(lambda: {1})
    markers: dict[tuple[str, int], str] = {}
    conflicts: list[tuple[str, int]] = []
    operations: Counter[str] = Counter()
    unexpected: list[BaseException] = []

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(OPERATIONS_PER_TASK):
            kind = rng.choice(["save", "update", "update", "read", "search"])
            try:
                if kind == "save":
                    saved = await adapter.save(make_patient(), ACTOR)
                    acknowledged[saved.id].add(saved.version or 0)
                    markers[(saved.id, 1)] = saved.full_name or ""
                elif kind == "update":
                    target = rng.choice(shared).id
                    current = await adapter.read(Patient, target, ACTOR)
                    operations["read"] += 1
                    marker = f"w{seed}-{step}"
                    current.full_name = marker
                    expected = current.version or 0
                    try:
                        await adapter.update(current, ACTOR, expected_version=expected)
                    except VersionConflictError:
                        conflicts.append((target, expected))
                        operations["conflict"] += 1
                        continue
                    acknowledged[target].add(expected + 1)
                    markers[(target, expected + 1)] = marker
                elif kind == "read":
                    await adapter.read(Patient, rng.choice(shared).id, ACTOR)
                else:
                    await adapter.search(Patient, ACTOR, filters={"gender": "male"}, limit=20)
                operations[kind] += 1
            except Exception as exc:  # collected: the test asserts there are none
                unexpected.append(exc)

    started = time.perf_counter()
    await asyncio.gather(*(worker(seed) for seed in range(TASKS)))
    elapsed = time.perf_counter() - started
    await adapter.close()
    total = sum(operations.values())
    print(
        f"\nload: {total} operations by {TASKS} tasks in {elapsed:.2f} s "
        f"= {total / elapsed:.0f} ops/s; {operations['conflict']} version conflicts"
    )

    assert unexpected == []
    # Every acknowledged write is stored at its version, with the content that was written.
    for (resource_id, version), marker in markers.items():
        document_name = await db.fetchval(
            "SELECT document->>'full_name' FROM hacs_core.resource_versions "
            "WHERE resource_type = 'Patient' AND id = $1 AND version = $2",
            resource_id,
            version,
        )
        assert document_name == marker
    # Histories are complete: versions 1..current with no gap, and current = highest acked.
    for resource_id, versions in acknowledged.items():
        stored = [
            r["version"]
            for r in await db.fetch(
                "SELECT version FROM hacs_core.resource_versions WHERE resource_type = 'Patient' "
                "AND id = $1 ORDER BY version",
                resource_id,
            )
        ]
        assert stored == list(range(1, max(versions) + 1))
        assert await db.fetchval(
            "SELECT version FROM hacs_core.patients WHERE id = $1", resource_id
        ) == max(versions)
    # Each conflict lost to a writer that was acknowledged for that very version.
    for resource_id, expected in conflicts:
        assert expected + 1 in acknowledged[resource_id]
    # One audit row per operation (conflicts audited as such), none lost or doubled.
    audit = Counter(
        {
            (r["action"], r["outcome"]): r["n"]
            for r in await db.fetch(
                "SELECT action, outcome, count(*) AS n FROM hacs_audit.audit_events "
                "GROUP BY action, outcome"
            )
        }
    )
    assert audit[("create", "success")] == operations["save"] + SHARED  # + the setup batch
    assert audit[("update", "success")] == operations["update"]
    assert audit[("update", "conflict")] == operations["conflict"]
    assert audit[("read", "success")] == operations["read"]
    assert audit[("search", "success")] == operations["search"]
    assert sum(audit.values()) == total + SHARED
    assert operations["conflict"] > 0  # the workload really made writers race


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
