"""``HacsCheckpointSaver``: LangGraph's ``BaseCheckpointSaver`` on ``hacs_agents`` tables.

Layout (as LangGraph's own Postgres saver): a checkpoint row without its channel values, one
blob row per channel *version* (an unchanged channel is not stored again) and one row per
pending write. Access: the saver is bound to one actor; a LangGraph thread is an
``AgentSession`` for permissions (``agentsession:read`` to read, ``:write`` to put, ``:delete`` to
delete or prune). Checkpoint state is whatever the graph holds, not a resource of one patient, so
a patient-scoped actor is refused. Every call writes an audit row: a change in its own
transaction, a read once its rows are fetched (before they are handed out).

Retention (:class:`Retention`): ``keep_last`` checkpoints per thread and namespace are kept by a
bounded delete that runs after each put has committed; ``ttl`` removes older checkpoints, for
the thread being written after each put and for every thread with :meth:`expire`, which the
application schedules. Both delete at most ``batch`` checkpoints per statement and skip rows
another transaction holds (``FOR UPDATE SKIP LOCKED``): retention never waits for a writer.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import Table, and_, delete, exists, func, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from hacs_auth import Actor
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import PermissionDeniedError, translating
from hacs_persistence.schema.agents import (
    CheckpointBlobTable,
    CheckpointTable,
    CheckpointWriteTable,
)
from hacs_persistence.storage.statements import audit_insert

__all__ = ["CHECKPOINT_RESOURCE_TYPE", "HacsCheckpointSaver", "Retention"]

# The resource type a thread's checkpoints are permitted and audited as.
CHECKPOINT_RESOURCE_TYPE = "AgentSession"

# Declarative __table__ is typed FromClause; these are Tables (as statements.AUDIT is).
CHECKPOINTS: Table = CheckpointTable.__table__  # type: ignore[assignment]
BLOBS: Table = CheckpointBlobTable.__table__  # type: ignore[assignment]
WRITES: Table = CheckpointWriteTable.__table__  # type: ignore[assignment]
METADATA = CHECKPOINTS.c["metadata"]

T = TypeVar("T")
# Checkpoints per page of alist (one query and one audit row each).
LIST_PAGE = 100
# alist's order: newest checkpoint first, then by thread and namespace (a total order, for keyset
# pages); _after continues it.
_LIST_ORDER = (
    CHECKPOINTS.c.checkpoint_id.desc(),
    CHECKPOINTS.c.thread_id,
    CHECKPOINTS.c.checkpoint_ns,
)


def _after(last: CheckpointTuple) -> ColumnElement[bool]:
    """The rows after ``last`` in ``_LIST_ORDER``."""
    configurable = last.config["configurable"]
    checkpoint_id = CHECKPOINTS.c.checkpoint_id
    thread_and_ns = tuple_(CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns)
    return or_(
        checkpoint_id < configurable["checkpoint_id"],
        and_(
            checkpoint_id == configurable["checkpoint_id"],
            thread_and_ns
            > tuple_(literal(configurable["thread_id"]), literal(configurable["checkpoint_ns"])),
        ),
    )


Key = tuple[str, str, str]  # thread_id, checkpoint_ns, checkpoint_id


@dataclass(frozen=True)
class Retention:
    """How many checkpoints a thread keeps, and for how long.

    Attributes:
        keep_last: Checkpoints kept per thread and namespace (the newest); ``None``: all.
        ttl: Checkpoints older than this are removed; ``None``: kept however old.
        batch: At most this many checkpoints are removed per statement, so one pass is short.
    """

    keep_last: int | None = None
    ttl: timedelta | None = None
    batch: int = 100

    def __post_init__(self) -> None:
        # Keeping none would delete the checkpoint the next put builds on (and its blobs).
        if self.keep_last is not None and self.keep_last < 1:
            raise ValueError("Retention.keep_last must be at least 1 (or None: keep all).")
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise ValueError("Retention.ttl must be positive (or None: no age limit).")
        if self.batch < 1:
            raise ValueError("Retention.batch must be at least 1.")


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    # Metadata is stored as JSON so that list(filter=...) runs in SQL; values JSON cannot hold
    # (a UUID run id) are stored as their text. jsonb refuses NUL characters.
    return json.dumps(metadata, default=str).replace("\\u0000", "")


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


class HacsCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on hacs tables, bound to one actor and audited.

    Args:
        adapter: The ``PostgreSQLAdapter`` whose engine and access gate the saver uses.
        actor: The acting actor (default: the current one of ``hacs_auth.acting_as``).
        retention: What to keep (default: everything).
        serde: LangGraph's serializer for checkpoints and values (default: its JSON+msgpack).

    The async methods are the implementation. The sync ones (``graph.invoke``) run them on the
    event loop the saver was created in and must be called from another thread (for example
    ``await asyncio.to_thread(graph.invoke, ...)``): that loop owns the database connections.
    """

    def __init__(
        self,
        adapter: PostgreSQLAdapter,
        actor: Actor | None = None,
        *,
        retention: Retention | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if not isinstance(adapter, PostgreSQLAdapter):
            raise TypeError(
                "HacsCheckpointSaver needs the PostgreSQLAdapter (create_postgres_adapter()), "
                f"not {type(adapter).__name__}: it runs through its access gate and audit."
            )
        self.adapter = adapter
        self.actor = adapter.gate.actor(actor)
        self.retention = retention or Retention()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # -- access ----------------------------------------------------------------------------

    async def _allow(self, permission: str, action: str, thread_id: str | None) -> Actor:
        """Refuse (audited) an actor without the permission, or one limited to patients."""
        self._loop = self._loop or asyncio.get_running_loop()
        gate = self.adapter.gate
        acting = self.actor
        await gate.authorize(acting, permission, CHECKPOINT_RESOURCE_TYPE, thread_id, action)
        if acting.patient_ids is not None:
            await gate.record(
                acting, action, CHECKPOINT_RESOURCE_TYPE, thread_id, "denied", "patient scope"
            )
            raise PermissionDeniedError(
                "The actor is limited to its patients; LangGraph checkpoints hold a graph's "
                "whole state and are not in a patient compartment.",
                actor_id=acting.id,
            )
        return acting

    def _audit(
        self, action: str, thread_id: str | None, detail: str | None, count: int | None = None
    ) -> dict[str, Any]:
        return self.adapter.gate.audit_params(
            self.actor, action, CHECKPOINT_RESOURCE_TYPE, thread_id, "success", detail, count
        )

    # -- reading ---------------------------------------------------------------------------

    async def _tuples(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[CheckpointTuple]:
        """Checkpoint rows with their channel values and pending writes (two more queries)."""
        if not rows:
            return []
        wanted = {
            (r.thread_id, r.checkpoint_ns, channel, version)
            for r in rows
            for channel, version in r.channel_versions.items()
        }
        blobs: dict[tuple[str, str, str, str], Any] = {}
        if wanted:
            found = await conn.execute(
                select(BLOBS).where(
                    tuple_(
                        BLOBS.c.thread_id, BLOBS.c.checkpoint_ns, BLOBS.c.channel, BLOBS.c.version
                    ).in_(sorted(wanted))
                )
            )
            for b in found:
                if b.type != "empty":
                    blobs[(b.thread_id, b.checkpoint_ns, b.channel, b.version)] = (
                        self.serde.loads_typed((b.type, b.blob))
                    )
        keys = sorted({(r.thread_id, r.checkpoint_ns, r.checkpoint_id) for r in rows})
        pending: dict[Key, list[tuple[str, str, Any]]] = {k: [] for k in keys}
        written = await conn.execute(
            select(WRITES)
            .where(
                tuple_(WRITES.c.thread_id, WRITES.c.checkpoint_ns, WRITES.c.checkpoint_id).in_(keys)
            )
            # LangGraph replays a step's writes in writes_sort_key order.
            .order_by(WRITES.c.task_path, WRITES.c.task_id, WRITES.c.idx)
        )
        for w in written:
            pending[(w.thread_id, w.checkpoint_ns, w.checkpoint_id)].append(
                (w.task_id, w.channel, self.serde.loads_typed((w.type, w.blob)))
            )
        tuples = []
        for r in rows:
            checkpoint: Checkpoint = self.serde.loads_typed((r.type, r.checkpoint))
            values = {}
            for channel, version in r.channel_versions.items():
                key = (r.thread_id, r.checkpoint_ns, channel, version)
                if key in blobs:
                    values[channel] = blobs[key]
            parent = r.parent_checkpoint_id
            tuples.append(
                CheckpointTuple(
                    config=_config(r.thread_id, r.checkpoint_ns, r.checkpoint_id),
                    checkpoint={**checkpoint, "channel_values": values},
                    metadata=r._mapping["metadata"],
                    parent_config=(
                        _config(r.thread_id, r.checkpoint_ns, parent) if parent else None
                    ),
                    pending_writes=pending[(r.thread_id, r.checkpoint_ns, r.checkpoint_id)],
                )
            )
        return tuples

    async def _read(
        self,
        action: str,
        thread_id: str | None,
        conditions: list[ColumnElement[bool]],
        limit: int | None,
        detail: str,
    ) -> list[CheckpointTuple]:
        await self._allow("read", action, thread_id)
        statement = select(CHECKPOINTS).where(*conditions).order_by(*_LIST_ORDER).limit(limit)
        async with translating(), self.adapter.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
            tuples = await self._tuples(conn, rows)
        await self.adapter.gate.record(
            self.actor,
            action,
            CHECKPOINT_RESOURCE_TYPE,
            thread_id,
            "success",
            detail,
            count=len(tuples),
            resource_ids=[t.config["configurable"]["checkpoint_id"] for t in tuples],
        )
        return tuples

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of ``config`` (its ``checkpoint_id``, else the thread's latest)."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        conditions = [
            CHECKPOINTS.c.thread_id == thread_id,
            CHECKPOINTS.c.checkpoint_ns == checkpoint_ns,
        ]
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            conditions.append(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
        found = await self._read("checkpoint.read", thread_id, conditions, 1, "get")
        return found[0] if found else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints, newest first: of ``config``'s thread (and namespace, if it names one),
        whose metadata contains ``filter``, older than ``before``, at most ``limit``."""
        conditions: list[ColumnElement[bool]] = []
        thread_id: str | None = None
        if config is not None:
            configurable = config["configurable"]
            if configurable.get("thread_id") is not None:
                thread_id = str(configurable["thread_id"])
                conditions.append(CHECKPOINTS.c.thread_id == thread_id)
            if configurable.get("checkpoint_ns") is not None:
                conditions.append(CHECKPOINTS.c.checkpoint_ns == configurable["checkpoint_ns"])
            if checkpoint_id := get_checkpoint_id(config):
                conditions.append(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
        if filter:
            wanted = func.cast(literal(_metadata_json(filter)), JSONB)
            conditions.append(METADATA.op("@>")(wanted))
        if before is not None and (before_id := get_checkpoint_id(before)):
            conditions.append(CHECKPOINTS.c.checkpoint_id < before_id)
        # Pages in keyset order, each read and audited before it is handed out: a thread of
        # thousands of checkpoints never sits in memory as a whole.
        remaining = limit
        paged = conditions
        while remaining is None or remaining > 0:
            size = LIST_PAGE if remaining is None else min(LIST_PAGE, remaining)
            page = await self._read("checkpoint.list", thread_id, paged, size, "list")
            for found in page:
                yield found
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            paged = [*conditions, _after(page[-1])]

    # -- writing ---------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the values of the channels that changed (``new_versions``)."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        acting = await self._allow("write", "checkpoint.write", thread_id)
        stored = dict(checkpoint)
        values = cast(dict[str, Any], stored.pop("channel_values"))
        blobs = []
        for channel, version in new_versions.items():
            type_, blob = (
                self.serde.dumps_typed(values[channel]) if channel in values else ("empty", None)
            )
            blobs.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "channel": channel,
                    "version": str(version),
                    "type": type_,
                    "blob": blob,
                }
            )
        type_, data = self.serde.dumps_typed(stored)
        row = {
            "type": type_,
            "checkpoint": data,
            "channel_versions": {k: str(v) for k, v in checkpoint["channel_versions"].items()},
            "metadata": json.loads(
                _metadata_json(get_serializable_checkpoint_metadata(config, metadata))
            ),
            "parent_checkpoint_id": configurable.get("checkpoint_id"),
        }
        upsert = pg_insert(CHECKPOINTS).values(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint["id"],
            created_by=acting.id,
            **row,
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=list(CHECKPOINTS.primary_key), set_=row
        )
        async with translating(), self.adapter.engine.begin() as conn:
            if blobs:
                await conn.execute(pg_insert(BLOBS).on_conflict_do_nothing(), blobs)
            await conn.execute(upsert)
            await conn.execute(
                audit_insert(),
                self._audit("checkpoint.write", thread_id, f"checkpoint={checkpoint['id']}"),
            )
        await self._retain(thread_id, checkpoint_ns)
        return _config(thread_id, checkpoint_ns, checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the checkpoint of ``config``.

        Special writes (errors, interrupts) replace an earlier one; regular writes are kept
        once (a retried task does not duplicate them), as LangGraph's own savers do.
        """
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = str(configurable["checkpoint_id"])
        await self._allow("write", "checkpoint.write", thread_id)
        rows = []
        for index, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            rows.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                    "task_id": task_id,
                    "task_path": task_path,
                    "idx": WRITES_IDX_MAP.get(channel, index),
                    "channel": channel,
                    "type": type_,
                    "blob": blob,
                }
            )
        statement = pg_insert(WRITES)
        if all(channel in WRITES_IDX_MAP for channel, _ in writes):
            statement = statement.on_conflict_do_update(
                index_elements=list(WRITES.primary_key),
                set_={
                    "channel": statement.excluded.channel,
                    "type": statement.excluded.type,
                    "blob": statement.excluded.blob,
                    "task_path": statement.excluded.task_path,
                },
            )
        else:
            statement = statement.on_conflict_do_nothing()
        detail = f"writes checkpoint={checkpoint_id};task={task_id}"
        async with translating(), self.adapter.engine.begin() as conn:
            if rows:
                await conn.execute(statement, rows)
            await conn.execute(
                audit_insert(), self._audit("checkpoint.write", thread_id, detail, len(rows))
            )

    # -- deleting --------------------------------------------------------------------------

    @staticmethod
    async def _drop_unused_blobs(conn: AsyncConnection, threads: Sequence[str]) -> None:
        """Blobs of ``threads`` that no remaining checkpoint uses."""
        used = exists().where(
            CHECKPOINTS.c.thread_id == BLOBS.c.thread_id,
            CHECKPOINTS.c.checkpoint_ns == BLOBS.c.checkpoint_ns,
            CHECKPOINTS.c.channel_versions.op("->>")(BLOBS.c.channel) == BLOBS.c.version,
        )
        await conn.execute(delete(BLOBS).where(BLOBS.c.thread_id.in_(threads), ~used))

    @staticmethod
    async def _drop_checkpoints(
        conn: AsyncConnection, condition: ColumnElement[bool], limit: int | None = None
    ) -> list[Key]:
        """Delete the checkpoints matching ``condition`` (at most ``limit``, skipping rows another
        transaction holds) with their writes and now unused blobs; returns their keys."""
        key = tuple_(
            CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id
        )
        chosen = select(
            CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id
        ).where(condition)
        if limit is not None:
            chosen = chosen.order_by(CHECKPOINTS.c.created_at).limit(limit)
        chosen = chosen.with_for_update(skip_locked=True)
        result = await conn.execute(
            delete(CHECKPOINTS)
            .where(key.in_(chosen))
            .returning(
                CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id
            )
        )
        keys: list[Key] = sorted((r[0], r[1], r[2]) for r in result)
        if keys:
            await conn.execute(
                delete(WRITES).where(
                    tuple_(WRITES.c.thread_id, WRITES.c.checkpoint_ns, WRITES.c.checkpoint_id).in_(
                        keys
                    )
                )
            )
            await HacsCheckpointSaver._drop_unused_blobs(conn, sorted({k[0] for k in keys}))
        return keys

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of ``thread_id`` (one transaction)."""
        thread_id = str(thread_id)
        await self._allow("delete", "checkpoint.delete", thread_id)
        async with translating(), self.adapter.engine.begin() as conn:
            result = await conn.execute(
                delete(CHECKPOINTS).where(CHECKPOINTS.c.thread_id == thread_id)
            )
            await conn.execute(delete(WRITES).where(WRITES.c.thread_id == thread_id))
            await conn.execute(delete(BLOBS).where(BLOBS.c.thread_id == thread_id))
            await conn.execute(
                audit_insert(),
                self._audit("checkpoint.delete", thread_id, "thread", result.rowcount),
            )

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the runs ``run_ids`` wrote."""
        runs = [str(r) for r in run_ids]
        await self._allow("delete", "checkpoint.delete", None)
        if not runs:
            return
        condition = METADATA.op("->>")("run_id").in_(runs)
        async with translating(), self.adapter.engine.begin() as conn:
            keys = await self._drop_checkpoints(conn, condition)
            await conn.execute(
                audit_insert(),
                self._audit("checkpoint.delete", None, f"runs={len(runs)}", len(keys)),
            )

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, value and write of one thread to another (one transaction)."""
        source, target = str(source_thread_id), str(target_thread_id)
        await self._allow("read", "checkpoint.read", source)
        await self._allow("write", "checkpoint.write", target)
        async with translating(), self.adapter.engine.begin() as conn:
            for table in (CHECKPOINTS, BLOBS, WRITES):
                columns = [c for c in table.c if c.name != "thread_id"]
                copied = select(literal(target), *columns).where(table.c.thread_id == source)
                await conn.execute(
                    pg_insert(table)
                    .from_select(["thread_id", *(c.name for c in columns)], copied)
                    .on_conflict_do_nothing()
                )
            await conn.execute(
                audit_insert(), self._audit("checkpoint.write", target, f"copy of {source}")
            )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint; ``delete``: remove all."""
        threads = [str(t) for t in thread_ids]
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy {strategy!r}: keep_latest or delete.")
        await self._allow("delete", "checkpoint.delete", threads[0] if len(threads) == 1 else None)
        in_threads = CHECKPOINTS.c.thread_id.in_(threads)
        condition: ColumnElement[bool] = in_threads
        if strategy == "keep_latest":
            latest = CHECKPOINTS.alias("latest")
            newer = exists().where(
                latest.c.thread_id == CHECKPOINTS.c.thread_id,
                latest.c.checkpoint_ns == CHECKPOINTS.c.checkpoint_ns,
                latest.c.checkpoint_id > CHECKPOINTS.c.checkpoint_id,
            )
            condition = and_(in_threads, newer)
        async with translating(), self.adapter.engine.begin() as conn:
            keys = await self._drop_checkpoints(conn, condition)
            await conn.execute(
                audit_insert(),
                self._audit(
                    "checkpoint.delete",
                    threads[0] if len(threads) == 1 else None,
                    f"prune {strategy};threads={len(threads)}",
                    len(keys),
                ),
            )

    # -- retention -------------------------------------------------------------------------

    async def _retain(self, thread_id: str, checkpoint_ns: str) -> None:
        """After a put: one bounded pass of the retention policy over the written thread."""
        policy = self.retention
        conditions: list[ColumnElement[bool]] = []
        here = and_(
            CHECKPOINTS.c.thread_id == thread_id, CHECKPOINTS.c.checkpoint_ns == checkpoint_ns
        )
        if policy.keep_last is not None:
            kept = (
                select(CHECKPOINTS.c.checkpoint_id)
                .where(here)
                .order_by(CHECKPOINTS.c.checkpoint_id.desc())
                .limit(policy.keep_last)
            )
            conditions.append(CHECKPOINTS.c.checkpoint_id.not_in(kept))
        if policy.ttl is not None:
            conditions.append(CHECKPOINTS.c.created_at < func.now() - policy.ttl)
        if not conditions:
            return
        async with translating(), self.adapter.engine.begin() as conn:
            keys = await self._drop_checkpoints(conn, and_(here, or_(*conditions)), policy.batch)
            if keys:
                await conn.execute(
                    audit_insert(),
                    self._audit("checkpoint.delete", thread_id, "retention", len(keys)),
                )

    async def expire(self) -> int:
        """Remove every thread's checkpoints older than ``retention.ttl``; returns how many.

        Schedule it (a cron job, a periodic task): it works in batches of
        ``retention.batch``, each its own short transaction, and skips rows being written.
        """
        ttl = self.retention.ttl
        if ttl is None:
            raise ValueError("This saver's Retention has no ttl: nothing can expire.")
        await self._allow("delete", "checkpoint.delete", None)
        removed = 0
        while True:
            async with translating(), self.adapter.engine.begin() as conn:
                keys = await self._drop_checkpoints(
                    conn, CHECKPOINTS.c.created_at < func.now() - ttl, self.retention.batch
                )
                if keys:
                    await conn.execute(
                        audit_insert(), self._audit("checkpoint.delete", None, "ttl", len(keys))
                    )
            removed += len(keys)
            if len(keys) < self.retention.batch:
                return removed

    # -- versions --------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counter plus a random fraction: versions sort as text, as LangGraph's
        own Postgres saver makes them."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- sync ------------------------------------------------------------------------------

    def _sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed() or running is loop:
            coroutine.close()
            raise asyncio.InvalidStateError(
                "HacsCheckpointSaver's sync methods run on the event loop the saver was created "
                "in, from another thread (asyncio.to_thread(graph.invoke, ...)); in that loop "
                "use the async ones (graph.ainvoke)."
            )
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync :meth:`aget_tuple`."""
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync :meth:`alist`."""

        async def collect() -> list[CheckpointTuple]:
            found = self.alist(config, filter=filter, before=before, limit=limit)
            return [t async for t in found]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync :meth:`aput`."""
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync :meth:`aput_writes`."""
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync :meth:`adelete_thread`."""
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync :meth:`adelete_for_runs`."""
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync :meth:`acopy_thread`."""
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync :meth:`aprune`."""
        self._sync(self.aprune(thread_ids, strategy=strategy))
