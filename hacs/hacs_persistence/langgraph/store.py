"""``HacsStore``: LangGraph's ``BaseStore`` on ``MemoryBlock`` resources.

Each item is one ``MemoryBlock`` written and read through the adapter, so it is versioned,
permission-checked (``memoryblock:read``/``write``/``delete``), patient-scoped and audited like
any clinical resource. The block's id is derived from (namespace, key); the namespace and the
item's top-level scalar values are also kept as tags, so namespace prefixes and equality filters
run in SQL (the GIN index on ``tags``) and, for a similarity search, inside pgvector's iterative
index scan: a filtered search returns ``limit`` items whenever that many match. Comparison
filters (``$gt``, ``$ne``...) and TTL expiry are applied to what SQL returns, fetching more
until ``limit`` items are found or none are left.

Similarity search needs the adapter's embedder (``create_postgres_adapter(embedder=...)``): the
adapter embeds each block's ``content`` (the item's value as JSON) when it is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from hacs_auth import Actor
from hacs_models import MemoryBlock
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import (
    ResourceNotFoundError,
    UniqueViolationError,
    VersionConflictError,
)

__all__ = ["STORE_TAG", "HacsStore"]

# Every block the store writes carries this tag; other memory blocks are not store items.
STORE_TAG = "langgraph-store"
_MAX_FETCH = 1000
_SAVEPOINT = "hacs_store_write"
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
}


def _block_id(namespace: tuple[str, ...], key: str) -> str:
    # A FHIR id (64 characters at most) that is the same for the same (namespace, key).
    digest = hashlib.sha256(json.dumps([list(namespace), key]).encode()).hexdigest()
    return f"lgs-{digest[:56]}"


def _namespace_tags(namespace: Sequence[str]) -> list[str]:
    return [f"ns{i}:{label}" for i, label in enumerate(namespace)]


def _value_tag(field: str, value: Any) -> str:
    return f"v:{field}={json.dumps(value, sort_keys=True)}"


def _tags(namespace: tuple[str, ...], value: dict[str, Any]) -> list[str]:
    scalars = [
        _value_tag(k, v)
        for k, v in value.items()
        if isinstance(v, str | int | float | bool) and len(str(v)) <= 200
    ]
    return [STORE_TAG, f"depth:{len(namespace)}", *_namespace_tags(namespace), *scalars]


def _equalities(filter: dict[str, Any] | None) -> list[str]:
    """Tags for the filter's equality conditions on scalar values (the SQL part)."""
    tags = []
    for field, wanted in (filter or {}).items():
        if isinstance(wanted, dict):
            wanted = wanted.get("$eq") if set(wanted) == {"$eq"} else None
        if isinstance(wanted, str | int | float | bool):
            tags.append(_value_tag(field, wanted))
    return tags


def _matches(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    for field, wanted in (filter or {}).items():
        actual = value.get(field)
        conditions = wanted if isinstance(wanted, dict) else {"$eq": wanted}
        for operator, operand in conditions.items():
            if operator not in _COMPARE:
                raise ValueError(f"Unsupported filter operator {operator!r}.")
            try:
                if not _COMPARE[operator](actual, operand):
                    return False
            except TypeError:
                return False
    return True


class HacsStore(BaseStore):
    """A LangGraph store on hacs memory blocks, bound to one actor.

    Args:
        adapter: The ``PostgreSQLAdapter`` (with an ``embedder`` for similarity search).
        actor: The acting actor (default: the current one of ``hacs_auth.acting_as``).
        default_ttl: Minutes an item lives when ``put`` gives no ``ttl`` (None: for ever).
    """

    supports_ttl = True

    def __init__(
        self,
        adapter: PostgreSQLAdapter,
        actor: Actor | None = None,
        *,
        default_ttl: float | None = None,
    ) -> None:
        if not isinstance(adapter, PostgreSQLAdapter):
            raise TypeError("HacsStore needs the PostgreSQLAdapter (create_postgres_adapter()).")
        self.adapter = adapter
        self.actor = adapter.gate.actor(actor)
        self.default_ttl = default_ttl
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # -- items -----------------------------------------------------------------------------

    @staticmethod
    def _expired(block: MemoryBlock, now: datetime) -> bool:
        expires = (block.model_extra or {}).get("expires_at")
        return expires is not None and datetime.fromisoformat(expires) <= now

    @staticmethod
    def _item(block: MemoryBlock, score: float | None = None) -> SearchItem:
        extra = block.model_extra or {}
        return SearchItem(
            namespace=tuple(extra["namespace"]),
            key=extra["key"],
            value=extra["value"],
            created_at=block.created_at,
            updated_at=block.updated_at,
            score=score,
        )

    async def _get(self, op: GetOp) -> Item | None:
        try:
            block = await self.adapter.read(
                MemoryBlock, _block_id(op.namespace, op.key), self.actor
            )
        except ResourceNotFoundError:
            return None
        if self._expired(block, datetime.now(UTC)):
            return None
        extra = block.model_extra or {}
        if op.refresh_ttl and extra.get("ttl_minutes") is not None:
            block = await self._write(
                op.namespace, op.key, extra["value"], extra["ttl_minutes"], block
            )
        item = self._item(block)
        return Item(
            value=item.value,
            key=item.key,
            namespace=item.namespace,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )

    async def _write(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        ttl: float | None,
        current: MemoryBlock | None = None,
    ) -> MemoryBlock:
        expires = (
            (datetime.now(UTC) + timedelta(minutes=ttl)).isoformat() if ttl is not None else None
        )
        fields: dict[str, Any] = {
            "id": _block_id(namespace, key),
            "memory_type": "semantic",
            "content": json.dumps(value, sort_keys=True, default=str),
            "tags": _tags(namespace, value),
            "namespace": list(namespace),
            "key": key,
            "value": value,
            "ttl_minutes": ttl,
            "expires_at": expires,
        }
        if current is not None:
            fields["version"] = current.version
            return await self.adapter.update(MemoryBlock(**fields), self.actor)
        # A savepoint: inside a batch's transaction a failed INSERT would abort the whole
        # transaction, and the fallback below has to run in it.
        async with self.adapter.transaction() as conn:
            await conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
            try:
                saved = await self.adapter.save(MemoryBlock(**fields), self.actor)
            except (UniqueViolationError, VersionConflictError):
                await conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                # The id exists (deleted): a new version of it, restoring the deleted one.
                history = await self.adapter.history(MemoryBlock, fields["id"], self.actor)
                fields["version"] = max(entry.version for entry in history)
                return await self.adapter.update(MemoryBlock(**fields), self.actor)
            await conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            return saved

    async def _put(self, op: PutOp) -> None:
        block_id = _block_id(op.namespace, op.key)
        if op.value is None:
            # Deleting an absent item is a no-op in the BaseStore contract.
            with contextlib.suppress(ResourceNotFoundError):
                await self.adapter.delete(MemoryBlock, block_id, self.actor)
            return
        ttl = op.ttl if op.ttl is not None else self.default_ttl
        try:
            current: MemoryBlock | None = await self.adapter.read(MemoryBlock, block_id, self.actor)
        except ResourceNotFoundError:
            current = None
        await self._write(op.namespace, op.key, dict(op.value), ttl, current)

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        tags = [STORE_TAG, *_namespace_tags(op.namespace_prefix), *_equalities(op.filter)]
        wanted = op.offset + op.limit
        fetch = max(wanted, 10)
        while True:
            now = datetime.now(UTC)
            scored: list[tuple[MemoryBlock, float | None]]
            if op.query:
                found = await self.adapter.search_similar(
                    MemoryBlock,
                    op.query,
                    self.actor,
                    k=fetch,
                    filters={"tags__contains": tags},
                )
                scored = [(block, 1.0 - distance) for block, distance in found]
                exhausted = len(found) < fetch
            else:
                page = await self.adapter.search(
                    MemoryBlock,
                    self.actor,
                    filters={"tags__contains": tags},
                    order_by="-updated_at",
                    limit=fetch,
                )
                scored = [(block, None) for block in page.items]
                exhausted = page.next_cursor is None
            kept = [
                self._item(block, score)
                for block, score in scored
                if not self._expired(block, now)
                and _matches((block.model_extra or {})["value"], op.filter)
            ]
            if len(kept) >= wanted or exhausted or fetch >= _MAX_FETCH:
                return kept[op.offset : wanted]
            fetch = min(fetch * 4, _MAX_FETCH)

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        cursor: str | None = None
        now = datetime.now(UTC)
        # A prefix's labels are tags at known positions, so SQL (the GIN index) leaves out the
        # blocks of other namespaces; suffixes and wildcards are matched below.
        tags = [STORE_TAG]
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix":
                tags += [
                    tag
                    for tag, label in zip(
                        _namespace_tags(condition.path), condition.path, strict=True
                    )
                    if label != "*"
                ]
        while True:
            page = await self.adapter.search(
                MemoryBlock,
                self.actor,
                filters={"tags__contains": tags},
                limit=_MAX_FETCH,
                cursor=cursor,
            )
            for block in page.items:
                if not self._expired(block, now):
                    found.add(tuple((block.model_extra or {})["namespace"]))
            cursor = page.next_cursor
            if cursor is None:
                break
        result = set()
        for namespace in found:
            if not all(self._condition(namespace, c) for c in op.match_conditions or ()):
                continue
            result.add(namespace[: op.max_depth] if op.max_depth is not None else namespace)
        return sorted(result)[op.offset : op.offset + op.limit]

    @staticmethod
    def _condition(namespace: tuple[str, ...], condition: Any) -> bool:
        path = tuple(condition.path)
        if len(path) > len(namespace):
            return False
        part = (
            namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
        )
        return all(p in ("*", n) for p, n in zip(path, part, strict=True))

    # -- BaseStore ---------------------------------------------------------------------------

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; a batch that writes is one transaction (all puts or none)."""
        self._loop = self._loop or asyncio.get_running_loop()
        ops = list(ops)
        if not any(isinstance(op, PutOp) for op in ops):
            return await self._run(ops)
        async with self.adapter.transaction():
            return await self._run(ops)

    async def _run(self, ops: list[Op]) -> list[Result]:
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(await self._get(op))
            elif isinstance(op, PutOp):
                await self._put(op)
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append(await self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._list_namespaces(op))
            else:
                raise TypeError(f"Unknown store operation {type(op).__name__}.")
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Sync :meth:`abatch`: from another thread than the loop the store was created in."""
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed() or running is loop:
            raise asyncio.InvalidStateError(
                "HacsStore's sync methods run on its event loop from another thread "
                "(asyncio.to_thread); in that loop use the async ones (aget, aput, asearch)."
            )
        return asyncio.run_coroutine_threadsafe(self.abatch(list(ops)), loop).result()

    async def sweep_expired(self) -> int:
        """Delete (soft, audited, versioned) every store item whose TTL has passed."""
        removed = 0
        cursor: str | None = None
        now = datetime.now(UTC)
        expired: list[str] = []
        while True:
            page = await self.adapter.search(
                MemoryBlock,
                self.actor,
                filters={"tags__contains": [STORE_TAG]},
                limit=_MAX_FETCH,
                cursor=cursor,
            )
            expired += [b.id for b in page.items if self._expired(b, now)]
            cursor = page.next_cursor
            if cursor is None:
                break
        for block_id in expired:
            await self.adapter.delete(MemoryBlock, block_id, self.actor)
            removed += 1
        return removed
