"""Similarity search: the k nearest resources by cosine distance, with the ordinary filters.

One place decides, per query, how the nearest rows are found. The planner's estimate of how
many rows the filters match (an ``EXPLAIN`` of the filtered count, with the real values bound)
chooses between:

* ``exact``: the matching rows are read through the filter's own indexes (btree, GIN) and
  sorted by distance. The distance is computed with ``cosine_distance()``, an expression the
  HNSW index cannot serve, so the answer is exact. Used when few rows match (selective filters),
  where walking the HNSW graph would visit far more tuples than there are candidates.
* ``hnsw``: the HNSW index with pgvector's iterative scan in strict order
  (``SET LOCAL hnsw.iterative_scan = strict_order``), so filtered-out tuples make the scan go on
  instead of returning fewer than k rows. Used when many rows match.

The chosen strategy is written into the audit row's detail (``strategy=exact|hnsw``). The
estimate of a filter (its shape and a digest of its values, per database) is kept for
:data:`ESTIMATE_TTL` seconds, so an agent repeating its filter pays for the ``EXPLAIN`` once;
the planner's statistics change only with ``ANALYZE`` anyway. Only the HNSW strategy opens a
transaction (its settings are ``SET LOCAL``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from hacs_persistence.db.executor import compiled
from hacs_persistence.db.unit import Unit
from hacs_persistence.errors import InvalidQueryError, translating
from hacs_persistence.limits import SEARCH_CACHE_SIZE
from hacs_persistence.query.search import (
    MAX_PAGE_SIZE,
    FilterShape,
    _conditions,
    describe_shape,
    parse_filters,
)
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import counted_audit, patient_ref, with_documents

__all__ = [
    "EXACT_MAX_ROWS",
    "SimilarityPlan",
    "Strategy",
    "build_similarity",
    "choose_strategy",
    "run_similarity",
]

Strategy = Literal["exact", "hnsw"]

# Up to this many estimated matching rows, an exact scan of them is cheaper than the HNSW graph
# walk: scoring a few thousand rows costs a few milliseconds, while an iterative HNSW scan with
# a filter matching 1 row in 15 visits ~15 times ef_search tuples, each a random graph step.
EXACT_MAX_ROWS = 5000
# The most tuples an iterative scan may visit before it gives up (pgvector's default is 20,000):
# enough for a filter near EXACT_MAX_ROWS on a large table to still return k rows.
MAX_SCAN_TUPLES = 50_000


# How long a filter's estimate is reused, and how many filters are remembered.
ESTIMATE_TTL = 30.0
_ESTIMATES_MAX = 1024
_estimates: OrderedDict[bytes, tuple[float, float]] = OrderedDict()


def choose_strategy(estimated_rows: float, k: int) -> Strategy:
    """``exact`` when few rows match the filters (at most :data:`EXACT_MAX_ROWS`), else ``hnsw``."""
    return "exact" if estimated_rows <= max(EXACT_MAX_ROWS, k) else "hnsw"


# The smallest candidate list per row asked for: at ef_search = 10 x k the benchmark's recall@10
# on 50,000 clustered 384-dim vectors was 0.97, at 20 x k 0.976-0.995 (by query sample).
EF_PER_ROW = 40


def _ef_search(requested: int, k: int) -> int:
    # At least EF_PER_ROW x k candidates (recall); pgvector's ceiling is 1,000.
    return min(max(int(requested), EF_PER_ROW * k), 1000)


@dataclass(frozen=True)
class SimilarityPlan:
    """A validated similarity search: its statements (per strategy), parameters and settings."""

    mapping: ResourceMapping
    shape: FilterShape
    scoped: bool
    audited: bool
    params: dict[str, Any]
    k: int
    ef_search: int

    def statement(self, strategy: Strategy) -> Select[Any]:
        """The statement of one strategy (cached per filter shape)."""
        return _similarity_statement(
            self.mapping, self.shape, self.scoped, strategy == "exact", self.audited
        )

    def detail(self, strategy: Strategy) -> str:
        """The audit detail: the query's shape, k and the strategy, never the values."""
        base = describe_shape(self.shape, "distance", self.scoped)
        return f"{base};k={self.k};strategy={strategy}"


def _where(
    mapping: ResourceMapping, shape: FilterShape, patient_scoped: bool
) -> list[ColumnElement[bool]]:
    table = mapping.table
    where = [
        table.c.resource_type == bindparam("p_rt", type_=Text),
        table.c.deleted_at.is_(None),
        table.c.embedding.is_not(None),
        *_conditions(mapping, shape),
    ]
    if patient_scoped and mapping.scope_column is not None:
        where.append(mapping.scope_column == any_(bindparam("p_patients", type_=ARRAY(Text))))
    return where


@lru_cache(maxsize=SEARCH_CACHE_SIZE)
def _estimate_statement(
    mapping: ResourceMapping, shape: FilterShape, patient_scoped: bool
) -> Select[Any]:
    """The rows the filters match; only ever planned (``EXPLAIN``), never run."""
    return select(mapping.table.c.id).where(*_where(mapping, shape, patient_scoped))


# Bounded: every new filter shape builds a statement (about 22 KB with its compiled form).
@lru_cache(maxsize=SEARCH_CACHE_SIZE)
def _similarity_statement(
    mapping: ResourceMapping,
    shape: FilterShape,
    patient_scoped: bool,
    exact: bool,
    audited: bool = True,
) -> Select[Any]:
    table = mapping.table
    query_vector = bindparam("p_vector", type_=table.c.embedding.type)
    if exact:
        # The function, not the <=> operator: the HNSW index cannot order by it, so the matching
        # rows are scored one by one and the answer is exact.
        distance = func.cosine_distance(table.c.embedding, query_vector).label("distance")
    else:
        distance = table.c.embedding.cosine_distance(query_vector).label("distance")
    nearest = (
        select(table.c.id, table.c.resource_type, table.c.version, distance, patient_ref(mapping))
        .where(*_where(mapping, shape, patient_scoped))
        .order_by(distance)
        .limit(bindparam("p_limit", type_=Integer))
        .cte("nearest")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    source, document = with_documents(nearest)
    result = (
        select(
            cast(document, Text).label("document"),
            nearest.c.distance,
            nearest.c.id,
            nearest.c.patient_ref,
        )
        .select_from(source)
        .order_by(nearest.c.distance, nearest.c.id)
    )
    return result.add_cte(counted_audit(nearest)) if audited else result


def build_similarity(
    mapping: ResourceMapping,
    vector: Sequence[float],
    k: int,
    filters: Mapping[str, Any] | None,
    dim: int | None,
    patient_ids: Sequence[str] | None = None,
    *,
    ef_search: int = 100,
    audited: bool = True,
) -> SimilarityPlan:
    """Validate a similarity search; :func:`run_similarity` picks the strategy and runs it."""
    if "embedding" not in mapping.table.c:
        raise InvalidQueryError(f"{mapping.resource_type} has no embedding to search.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"k must be an integer from 1 to {MAX_PAGE_SIZE}.")
    if isinstance(ef_search, bool) or not isinstance(ef_search, int) or ef_search < 1:
        raise InvalidQueryError("ef_search must be a positive integer.")
    try:
        values = [float(v) for v in vector]
    except (TypeError, ValueError):
        raise InvalidQueryError("vector must be a sequence of numbers.") from None
    if dim is not None and len(values) != dim:
        raise InvalidQueryError(f"vector has {len(values)} dimensions; the database has {dim}.")
    shape, params = parse_filters(mapping, filters)
    scoped = patient_ids is not None
    params.update(p_vector=values, p_rt=mapping.resource_type, p_limit=k)
    if patient_ids is not None:
        params["p_patients"] = list(patient_ids)
    return SimilarityPlan(mapping, shape, scoped, audited, params, k, _ef_search(ef_search, k))


def _estimate_key(unit: Unit, plan: SimilarityPlan) -> bytes:
    # A digest, never the values themselves: filter values can be patient data.
    values = {name: plan.params[name] for name in sorted(plan.params) if name != "p_vector"}
    identity = [
        str(unit.conn.engine.url),
        plan.mapping.resource_type,
        plan.shape,
        plan.scoped,
        repr(values),
    ]
    return hashlib.sha256(repr(identity).encode()).digest()


async def estimate_rows(unit: Unit, plan: SimilarityPlan) -> float:
    """The planner's estimate of the rows the filters match (one ``EXPLAIN``, nothing read)."""
    key = _estimate_key(unit, plan)
    now = time.monotonic()
    cached = _estimates.get(key)
    if cached is not None and now - cached[1] < ESTIMATE_TTL:
        return cached[0]
    prepared = compiled(_estimate_statement(plan.mapping, plan.shape, plan.scoped))
    with translating():
        async with unit.lock:
            explained = await unit.driver.fetchval(
                "EXPLAIN (FORMAT JSON) " + prepared.sql, *prepared.arguments(plan.params)
            )
    # The pool's connections decode json themselves; a bare connection returns the text.
    tree = json.loads(explained) if isinstance(explained, str) else explained
    rows = float(tree[0]["Plan"]["Plan Rows"])
    _estimates[key] = (rows, now)
    _estimates.move_to_end(key)
    while len(_estimates) > _ESTIMATES_MAX:
        _estimates.popitem(last=False)
    return rows


async def run_similarity(unit: Unit, plan: SimilarityPlan) -> tuple[list[Any], Strategy]:
    """Pick the strategy from the filters' estimated selectivity and run it in ``unit``.

    The HNSW strategy runs in a transaction of its own (a savepoint inside a caller's): its
    settings are ``SET LOCAL`` (``set_config(..., true)``) and end with it. Returns the rows and
    the strategy used.
    """
    strategy = choose_strategy(await estimate_rows(unit, plan), plan.k)
    params = {**plan.params, "p_detail": plan.detail(strategy)}
    statement = plan.statement(strategy)
    if strategy == "exact":
        return await unit.fetch(statement, params), strategy
    prepared = compiled(statement)
    with translating():
        async with unit.lock, unit.driver.transaction():
            # Values as bound parameters, never formatted into the SQL.
            await unit.driver.execute(
                "SELECT set_config('hnsw.iterative_scan', 'strict_order', true), "
                "set_config('hnsw.ef_search', $1, true), "
                "set_config('hnsw.max_scan_tuples', $2, true)",
                str(plan.ef_search),
                str(MAX_SCAN_TUPLES),
            )
            rows = await unit.driver.fetch(prepared.sql, *prepared.arguments(params))
    return list(rows), strategy
