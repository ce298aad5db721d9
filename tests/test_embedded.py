"""The embedded default: a real PostgreSQL 18 with pgvector, shared safely by concurrent starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hacs_persistence.db.embedded import (
    EMBEDDED_MAX_CONNECTIONS,
    SYSTEM_BASE_DIR,
    embedded_data_dir,
    server_os_user_name,
    stop_embedded,
)

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import asyncio, hashlib, json, sys
import asyncpg
from hacs_persistence.db.embedded import ensure_embedded_server
server = ensure_embedded_server()
async def facts():
    conn = await asyncpg.connect(
        host=str(server.socket_dir), user="postgres", database="postgres",
        password=server.passwords["postgres"])
    try:
        return {
            "socket_dir": str(server.socket_dir),
            # Both processes must read the same generated passwords (never printed in clear).
            "passwords": hashlib.sha256(json.dumps(server.passwords).encode()).hexdigest(),
            "started": str(await conn.fetchval("SELECT pg_postmaster_start_time()")),
            "version": await conn.fetchval("SHOW server_version_num"),
            "max_connections": int(await conn.fetchval("SHOW max_connections")),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
            "vector": await conn.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"),
            "pid": await conn.fetchval("SELECT pg_backend_pid()"),
        }
    finally:
        await conn.close()
print(json.dumps(asyncio.run(facts())))
"""


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Short path: unix socket paths are limited to ~107 bytes.
    path = Path("/tmp") / f"hacs-emb-{os.getpid()}"
    yield path
    stop_embedded(path)
    subprocess.run(["rm", "-rf", str(path), f"{path}.lock"], check=False)
    if os.geteuid() == 0:  # the server's own OS user, made for this directory
        subprocess.run(["userdel", server_os_user_name(path)], capture_output=True, check=False)


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
    assert first["socket_dir"] == second["socket_dir"] == str(fresh_dir)
    assert first["passwords"] == second["passwords"]
    assert first["started"] == second["started"]  # one postmaster, not two
    assert int(first["version"]) // 10000 == 18
    assert first["vector"].startswith("0.8")
    assert first["max_connections"] >= EMBEDDED_MAX_CONNECTIONS
    assert first["shared_buffers"] == "256MB"
    # Each process says once, on stderr, which database it uses and where, password masked.
    passwords = [p.read_text().strip() for p in (fresh_dir / "hacs-passwords").iterdir()]
    for err in (err1, err2):
        assert err.count("using the embedded PostgreSQL") == 1
        assert str(fresh_dir) in err
        assert "postgresql://hacs_app:***@/hacs" in err
        assert not any(password in err for password in passwords)


def test_server_is_reused_by_a_later_process(fresh_dir: Path) -> None:
    before = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    after = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    assert before["started"] == after["started"]


def test_server_never_runs_as_root(fresh_dir: Path) -> None:
    pid = int((fresh_dir / "postmaster.pid").read_text().splitlines()[0])
    server_uid = psutil.Process(pid).uids().real
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: it runs as a system user of its own.
        assert server_uid != 0
        assert psutil.Process(pid).username() == server_os_user_name(fresh_dir)
    else:
        assert server_uid == os.geteuid()


def test_default_data_dir_honours_hacs_embedded_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HACS_EMBEDDED_DIR", "/tmp/somewhere/pg")
    assert embedded_data_dir() == Path("/tmp/somewhere/pg")
    monkeypatch.delenv("HACS_EMBEDDED_DIR")
    assert embedded_data_dir().name == "postgres18"
    if os.geteuid() == 0:
        # Not root's home: every ancestor must be traversable by the server's own user.
        assert embedded_data_dir() == SYSTEM_BASE_DIR / "postgres18"


def test_stop_embedded_stops_the_server_and_the_next_start_reuses_its_data(
    fresh_dir: Path,
) -> None:
    before = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    assert stop_embedded(fresh_dir) is True
    assert stop_embedded(fresh_dir) is False
    after = json.loads(_start(fresh_dir).communicate(timeout=120)[0])
    assert after["started"] != before["started"]
    assert after["passwords"] == before["passwords"]
