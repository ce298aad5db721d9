"""`hacs mcp` with the MCP SDK's own client, over stdio and streamable HTTP, on real PostgreSQL.

The server runs as `hacs mcp` in a subprocess (as an MCP host starts it), acting on the test's
database. What is proved: the tools and their annotations, read/search/save through the gate,
audit rows carrying the token's actor, patient scope, and that no call runs without a valid
token (missing, bad, expired, revoked).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from hacs_auth import Actor, get_auth_manager
from hacs_cli.common import ExitCode
from hacs_mcp import TOOL_NAMES
from hacs_models import MemoryBlock
from hacs_persistence.access.revocations import revoke_token
from hacs_persistence.adapter import create_postgres_adapter
from tests.conftest import db_connect
from tests.docs_blocks import _fenced as fenced_blocks
from tests.factories import make_patient

AGENTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
CLI = "import sys\nfrom hacs_cli.main import app\nsys.exit(app())"
ADMIN = Actor(id="mcp-admin", name="admin", role="admin", permissions=["admin:*"])


def _token(
    user: str,
    *,
    patients: list[str] | None = None,
    permissions: tuple[str, ...] = ("patient:read", "patient:write"),
    **options: Any,
) -> str:
    return get_auth_manager().create_access_token(
        user, "physician", permissions, patient_ids=patients, **options
    )


def _env(token: str | None) -> dict[str, str]:
    env = {**os.environ, "HACS_REVOCATION_TTL": "0"}
    env.pop("HACS_TOKEN", None)
    if token is not None:
        env["HACS_TOKEN"] = token
    return env


async def _scalar(url: str, sql: str, *args: Any) -> Any:
    conn = await db_connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _audited(url: str, actor_id: str, action: str) -> int:
    sql = "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = $1 AND action = $2"
    return int(await _scalar(url, sql, actor_id, action))


async def _store_patients(url: str, *ids: str) -> None:
    adapter = await create_postgres_adapter(url)
    try:
        for patient_id in ids:
            await adapter.save(make_patient(id=patient_id), ADMIN)
    finally:
        await adapter.close()


async def _revoke(url: str, token: str) -> None:
    adapter = await create_postgres_adapter(url)
    try:
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        await revoke_token(adapter, jti, ADMIN)
    finally:
        await adapter.close()


@asynccontextmanager
async def _stdio(url: str, token: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-c", CLI, "--database-url", url, "mcp"], env=_env(token)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _payload(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None
    return dict(result.structured_content)


# -- stdio ---------------------------------------------------------------------------------


async def test_stdio_lists_the_tools_with_annotations_and_schemas(database_url: str) -> None:
    async with _stdio(database_url, _token("dr-list")) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        templates = (await session.list_resource_templates()).resource_templates
    assert set(tools) == set(TOOL_NAMES)
    for name in ("read_resource", "search_resources", "search_similar_resources"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True
    delete = tools["delete_resource"].annotations
    assert delete is not None and delete.destructive_hint and delete.idempotent_hint
    save = tools["save_resource"].annotations
    assert save is not None and save.read_only_hint is False and save.destructive_hint is False
    schema = tools["read_resource"].input_schema
    assert "Patient" in schema["properties"]["resource_type"]["enum"]
    assert set(schema["required"]) == {"resource_id", "resource_type"}
    # Nothing names a connection: the database is the server's configuration.
    words = json.dumps([tool.input_schema for tool in tools.values()]).lower()
    assert not any(w in words for w in ("database_url", "password", '"sql"', "host"))
    assert "hacs://patient/{patient_id}" in {t.uri_template for t in templates}


async def test_stdio_save_read_search_are_audited_as_the_tokens_actor(database_url: str) -> None:
    patient = make_patient(id="mcp-patient-1").model_dump(mode="json")
    async with _stdio(database_url, _token("dr-stdio")) as session:
        saved = await session.call_tool("save_resource", {"resource": patient})
        read = await session.call_tool(
            "read_resource", {"resource_id": "mcp-patient-1", "resource_type": "Patient"}
        )
        found = await session.call_tool(
            "search_resources", {"resource_type": "Patient", "filters": {"id": "mcp-patient-1"}}
        )
        record = await session.read_resource("hacs://patient/mcp-patient-1")
        history = await session.call_tool(
            "resource_history", {"resource_id": "mcp-patient-1", "resource_type": "Patient"}
        )
    assert saved.is_error is False and _payload(saved)["actor_id"] == "dr-stdio"
    assert _payload(read)["data"]["resource"]["id"] == "mcp-patient-1"
    assert _payload(found)["data"]["count"] == 1
    text = record.contents[0].text  # type: ignore[union-attr]
    assert json.loads(text)["resource"]["id"] == "mcp-patient-1"
    assert [v["version"] for v in _payload(history)["data"]["versions"]] == [1]
    assert await _audited(database_url, "dr-stdio", "create") == 1
    assert await _audited(database_url, "dr-stdio", "read") == 2  # the tool and the resource
    assert await _audited(database_url, "dr-stdio", "search") == 1
    changed_by = await _scalar(
        database_url,
        "SELECT changed_by FROM hacs_core.resource_versions WHERE id = 'mcp-patient-1'",
    )
    assert changed_by == "dr-stdio"


async def test_a_patient_scoped_token_cannot_read_another_patient(database_url: str) -> None:
    await _store_patients(database_url, "mine-1", "theirs-1")
    async with _stdio(database_url, _token("dr-scoped", patients=["mine-1"])) as session:
        mine = await session.call_tool(
            "read_resource", {"resource_id": "mine-1", "resource_type": "Patient"}
        )
        theirs = await session.call_tool(
            "read_resource", {"resource_id": "theirs-1", "resource_type": "Patient"}
        )
        listed = await session.call_tool("search_resources", {"resource_type": "Patient"})
        with pytest.raises(MCPError):
            await session.read_resource("hacs://patient/theirs-1")
    assert mine.is_error is False
    assert theirs.is_error is True and _payload(theirs)["error"] == "not_found"
    assert [r["id"] for r in _payload(listed)["data"]["resources"]] == ["mine-1"]
    denied = await _scalar(
        database_url,
        "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = 'dr-scoped' "
        "AND resource_id = 'theirs-1' AND outcome = 'denied'",
    )
    assert denied == 2


async def test_similarity_search_returns_the_nearest_memories_first(database_url: str) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        dim = adapter.vector_dim
        assert dim is not None  # the migrated schema has the embedding column
        for index in range(3):
            vector = [0.0] * dim
            vector[index] = 1.0
            await adapter.save(
                MemoryBlock(id=f"memory-{index}", content="m", embedding=vector), ADMIN
            )
    finally:
        await adapter.close()
    query = [0.0] * dim
    query[1], query[2] = 1.0, 0.5
    token = _token("dr-memory", permissions=("memoryblock:read",))
    async with _stdio(database_url, token) as session:
        found = await session.call_tool(
            "search_similar_resources", {"resource_type": "MemoryBlock", "vector": query, "k": 2}
        )
    results = _payload(found)["data"]["results"]
    assert [r["resource"]["id"] for r in results] == ["memory-1", "memory-2"]
    assert results[0]["distance"] < results[1]["distance"]
    assert await _audited(database_url, "dr-memory", "search_similar") == 1


def _start_stdio(url: str, token: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "--database-url", url, "mcp"],
        env=_env(token), input="", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_stdio_refuses_to_start_without_a_valid_token(database_url: str) -> None:
    revoked = _token("dr-revoked")
    await _revoke(database_url, revoked)
    cases = {
        "missing": None,
        "bad": "not-a-token",
        "expired": _token("dr-expired", expires_in=timedelta(seconds=-60)),
        "revoked": revoked,
    }
    for case, token in cases.items():
        done = await asyncio.to_thread(_start_stdio, database_url, token)
        assert done.returncode == ExitCode.USAGE, (case, done.stderr)
        assert "HACS_TOKEN" in done.stderr, (case, done.stderr)
        assert done.stdout == "", case  # no MCP message was ever sent
    assert "revoked" in (await asyncio.to_thread(_start_stdio, database_url, revoked)).stderr


async def test_a_token_revoked_during_a_stdio_session_ends_its_calls(database_url: str) -> None:
    token = _token("dr-later")
    async with _stdio(database_url, token) as session:
        first = await session.call_tool("search_resources", {"resource_type": "Patient"})
        await _revoke(database_url, token)
        with pytest.raises(MCPError, match="no longer valid"):
            await session.call_tool("search_resources", {"resource_type": "Patient"})
    assert first.is_error is False
    assert await _audited(database_url, "dr-later", "search") == 1


# -- streamable HTTP -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(database_url: str) -> Iterator[str]:
    """`hacs mcp --transport http` on a free port; yields its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "--database-url", database_url, "mcp", "--transport",
         "http", "--port", str(port)],
        env=_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def _wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            assert process.stderr is not None
            raise AssertionError(f"hacs mcp exited: {process.stderr.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        # Polls a port that a child opens: a bounded wait, not a timing assumption.
        time.sleep(0.1)
    raise AssertionError("hacs mcp did not listen within 60 s")


@asynccontextmanager
async def _http(url: str, token: str) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_http_calls_run_as_the_bearer_tokens_actor(
    http_server: str, database_url: str
) -> None:
    await _store_patients(database_url, "http-a", "http-b")
    patient = make_patient(id="http-new").model_dump(mode="json")
    async with _http(http_server, _token("dr-http")) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        saved = await session.call_tool("save_resource", {"resource": patient})
        read = await session.call_tool(
            "read_resource", {"resource_id": "http-a", "resource_type": "Patient"}
        )
    async with _http(http_server, _token("dr-narrow", patients=["http-b"])) as session:
        other = await session.call_tool(
            "read_resource", {"resource_id": "http-a", "resource_type": "Patient"}
        )
        found = await session.call_tool("search_resources", {"resource_type": "Patient"})
    assert names == set(TOOL_NAMES)
    assert saved.is_error is False and _payload(saved)["actor_id"] == "dr-http"
    assert _payload(read)["data"]["resource"]["id"] == "http-a"
    assert other.is_error is True and _payload(other)["error"] == "not_found"
    assert [r["id"] for r in _payload(found)["data"]["resources"]] == ["http-b"]
    assert await _audited(database_url, "dr-http", "create") == 1
    assert await _audited(database_url, "dr-http", "read") == 1
    assert await _audited(database_url, "dr-narrow", "search") == 1


_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


async def _post(url: str, token: str | None) -> httpx2.Response:
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=60) as client:
        return await client.post(url, json=_INITIALIZE, headers=headers)


async def test_http_refuses_missing_bad_expired_and_revoked_tokens(
    http_server: str, database_url: str
) -> None:
    good = _token("dr-good")
    accepted = await _post(http_server, good)
    assert accepted.status_code == 200
    # A client of the previous protocol revision negotiates it in initialize.
    assert '"protocolVersion":"2025-06-18"' in accepted.text.replace(" ", "")
    revoked = _token("dr-gone")
    assert (await _post(http_server, revoked)).status_code == 200
    await _revoke(database_url, revoked)
    for token in (None, "not-a-token", _token("dr-old", expires_in=timedelta(seconds=-5)), revoked):
        response = await _post(http_server, token)
        assert response.status_code == 401, (token, response.text)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert await _audited(database_url, "dr-gone", "search") == 0


# -- the documentation ---------------------------------------------------------------------


async def test_the_python_example_of_the_agents_page_runs(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The MCP section's example (the LangGraph one is run by tests/test_agents_docs.py).
    [code] = [
        body
        for lang, body, _ in fenced_blocks(AGENTS_DOC.read_text())
        if lang == "python" and 'create_access_token("agent-7"' in body
    ]
    await _store_patients(database_url, "doc-patient-1")
    monkeypatch.setenv("DATABASE_URL", database_url)
    # The page starts `hacs`: the executable of this environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    output = io.StringIO()

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(AGENTS_DOC), "exec"), {"__name__": "__main__"})

    await asyncio.to_thread(run)
    lines = output.getvalue().splitlines()
    assert lines[0] == str(sorted(TOOL_NAMES))
    assert lines[1] == "Found 1 Patient resource(s) as agent-7"
    assert await _audited(database_url, "agent-7", "search") == 1
