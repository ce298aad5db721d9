"""Semantic search with pgvector: HNSW nearest neighbours, filters in the same SQL, recall."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from hacs_models import Actor, MemoryBlock
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import (
    InvalidQueryError,
    PermissionDeniedError,
    ResourceValidationError,
)
from hacs_persistence.migrations import upgrade

DIM = 32
AGENT = Actor(name="agent", role="agent", permissions=["memoryblock:write"])


def hashing_embedder(dim: int = DIM) -> Callable[[str], list[float]]:
    """A deterministic embedding function (bag of hashed words), standing in for a model."""

    def embed(text: str) -> list[float]:
        vector = [0.0] * dim
        for word in text.lower().split():
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % dim] += 1.0 if digest[1] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    return embed


def clustered_vectors(n: int, clusters: int, rng: random.Random) -> list[list[float]]:
    centres = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(clusters)]
    return [[c + rng.gauss(0, 0.35) for c in centres[i % clusters]] for i in range(n)]


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return 1 - dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture
async def vector_adapter(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[PostgreSQLAdapter]:
    monkeypatch.setenv("HACS_VECTOR_DIM", str(DIM))
    await upgrade(empty_database_url)
    monkeypatch.delenv("HACS_VECTOR_DIM")
    adapter = await create_postgres_adapter(empty_database_url)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_text_query_without_an_embedder_is_refused(
    vector_adapter: PostgreSQLAdapter,
) -> None:
    with pytest.raises(InvalidQueryError, match="embedder"):
        await vector_adapter.search_similar(MemoryBlock, "some text", AGENT)


async def test_dimension_is_read_back_and_enforced(vector_adapter: PostgreSQLAdapter) -> None:
    assert vector_adapter.vector_dim == DIM
    with pytest.raises(ResourceValidationError, match="dimensions"):
        await vector_adapter.save(MemoryBlock(content="x", embedding=[0.1] * (DIM + 1)), AGENT)
    with pytest.raises(InvalidQueryError, match="dimensions"):
        await vector_adapter.search_similar(MemoryBlock, [0.1] * 3, AGENT)


async def test_pluggable_embedder_finds_the_closest_memory(
    vector_adapter: PostgreSQLAdapter,
) -> None:
    # The adapter embeds memories without an embedding, and text queries, with the callable.
    vector_adapter.embedder = hashing_embedder()
    texts = [
        "patient prefers morning appointments",
        "allergic to penicillin severe rash",
        "lives alone with two cats",
        "takes metformin for type two diabetes",
    ]
    memories = [MemoryBlock(content=t, agent_id="a1") for t in texts]
    await vector_adapter.save_many(memories, AGENT)
    assert all(m.embedding is not None and len(m.embedding) == DIM for m in memories)
    hits = await vector_adapter.search_similar(MemoryBlock, "penicillin allergy rash", AGENT, k=2)
    assert hits[0][0].content == "allergic to penicillin severe rash"
    assert hits[0][1] <= hits[1][1]


async def test_hnsw_recall_against_exact_search_with_filters(
    vector_adapter: PostgreSQLAdapter,
) -> None:
    rng = random.Random(20261125)
    vectors = clustered_vectors(3000, clusters=30, rng=rng)
    memories = [
        MemoryBlock(
            content=f"memory {i}",
            agent_id=f"agent-{i % 3}",
            tags=["vitals" if i % 2 else "notes"],
            embedding=v,
        )
        for i, v in enumerate(vectors)
    ]
    await vector_adapter.save_many(memories, AGENT)
    recalls = []
    for query in clustered_vectors(20, clusters=30, rng=rng):
        filters = {"agent_id": "agent-1", "tags__contains": ["vitals"]}
        hits = await vector_adapter.search_similar(MemoryBlock, query, AGENT, k=10, filters=filters)
        assert all(m.agent_id == "agent-1" and "vitals" in m.tags for m, _ in hits)
        assert [d for _, d in hits] == sorted(d for _, d in hits)
        eligible = [m for m in memories if m.agent_id == "agent-1" and "vitals" in m.tags]
        exact = sorted(eligible, key=lambda m: cosine_distance(query, m.embedding or []))[:10]
        recalls.append(len({m.id for m, _ in hits} & {m.id for m in exact}) / 10)
    assert sum(recalls) / len(recalls) >= 0.98


async def test_similarity_search_needs_read_permission(
    vector_adapter: PostgreSQLAdapter,
) -> None:
    stranger = Actor(name="s", role="agent", permissions=["patient:read"])
    with pytest.raises(PermissionDeniedError):
        await vector_adapter.search_similar(MemoryBlock, [0.0] * DIM, stranger)


class _InjectingInt(int):
    """An ``int`` whose text is SQL: passes ``isinstance(int)``, must never reach SQL as text."""

    def __str__(self) -> str:
        return "10; SELECT 1/0"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self)


async def test_ef_search_reaches_sql_only_as_a_plain_int(
    vector_adapter: PostgreSQLAdapter,
) -> None:
    # The old code formatted ef_search into the SQL text after an isinstance(int) check, so an
    # int subclass chose the text; now it is converted with int() and sent as a bound parameter.
    vector_adapter.embedder = hashing_embedder()
    await vector_adapter.save_many([MemoryBlock(content="penicillin rash", agent_id="a1")], AGENT)
    query = hashing_embedder()("penicillin")
    hits = await vector_adapter.search_similar(
        MemoryBlock, query, AGENT, k=1, ef_search=_InjectingInt(40)
    )
    assert len(hits) == 1
