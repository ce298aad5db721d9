"""Raw asyncpg baselines of filtered similarity search: an exact scan and an HNSW iterative scan.

The ratio of target 7 is taken against the faster of the two for each filter, measured in the
same run, so hacs passes only if it picks (per query) about as well as someone who knew the
filter's selectivity in advance. The exact scan is also the ground truth of recall@10.
"""

from __future__ import annotations

import random
from typing import Any

import asyncpg

from hacs_models import MemoryBlock

__all__ = ["FILTERS", "STRATEGIES", "literal", "near_queries", "raw_similar"]

# (label, hacs filters, SQL condition, its arguments): 1 row in 15 match, and 1 in 2.
FILTERS: list[tuple[str, dict[str, Any], str, list[Any]]] = [
    (
        "selective 1/15",
        {"agent_id": "agent-1", "tags__contains": ["vitals"]},
        "agent_id = $2 AND tags @> $3::text[]",
        ["agent-1", ["vitals"]],
    ),
    ("unselective 1/2", {"memory_type": "episodic"}, "memory_type = $2", ["episodic"]),
]
STRATEGIES = ("exact", "hnsw")
# What hacs uses for k=10 (hacs_persistence.query.similarity: at least 40 x k).
EF_SEARCH = 400

# The same work as hacs: the nearest rows, their documents, and the audit row of the query
# (count, ids and patients returned), in one statement.
_SQL = """
    WITH nearest AS MATERIALIZED (
        SELECT id, resource_type, version, {distance} AS distance, patient_id
        FROM hacs_agents.memory_blocks
        WHERE resource_type = 'MemoryBlock' AND deleted_at IS NULL
          AND embedding IS NOT NULL AND {condition}
        ORDER BY distance LIMIT 10
    ), a AS (
        INSERT INTO hacs_audit.audit_events
            (actor_id, actor_name, actor_role, action, resource_type, outcome, result_count,
             detail, resource_ids, patient_ids)
        SELECT 'bench', 'bench', 'system', 'search_similar', 'MemoryBlock', 'success',
               count(*), 'raw', array_agg(id), array_remove(array_agg(patient_id), NULL)
        FROM nearest)
    SELECT v.document::text AS document, n.distance FROM nearest n
    JOIN hacs_core.resource_versions v
      ON v.resource_type = n.resource_type AND v.id = n.id AND v.version = n.version
    ORDER BY n.distance, n.id"""
# The function form cannot be served by the HNSW index: an exact scan of the matching rows.
_DISTANCE = {
    "exact": "cosine_distance(embedding, $1::vector)",
    "hnsw": "embedding <=> $1::vector",
}


def near_queries(stored: list[list[float]], n: int, rng: random.Random) -> list[list[float]]:
    """Queries near stored memories (as a question is near what was remembered about it).

    Not fresh random points: those are far from every memory, where the nearest ten are
    arbitrary and no index finds them (HNSW recall measured ~0.1 there).
    """
    return [[x + rng.gauss(0, 0.35) for x in rng.choice(stored)] for _ in range(n)]


def literal(vector: list[float]) -> str:
    """A vector as pgvector's text form."""
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


async def raw_similar(
    pool: asyncpg.Pool, query: list[float], condition: str, args: list[Any], strategy: str
) -> list[str]:
    """The ids of the 10 nearest matching memories by one raw strategy, documents parsed."""
    sql = _SQL.format(distance=_DISTANCE[strategy], condition=condition)
    async with pool.acquire() as conn:
        if strategy == "exact":  # no settings: no transaction either
            rows = await conn.fetch(sql, literal(query), *args)
        else:
            async with conn.transaction():
                await conn.execute(
                    "SET LOCAL hnsw.iterative_scan = strict_order; "
                    f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"
                )
                rows = await conn.fetch(sql, literal(query), *args)
    return [MemoryBlock.model_validate_json(r["document"]).id for r in rows]
