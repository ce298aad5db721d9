"""HacsCheckpointSaver: LangGraph's checkpointer conformance suite, access, audit, retention.

The conformance suite (``langgraph-checkpoint-conformance``) runs every required capability
(put, put_writes, get_tuple, list, delete_thread) and the optional ones the saver implements
(delete_for_runs, copy_thread, prune) against the saver on the suite's real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypedDict

import asyncpg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, EXTENDED_CAPABILITIES
from langgraph.graph import END, START, StateGraph

from hacs_models import Actor
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import PermissionDeniedError
from hacs_persistence.langgraph import HacsCheckpointSaver, Retention
from hacs_persistence.langgraph import checkpoint as checkpoint_module

AGENT = Actor(name="agent", role="agent", permissions=["agentsession:*"])
READER = Actor(name="reader", role="agent", permissions=["agentsession:read"])


class Count(TypedDict):
    total: int
    seen: list[str]


def _graph() -> Any:
    def add(state: Count) -> dict[str, Any]:
        return {"total": state["total"] + 1, "seen": [*state["seen"], "add"]}

    builder = StateGraph(Count)
    builder.add_node("add", add)
    builder.add_edge(START, "add")
    builder.add_edge("add", END)
    return builder


async def _count(db: asyncpg.Connection, table: str, thread_id: str) -> int:
    value = await db.fetchval(
        f"SELECT count(*) FROM hacs_agents.{table} WHERE thread_id = $1", thread_id
    )
    return int(value)


async def test_the_conformance_suite_passes_every_capability(granular: PostgreSQLAdapter) -> None:
    @checkpointer_test(name="HacsCheckpointSaver")
    async def hacs_saver() -> AsyncIterator[BaseCheckpointSaver[str]]:
        yield HacsCheckpointSaver(granular, AGENT)

    report = await validate(hacs_saver)
    report.print_report()
    results = report.results
    required = [results[c.value] for c in BASE_CAPABILITIES]
    optional = [results[c.value] for c in EXTENDED_CAPABILITIES]
    print(
        "required tests passed:", sum(r.tests_passed for r in required),
        "failed:", sum(r.tests_failed for r in required),
        "| optional tests passed:", sum(r.tests_passed for r in optional),
        "failed:", sum(r.tests_failed for r in optional),
    )  # fmt: skip
    failures = {name: r.failures for name, r in results.items() if r.failures}
    assert report.passed_all_base(), failures
    assert all(r.detected for r in optional)
    assert report.passed_all(), failures


async def test_a_graph_resumes_its_thread_from_the_saved_checkpoint(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    saver = HacsCheckpointSaver(granular, AGENT)
    graph = _graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t-resume"}}
    await graph.ainvoke({"total": 0, "seen": []}, config)
    again = HacsCheckpointSaver(granular, AGENT)
    state = await _graph().compile(checkpointer=again).aget_state(config)
    assert state.values == {"total": 1, "seen": ["add"]}
    audited = await db.fetch(
        "SELECT action, actor_name, outcome FROM hacs_audit.audit_events "
        "WHERE resource_type = 'AgentSession' AND resource_id = 't-resume'"
    )
    assert {(r["action"], r["actor_name"], r["outcome"]) for r in audited} >= {
        ("checkpoint.write", "agent", "success"),
        ("checkpoint.read", "agent", "success"),
    }


async def test_the_sync_methods_run_from_another_thread_and_refuse_the_loop_thread(
    granular: PostgreSQLAdapter,
) -> None:
    saver = HacsCheckpointSaver(granular, AGENT)
    graph = _graph().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t-sync"}}
    result = await asyncio.to_thread(graph.invoke, {"total": 4, "seen": []}, config)
    assert result["total"] == 5
    assert len(await asyncio.to_thread(lambda: list(saver.list(config)))) >= 2
    with pytest.raises(asyncio.InvalidStateError, match="another thread"):
        saver.get_tuple(config)


async def test_list_reads_a_long_thread_in_audited_pages(
    granular: PostgreSQLAdapter, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = HacsCheckpointSaver(granular, AGENT)
    graph = _graph().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t-pages"}}
    for _ in range(4):
        await graph.ainvoke({"total": 0, "seen": []}, config)
    newest_first = [
        r["checkpoint_id"]
        for r in await db.fetch(
            "SELECT checkpoint_id FROM hacs_agents.langgraph_checkpoints "
            "WHERE thread_id = 't-pages' ORDER BY checkpoint_id DESC"
        )
    ]
    assert len(newest_first) > 7
    monkeypatch.setattr(checkpoint_module, "LIST_PAGE", 3)
    listed = [t.config["configurable"]["checkpoint_id"] async for t in saver.alist(config)]
    assert listed == newest_first
    limited = [
        t.config["configurable"]["checkpoint_id"] async for t in saver.alist(config, limit=5)
    ]
    assert limited == newest_first[:5]
    pages = await db.fetch(
        "SELECT result_count FROM hacs_audit.audit_events WHERE resource_id = 't-pages' "
        "AND action = 'checkpoint.list' ORDER BY id"
    )
    # Every page has its audit row: the full list in pages of 3 (the last may be empty), then
    # the limited one in pages of 3 and 2.
    full = len(newest_first) // 3 + 1
    assert [r["result_count"] for r in pages] == [3] * (full - 1) + [len(newest_first) % 3, 3, 2]


async def test_a_reader_cannot_write_and_the_refusal_is_audited(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    saver = HacsCheckpointSaver(granular, READER)
    with pytest.raises(PermissionDeniedError, match="agentsession:write"):
        await (
            _graph()
            .compile(checkpointer=saver)
            .ainvoke({"total": 0, "seen": []}, {"configurable": {"thread_id": "t-denied"}})
        )
    assert await _count(db, "langgraph_checkpoints", "t-denied") == 0
    denied = await db.fetch(
        "SELECT action FROM hacs_audit.audit_events WHERE resource_id = 't-denied' "
        "AND outcome = 'denied' AND actor_name = 'reader'"
    )
    # The graph tried each of its puts (input and step): each refusal has its row.
    assert denied and {r["action"] for r in denied} == {"checkpoint.write"}


async def test_a_patient_scoped_actor_is_refused(granular: PostgreSQLAdapter) -> None:
    scoped = Actor(name="scoped", role="agent", permissions=["agentsession:*"], patient_ids=["p-1"])
    saver = HacsCheckpointSaver(granular, scoped)
    with pytest.raises(PermissionDeniedError, match="patient"):
        await saver.aget_tuple({"configurable": {"thread_id": "t-scoped"}})


async def test_keep_last_trims_each_thread_after_a_put_and_drops_unused_blobs(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    saver = HacsCheckpointSaver(granular, AGENT, retention=Retention(keep_last=2))
    graph = _graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t-keep"}}
    for _ in range(4):
        await graph.ainvoke({"total": 0, "seen": []}, config)
    assert await _count(db, "langgraph_checkpoints", "t-keep") == 2
    state = await graph.aget_state(config)
    assert state.values["total"] == 1
    # Every blob left is used by a remaining checkpoint.
    unused = await db.fetchval(
        "SELECT count(*) FROM hacs_agents.langgraph_blobs b WHERE thread_id = 't-keep' "
        "AND NOT EXISTS (SELECT 1 FROM hacs_agents.langgraph_checkpoints c "
        "WHERE c.thread_id = b.thread_id AND c.channel_versions ->> b.channel = b.version)"
    )
    assert unused == 0
    assert await _count(db, "langgraph_blobs", "t-keep") > 0


async def test_ttl_expiry_removes_old_checkpoints_in_batches(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    saver = HacsCheckpointSaver(
        granular, AGENT, retention=Retention(ttl=timedelta(hours=1), batch=2)
    )
    graph = _graph().compile(checkpointer=saver)
    for thread in ("t-old-1", "t-old-2", "t-new"):
        await graph.ainvoke({"total": 0, "seen": []}, {"configurable": {"thread_id": thread}})
    await db.execute(
        "UPDATE hacs_agents.langgraph_checkpoints SET created_at = now() - interval '2 hours' "
        "WHERE thread_id LIKE 't-old-%'"
    )
    old = await db.fetchval(
        "SELECT count(*) FROM hacs_agents.langgraph_checkpoints WHERE thread_id LIKE 't-old-%'"
    )
    assert await saver.expire() == old
    assert await _count(db, "langgraph_checkpoints", "t-old-1") == 0
    assert await _count(db, "langgraph_blobs", "t-old-1") == 0
    assert await _count(db, "langgraph_checkpoints", "t-new") > 0


async def test_retention_skips_a_checkpoint_another_transaction_holds(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    saver = HacsCheckpointSaver(granular, AGENT, retention=Retention(keep_last=1))
    graph = _graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t-locked"}}
    await graph.ainvoke({"total": 0, "seen": []}, config)
    ids = [
        r["checkpoint_id"]
        for r in await db.fetch(
            "SELECT checkpoint_id FROM hacs_agents.langgraph_checkpoints "
            "WHERE thread_id = 't-locked' ORDER BY checkpoint_id"
        )
    ]
    assert len(ids) == 1
    # A writer holds the oldest row: the next put's retention must neither wait nor fail.
    async with db.transaction():
        await db.execute(
            "SELECT 1 FROM hacs_agents.langgraph_checkpoints WHERE checkpoint_id = $1 FOR UPDATE",
            ids[0],
        )
        await asyncio.wait_for(graph.ainvoke({"total": 0, "seen": []}, config), timeout=10)
        kept = await _count(db, "langgraph_checkpoints", "t-locked")
    assert kept >= 2
    assert ids[0] in {
        r["checkpoint_id"]
        for r in await db.fetch(
            "SELECT checkpoint_id FROM hacs_agents.langgraph_checkpoints WHERE thread_id = $1",
            "t-locked",
        )
    }


def test_retention_refuses_keeping_no_checkpoint() -> None:
    with pytest.raises(ValueError, match="keep_last"):
        Retention(keep_last=0)
