"""HacsStore against LangGraph's documented BaseStore contract, on real PostgreSQL.

get/put/delete by (namespace, key), search by namespace prefix with filters and by similarity
(a filtered similarity search returns ``limit`` items when that many match), list_namespaces,
TTL; every item a versioned, audited MemoryBlock.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from langgraph.store.base import PutOp

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceValidationError
from hacs_persistence.langgraph import HacsStore
from hacs_persistence.limits import MAX_DOCUMENT_DEPTH

AGENT = Actor(name="memory-agent", role="agent", permissions=["memoryblock:*"])
READER = Actor(name="memory-reader", role="agent", permissions=["memoryblock:read"])


def hashing_embedder(dim: int) -> Callable[[str], list[float]]:
    """A deterministic embedding (bag of hashed words), standing in for a model."""

    def embed(text: str) -> list[float]:
        vector = [0.0] * dim
        for word in text.lower().replace('"', " ").replace(":", " ").split():
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4]) % dim] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    return embed


@pytest.fixture
async def store_adapter(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    plain = await create_postgres_adapter(database_url)
    dim = plain.vector_dim or 1536
    await plain.close()
    adapter = await create_postgres_adapter(database_url, embedder=hashing_embedder(dim))
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_put_get_update_delete_by_namespace_and_key(
    store_adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    store = HacsStore(store_adapter, AGENT)
    ns = ("patients", "p-1", "preferences")
    assert await store.aget(ns, "language") is None
    await store.aput(ns, "language", {"value": "es"})
    first = await store.aget(ns, "language")
    assert first is not None and first.value == {"value": "es"}
    assert (first.namespace, first.key) == (ns, "language")
    await store.aput(ns, "language", {"value": "fr"})
    second = await store.aget(ns, "language")
    assert second is not None and second.value == {"value": "fr"}
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    await store.adelete(ns, "language")
    assert await store.aget(ns, "language") is None
    # Put again after a delete: the same block, restored as a new version.
    await store.aput(ns, "language", {"value": "de"})
    again = await store.aget(ns, "language")
    assert again is not None and again.value == {"value": "de"}
    versions = await db.fetchval(
        "SELECT count(*) FROM hacs_core.resource_versions WHERE resource_type = 'MemoryBlock'"
    )
    assert versions == 4
    actions = {
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM hacs_audit.audit_events WHERE actor_name = 'memory-agent' "
            "AND resource_type = 'MemoryBlock' AND outcome = 'success'"
        )
    }
    assert {"create", "update", "delete", "read"} <= actions


async def test_search_by_prefix_and_filters(store_adapter: PostgreSQLAdapter) -> None:
    store = HacsStore(store_adapter, AGENT)
    for i in range(6):
        await store.aput(("docs", "a" if i % 2 else "b"), f"d{i}", {"kind": "note", "n": i})
    await store.aput(("other",), "x", {"kind": "note", "n": 99})
    under_docs = await store.asearch(("docs",), limit=20)
    assert sorted(i.key for i in under_docs) == [f"d{i}" for i in range(6)]
    only_a = await store.asearch(("docs", "a"), filter={"kind": "note"}, limit=20)
    assert sorted(i.key for i in only_a) == ["d1", "d3", "d5"]
    big = await store.asearch(("docs",), filter={"n": {"$gte": 3}}, limit=20)
    assert sorted(i.key for i in big) == ["d3", "d4", "d5"]
    paged = await store.asearch(("docs",), limit=2, offset=4)
    assert len(paged) == 2


async def test_a_filtered_similarity_search_returns_k_items_when_k_match(
    store_adapter: PostgreSQLAdapter,
) -> None:
    store = HacsStore(store_adapter, AGENT)
    ns = ("memories",)
    # 300 items close to the query and 8 rare ones far from it: the nearest candidates are all
    # common ones, and the filter must still bring back 5 rare ones. (At this size PostgreSQL
    # may plan an exact scan; on large tables the adapter's iterative HNSW scan does the same.)
    for i in range(300):
        await store.aput(ns, f"c{i}", {"kind": "common", "text": f"weather today sunny {i}"})
    for i in range(8):
        await store.aput(ns, f"r{i}", {"kind": "rare", "text": f"allergy penicillin {i}"})
    found = await store.asearch(ns, query="weather today sunny", filter={"kind": "rare"}, limit=5)
    assert len(found) == 5
    assert {i.value["kind"] for i in found} == {"rare"}
    assert all(i.score is not None for i in found)
    nearest = await store.asearch(ns, query="allergy penicillin", limit=3)
    assert [i.value["kind"] for i in nearest] == ["rare"] * 3


async def test_list_namespaces_with_prefix_suffix_and_depth(
    store_adapter: PostgreSQLAdapter,
) -> None:
    store = HacsStore(store_adapter, AGENT)
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("f",)]:
        await store.aput(ns, "k", {"v": 1})
    assert await store.alist_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("f",)]
    assert await store.alist_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d")]
    assert await store.alist_namespaces(suffix=("d",)) == [("a", "b", "d")]
    assert await store.alist_namespaces(prefix=("a",), max_depth=2) == [("a", "b"), ("a", "e")]
    assert await store.alist_namespaces(prefix=("*", "b")) == [("a", "b", "c"), ("a", "b", "d")]


async def test_list_namespaces_reads_only_the_prefixs_blocks(
    store_adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    # The prefix is filtered in SQL: the search's audit row counts the blocks it returned.
    store = HacsStore(store_adapter, AGENT)
    for i in range(5):
        await store.aput(("other", str(i)), "k", {"v": i})
    await store.aput(("wanted", "x"), "k", {"v": 1})
    await store.aput(("wanted", "y"), "k", {"v": 2})
    assert await store.alist_namespaces(prefix=("wanted",)) == [("wanted", "x"), ("wanted", "y")]
    counted = await db.fetchval(
        "SELECT result_count FROM hacs_audit.audit_events WHERE action = 'search' "
        "AND resource_type = 'MemoryBlock' ORDER BY id DESC LIMIT 1"
    )
    assert counted == 2


async def test_an_item_past_its_ttl_is_gone_and_swept(store_adapter: PostgreSQLAdapter) -> None:
    store = HacsStore(store_adapter, AGENT)
    await store.aput(("tmp",), "short", {"v": 1}, ttl=0.002)
    await store.aput(("tmp",), "long", {"v": 2}, ttl=60)
    await asyncio.sleep(0.3)
    assert await store.aget(("tmp",), "short") is None
    assert [i.key for i in await store.asearch(("tmp",))] == ["long"]
    assert await store.sweep_expired() == 1
    assert await store.aget(("tmp",), "long") is not None


async def test_a_reader_cannot_put(store_adapter: PostgreSQLAdapter) -> None:
    store = HacsStore(store_adapter, READER)
    with pytest.raises(PermissionDeniedError):
        await store.aput(("x",), "k", {"v": 1})
    assert await HacsStore(store_adapter, AGENT).aget(("x",), "k") is None


async def test_a_batch_of_puts_is_one_transaction(
    store_adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    store = HacsStore(store_adapter, AGENT)
    ns = ("batch",)
    await store.aput(ns, "restored", {"v": 0})
    await store.adelete(ns, "restored")
    too_deep: dict[str, object] = {}
    node = too_deep
    for _ in range(MAX_DOCUMENT_DEPTH + 1):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with pytest.raises(ResourceValidationError):
        await store.abatch(
            [
                PutOp(ns, "first", {"v": 1}),
                # An id that exists deleted: the restore path runs inside the transaction.
                PutOp(ns, "restored", {"v": 2}),
                PutOp(ns, "bad", too_deep),
            ]
        )
    # Nothing of the failed batch is stored: not the put before it, not the restore.
    assert await store.aget(ns, "first") is None
    assert await store.aget(ns, "restored") is None
    stored = await db.fetchval(
        "SELECT count(*) FROM hacs_core.resource_versions WHERE resource_type = 'MemoryBlock'"
    )
    assert stored == 2  # the first put and its delete
    # The same batch without the bad item commits every put, the restore included.
    await store.abatch([PutOp(ns, "first", {"v": 1}), PutOp(ns, "restored", {"v": 2})])
    restored = await store.aget(ns, "restored")
    assert restored is not None and restored.value == {"v": 2}
    assert (await store.aget(ns, "first")) is not None
