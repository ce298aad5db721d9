"""docs/agents.md, "One agent, one actor": its example runs against the suite's PostgreSQL,
with `hacs mcp` started over stdio, and prints what the page says it prints (the patient read
through MCP, the memory found in the second thread, the audit rows under the one actor id)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import types
from pathlib import Path

import pytest

from hacs_auth import Actor
from hacs_persistence.adapter import create_postgres_adapter
from tests.conftest import db_connect
from tests.docs_blocks import _fenced as fenced_blocks
from tests.factories import make_patient

PAGE = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
MARKER = "FakeMessagesListChatModel"  # only this section's example has a scripted model
ADMIN = Actor(id="example-admin", name="admin", role="admin", permissions=["admin:*"])


def _example() -> tuple[str, str]:
    blocks = fenced_blocks(PAGE.read_text(encoding="utf-8"))
    [index] = [i for i, (lang, body, _) in enumerate(blocks) if lang == "python" and MARKER in body]
    after = blocks[index + 1]
    assert after[0] == "text", "the example is followed by what it prints"
    return blocks[index][1], after[1]


async def test_the_one_actor_example_prints_what_the_page_shows(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, printed = _example()
    adapter = await create_postgres_adapter(database_url)
    try:
        await adapter.save(make_patient(id="pat-1"), ADMIN)
    finally:
        await adapter.close()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("HACS_TOKEN", raising=False)
    # The page starts `hacs`: the executable of this environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    output = io.StringIO()
    # A module of its own: LangGraph reads the tools' annotations from their module.
    module = types.ModuleType("agents_one_actor_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(PAGE), "exec"), module.__dict__)

    await asyncio.to_thread(run)
    assert output.getvalue().strip() == printed.strip()

    # Beyond the page: the checkpoints, too, were written as that actor, and nothing the
    # agent did ran under any other id.
    conn = await db_connect(database_url)
    try:
        writes = await conn.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = 'care-agent' "
            "AND action = 'checkpoint.write' AND resource_id IN ('visit-1', 'visit-2')"
        )
        others = await conn.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events "
            "WHERE actor_id IS DISTINCT FROM 'care-agent' AND actor_id IS DISTINCT FROM $1",
            ADMIN.id,
        )
    finally:
        await conn.close()
    assert writes > 0
    assert others == 0
