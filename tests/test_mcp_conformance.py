"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, via npx) against
`hacs mcp`'s streamable HTTP server.

The suite's client sends no credentials, and hacs serves nobody anonymously, so the server under
test is the real HTTP app behind an ASGI shim that adds one verified hacs token's
``Authorization`` header (the server still verifies it on every request). The scenarios that
apply to a tools-and-resources server must pass; the others test features of the suite's own
reference server (its ``test_*`` tools, prompts, sampling, elicitation, subscriptions), which
hacs does not have, and are reported, not asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacs_auth import get_auth_manager

PACKAGE = "@modelcontextprotocol/conformance@0.1.16"
# The suite's dist needs Node >= 22 (fs.globSync); npx fetches that node from the npm registry.
NODE = "node@22"
# The scenarios about what hacs serves: the handshake, ping, listing tools and resources, the
# streamable HTTP transport, DNS-rebinding protection. The rest need the suite's reference
# server's own tools, prompts and resources (test_simple_text, test://static-text, ...) or
# capabilities hacs does not offer (logging/setLevel, completion, subscriptions, sampling).
APPLICABLE = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
)

SERVE = """
import sys, uvicorn
from hacs_mcp import http_app
url, token, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = http_app(database_url=url)
async def with_token(scope, receive, send):
    if scope["type"] == "http":
        headers = [h for h in scope["headers"] if h[0] != b"authorization"]
        scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer " + token.encode())]}
    await app(scope, receive, send)
uvicorn.run(with_token, host="127.0.0.1", port=port, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def conformance_server(database_url: str) -> Iterator[str]:
    token = get_auth_manager().create_access_token("conformance", "physician", ["*:read"])
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, database_url, token, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):
            assert process.poll() is None, "the conformance server exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)  # a bounded poll for the child's port
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _scenario(url: str, scenario: str, out: Path) -> tuple[int, int]:
    npx = shutil.which("npx")
    assert npx is not None, "the conformance suite runs with npx (Node.js)"
    command = [npx, "-y", "-p", NODE, "-p", PACKAGE, "--", "conformance", "server"]
    subprocess.run(
        [*command, "--url", url, "--scenario", scenario, "-o", str(out / scenario)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ},
    )  # fmt: skip
    checks: list[dict[str, object]] = []
    for path in (out / scenario).rglob("checks.json"):
        checks += json.loads(path.read_text(encoding="utf-8"))
    passed = sum(1 for check in checks if check.get("status") == "SUCCESS")
    failed = sum(1 for check in checks if check.get("status") == "FAILURE")
    return passed, failed


def test_the_official_conformance_suite_passes_the_applicable_scenarios(
    conformance_server: str, tmp_path: Path
) -> None:
    results = {name: _scenario(conformance_server, name, tmp_path) for name in APPLICABLE}
    print("MCP conformance (passed, failed):", results)
    for name, (passed, failed) in results.items():
        assert passed > 0 and failed == 0, (name, passed, failed)
