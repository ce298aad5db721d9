"""The load test's workload and its consistency audit, shared by tests/test_load.py (straight to
the server) and tests/test_pgbouncer.py (through PgBouncer in transaction mode).

``run_mixed_workload`` saves ``SHARED`` patients, then runs ``TASKS`` concurrent tasks of a mixed
workload (save, update of a shared patient with its expected version, read, search) and records
what was acknowledged. ``audit_workload`` then checks against the database that every acknowledged
write is stored at the version that was acknowledged, the histories are complete, audit rows equal
the operations, and every version conflict is explained by another writer that won that version.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import asyncpg

from hacs_models import Actor, Patient
from hacs_persistence import PostgreSQLAdapter
from hacs_persistence.errors import VersionConflictError
from tests.factories import make_patient

__all__ = [
    "ACTOR",
    "OPERATIONS_PER_TASK",
    "SHARED",
    "TASKS",
    "WorkloadResult",
    "audit_workload",
    "run_mixed_workload",
]

TASKS = 50
OPERATIONS_PER_TASK = 40
SHARED = 20  # patients every task may update: where writers race
ACTOR = Actor(name="load", role="system", permissions=["patient:write"])


def _initial_versions() -> set[int]:
    return {1}


@dataclass
class WorkloadResult:
    """What the workload's tasks were told: acknowledged versions, markers, conflicts, errors."""

    acknowledged: defaultdict[str, set[int]] = field(
        default_factory=lambda: defaultdict(_initial_versions)
    )
    markers: dict[tuple[str, int], str] = field(default_factory=dict)
    conflicts: list[tuple[str, int]] = field(default_factory=list)
    operations: Counter[str] = field(default_factory=Counter)
    unexpected: list[BaseException] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        """Operations that completed (conflicts included, unexpected errors not)."""
        return sum(self.operations.values())

    def summary(self) -> str:
        """One line for the test output: throughput and conflicts."""
        return (
            f"{self.total} operations by {TASKS} tasks in {self.elapsed:.2f} s "
            f"= {self.total / self.elapsed:.0f} ops/s; {self.operations['conflict']} version "
            "conflicts"
        )


async def run_mixed_workload(adapter: PostgreSQLAdapter) -> WorkloadResult:
    """Run the mixed workload of ``TASKS`` concurrent tasks; errors are collected, not raised."""
    result = WorkloadResult()
    shared = [make_patient(full_name=f"Shared {i}", name=[]) for i in range(SHARED)]
    await adapter.save_many(shared, ACTOR)
    acknowledged, markers = result.acknowledged, result.markers
    conflicts, operations = result.conflicts, result.operations

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
            except Exception as exc:  # collected: the tests assert there are none
                result.unexpected.append(exc)

    started = time.perf_counter()
    await asyncio.gather(*(worker(seed) for seed in range(TASKS)))
    result.elapsed = time.perf_counter() - started
    return result


async def audit_workload(db: asyncpg.Connection, result: WorkloadResult) -> None:
    """Assert, in SQL on a direct connection, that the database agrees with what was acknowledged.

    Raises AssertionError naming the first discrepancy (this module is not assertion-rewritten
    by pytest, so every assertion carries its own message).
    """
    assert result.unexpected == [], f"unexpected errors: {result.unexpected[:5]!r}"
    # Every acknowledged write is stored at its version, with the content that was written.
    for (resource_id, version), marker in result.markers.items():
        document_name = await db.fetchval(
            "SELECT document->>'full_name' FROM hacs_core.resource_versions "
            "WHERE resource_type = 'Patient' AND id = $1 AND version = $2",
            resource_id,
            version,
        )
        assert document_name == marker, (resource_id, version, document_name, marker)
    # Histories are complete: versions 1..current with no gap, and current = highest acked.
    for resource_id, versions in result.acknowledged.items():
        stored = [
            r["version"]
            for r in await db.fetch(
                "SELECT version FROM hacs_core.resource_versions WHERE resource_type = 'Patient' "
                "AND id = $1 ORDER BY version",
                resource_id,
            )
        ]
        assert stored == list(range(1, max(versions) + 1)), (resource_id, stored, versions)
        current = await db.fetchval(
            "SELECT version FROM hacs_core.patients WHERE id = $1", resource_id
        )
        assert current == max(versions), (resource_id, current, versions)
    # Each conflict lost to a writer that was acknowledged for that very version.
    for resource_id, expected in result.conflicts:
        assert expected + 1 in result.acknowledged[resource_id], (resource_id, expected)
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
    operations = result.operations
    expected_audit = {
        ("create", "success"): operations["save"] + SHARED,  # + the setup batch
        ("update", "success"): operations["update"],
        ("update", "conflict"): operations["conflict"],
        ("read", "success"): operations["read"],
        ("search", "success"): operations["search"],
    }
    assert {key: audit[key] for key in expected_audit} == expected_audit, dict(audit)
    assert sum(audit.values()) == result.total + SHARED, dict(audit)
    assert operations["conflict"] > 0, "the workload did not make writers race"
