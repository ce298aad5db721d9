"""Filtered similarity search picks, per query, an exact scan or the HNSW iterative scan."""

from __future__ import annotations

import json
import math
import random
from collections.abc import AsyncIterator, Mapping, Sequence

import asyncpg
import pytest

from hacs_models import Actor, MemoryBlock
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.db.executor import compiled
from hacs_persistence.migrations import upgrade
from hacs_persistence.query import similarity
from hacs_persistence.query.similarity import build_similarity, choose_strategy
from tests.factories import make_patient

DIM = 32
AGENT = Actor(name="agent", role="agent", permissions=["memoryblock:write"])
SELECTIVE = {"agent_id": "agent-1", "tags__contains": ["vitals"]}  # 1 row in 15
UNSELECTIVE = {"memory_type": "episodic"}  # 1 row in 2
# 3,000 rows: the selective filter matches 200, the unselective 1,500. The exact-scan limit is
# lowered for the test so that these sizes fall on either side of it.
EXACT_MAX_ROWS = 500


def clustered(n: int, rng: random.Random, clusters: int = 30) -> list[list[float]]:
    centres = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(clusters)]
    return [[c + rng.gauss(0, 0.35) for c in centres[rng.randrange(clusters)]] for _ in range(n)]


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1 - dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def matches(memory: MemoryBlock, filters: Mapping[str, object]) -> bool:
    if filters is SELECTIVE:
        return memory.agent_id == "agent-1" and "vitals" in memory.tags
    return memory.memory_type == "episodic"


@pytest.fixture
async def loaded(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[PostgreSQLAdapter, list[MemoryBlock], str]]:
    monkeypatch.setenv("HACS_VECTOR_DIM", str(DIM))
    await upgrade(empty_database_url)
    monkeypatch.delenv("HACS_VECTOR_DIM")
    monkeypatch.setattr(similarity, "EXACT_MAX_ROWS", EXACT_MAX_ROWS)
    adapter = await create_postgres_adapter(empty_database_url)
    rng = random.Random(20261203)
    memories = [
        MemoryBlock(
            content=f"memory {i}",
            agent_id=f"agent-{i % 5}",
            memory_type="episodic" if i % 2 else "semantic",
            tags=[("vitals", "notes", "meds")[(i // 5) % 3]],
            embedding=v,
        )
        for i, v in enumerate(clustered(3000, rng))
    ]
    await adapter.save_many(memories, AGENT)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute("ANALYZE hacs_agents.memory_blocks")
    finally:
        await conn.close()
    try:
        yield adapter, memories, empty_database_url
    finally:
        await adapter.close()


async def strategies(url: str, actor: Actor) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        details = await conn.fetch(
            "SELECT detail FROM hacs_audit.audit_events WHERE actor_id = $1 "
            "AND action = 'search_similar' AND outcome = 'success' ORDER BY id",
            actor.id,
        )
    finally:
        await conn.close()
    return [row["detail"].rsplit("strategy=", 1)[1] for row in details]


def test_choose_strategy_follows_the_estimated_matches() -> None:
    assert choose_strategy(10, k=10) == "exact"
    assert choose_strategy(similarity.EXACT_MAX_ROWS, k=10) == "exact"
    assert choose_strategy(similarity.EXACT_MAX_ROWS + 1, k=10) == "hnsw"
    assert choose_strategy(1_000_000, k=10) == "hnsw"


async def test_selective_filter_uses_an_exact_scan_equal_to_ground_truth(
    loaded: tuple[PostgreSQLAdapter, list[MemoryBlock], str],
) -> None:
    adapter, memories, url = loaded
    eligible = [m for m in memories if matches(m, SELECTIVE)]
    assert len(eligible) == 200
    for query in clustered(10, random.Random(7)):
        hits = await adapter.search_similar(MemoryBlock, query, AGENT, k=10, filters=SELECTIVE)
        truth = sorted(eligible, key=lambda m: cosine_distance(query, m.embedding or []))[:10]
        assert [m.id for m, _ in hits] == [m.id for m in truth]
        for (_, distance), m in zip(hits, truth, strict=True):
            assert distance == pytest.approx(cosine_distance(query, m.embedding or []), abs=1e-5)
    assert await strategies(url, AGENT) == ["exact"] * 10


async def test_unselective_filter_uses_hnsw_with_recall_of_at_least_098(
    loaded: tuple[PostgreSQLAdapter, list[MemoryBlock], str],
) -> None:
    adapter, memories, url = loaded
    eligible = [m for m in memories if matches(m, UNSELECTIVE)]
    assert len(eligible) == 1500
    recalls = []
    for query in clustered(20, random.Random(8)):
        hits = await adapter.search_similar(MemoryBlock, query, AGENT, k=10, filters=UNSELECTIVE)
        assert all(m.memory_type == "episodic" for m, _ in hits)
        assert [d for _, d in hits] == sorted(d for _, d in hits)
        truth = sorted(eligible, key=lambda m: cosine_distance(query, m.embedding or []))[:10]
        recalls.append(len({m.id for m, _ in hits} & {m.id for m in truth}) / 10)
    assert sum(recalls) / len(recalls) >= 0.98
    assert await strategies(url, AGENT) == ["hnsw"] * 20


async def test_only_the_hnsw_statement_can_use_the_hnsw_index(
    loaded: tuple[PostgreSQLAdapter, list[MemoryBlock], str],
) -> None:
    adapter, _, url = loaded
    mapping = adapter.mapping(MemoryBlock)
    plan = build_similarity(mapping, [0.1] * DIM, 10, UNSELECTIVE, DIM, audited=False)
    conn = await asyncpg.connect(url)
    try:
        plans = {}
        for strategy in ("exact", "hnsw"):
            prepared = compiled(plan.statement(strategy))
            async with conn.transaction():
                await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                explained = await conn.fetchval(
                    "EXPLAIN (FORMAT JSON) " + prepared.sql, *prepared.arguments(plan.params)
                )
            plans[strategy] = json.dumps(json.loads(explained))
    finally:
        await conn.close()
    assert "ix_memory_blocks_embedding_hnsw" not in plans["exact"]
    assert "ix_memory_blocks_embedding_hnsw" in plans["hnsw"]


async def test_scoped_actor_sees_only_its_rows_with_either_strategy(
    loaded: tuple[PostgreSQLAdapter, list[MemoryBlock], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter, _, url = loaded
    mine, theirs = make_patient(), make_patient()
    await adapter.save_many([mine, theirs], Actor(name="a", role="system", permissions=["*:*"]))
    rng = random.Random(9)
    rows = [
        MemoryBlock(
            content=f"{owner.id} {i}",
            subject=f"Patient/{owner.id}",
            agent_id="agent-1",
            memory_type="episodic",
            tags=["vitals"],
            embedding=v,
        )
        for owner in (mine, theirs)
        for i, v in enumerate(clustered(20, rng))
    ]
    await adapter.save_many(rows, AGENT)
    actor = Actor(name="app", role="patient", permissions=["*:read"], patient_ids=[mine.id])
    for strategy in ("exact", "hnsw"):
        # Forced: under the scope few rows match, so the estimate alone would pick exact.
        monkeypatch.setattr(similarity, "choose_strategy", lambda rows, k, s=strategy: s)
        hits = await adapter.search_similar(
            MemoryBlock, rows[0].embedding or [], actor, k=10, filters=UNSELECTIVE
        )
        assert len(hits) == 10
        assert all(m.subject and m.subject.reference == f"Patient/{mine.id}" for m, _ in hits)
    # Both strategies ran, and each wrote its audit row with the ids it returned.
    assert await strategies(url, actor) == ["exact", "hnsw"]
    conn = await asyncpg.connect(url)
    try:
        audited = await conn.fetch(
            "SELECT resource_ids, patient_ids FROM hacs_audit.audit_events "
            "WHERE actor_id = $1 AND action = 'search_similar' ORDER BY id",
            actor.id,
        )
    finally:
        await conn.close()
    assert [len(r["resource_ids"]) for r in audited] == [10, 10]
    assert all(set(r["patient_ids"]) == {mine.id} for r in audited)
