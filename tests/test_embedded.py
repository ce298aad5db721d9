"""The embedded default: a real PostgreSQL 18 with pgvector, shared safely by concurrent starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from hacs_persistence.embedded import (
    EMBEDDED_MAX_CONNECTIONS,
    embedded_data_dir,
    stop_embedded,
)

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import asyncio, json, sys
import asyncpg
from hacs_persistence.embedded import ensure_embedded_server
url = ensure_embedded_server()
host = url.split("host=")[1]
async def facts():
    conn = await asyncpg.connect(host=host, user="postgres", database="postgres")
    try:
        return {
            "url": url,
            "started": str(await conn.fetchval("SELECT pg_postmaster_start_time()")),
            "version": await conn.fetchval("SHOW server_version_num"),
            "max_connections": int(await conn.fetchval("SHOW max_connections")),
            "vector": await conn.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"),
            "pid": await conn.fetchval("SELECT pg_backend_pid()"),
        }
    finally:
        await conn.close()
print(json.dumps(asyncio.run(facts())))
"""


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short path: unix socket paths are limited to ~107 bytes.
    path = Path("/tmp") / f"hacs-emb-{os.getpid()}"
    yield path
    stop_embedded(path)
    subprocess.run(["rm", "-rf", str(path), f"{path}.lock"], check=False)


def _start(data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    env["HACS_EMBEDDED_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_starting_at_once_share_one_server(fresh_dir: Path) -> None:
    procs = [_start(fresh_dir), _start(fresh_dir)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append((json.loads(out), err))
    (first, err1), (second, err2) = results
    assert first["url"] == second["url"] == f"postgresql://postgres@/postgres?host={fresh_dir}"
    assert first["started"] == second["started"]  # one postmaster, not two
    assert int(first["version"]) // 10000 == 18
    assert first["vector"].startswith("0.8")
    assert first["max_connections"] >= EMBEDDED_MAX_CONNECTIONS
    # Each process says once, on stderr, which database it uses and where.
    for err in (err1, err2):
        assert err.count("using the embedded PostgreSQL") == 1
        assert str(fresh_dir) in err


def test_server_is_reused_by_a_later_process(fresh_dir: Path) -> None:
    before = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    after = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    assert before["started"] == after["started"]


def test_server_never_runs_as_root(fresh_dir: Path) -> None:
    pid = int((fresh_dir / "postmaster.pid").read_text().splitlines()[0])
    server_uid = psutil.Process(pid).uids().real
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the wheel runs it as its own OS user.
        assert server_uid != 0
    else:
        assert server_uid == os.geteuid()


def test_default_data_dir_honours_hacs_embedded_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HACS_EMBEDDED_DIR", "/tmp/somewhere/pg")
    assert embedded_data_dir() == Path("/tmp/somewhere/pg")
    monkeypatch.delenv("HACS_EMBEDDED_DIR")
    assert embedded_data_dir().name == "postgres18"
