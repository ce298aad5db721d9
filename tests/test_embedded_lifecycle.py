"""Who stops the embedded server: `hacs embedded`, the test suite's lease, deleted binaries.

Every test uses a data directory of its own under /tmp (never the suite's shared server, which
concurrent sessions use).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import typer
from typer.testing import CliRunner

from hacs_persistence.db import embedded
from hacs_persistence.db.embedded import (
    embedded_status,
    ensure_embedded_server,
    lease_embedded_server,
    server_os_user_name,
    stop_embedded,
)

# Each test starts a throwaway embedded server of its own.
pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short: the unix socket lives in it (at most 107 bytes).
    path = Path("/tmp") / f"hacs-lc-{os.getpid()}"
    yield path
    stop_embedded(path)
    for leftover in (path, *(Path(f"{path}{suffix}") for suffix in embedded.SIDE_FILES)):
        subprocess.run(["rm", "-rf", str(leftover)], check=False)
    if os.geteuid() == 0:
        subprocess.run(["userdel", server_os_user_name(path)], capture_output=True, check=False)


def _timezone(data_dir: Path) -> str:
    server = ensure_embedded_server(data_dir, announce=False)

    async def query() -> str:
        conn = await asyncpg.connect(
            host=str(server.socket_dir),
            user="postgres",
            database="postgres",
            password=server.passwords["postgres"],
        )
        try:
            # A new backend reads the time zone files of the programs the server started from.
            await conn.execute("SET TimeZone = 'Europe/Paris'")
            return str(await conn.fetchval("SHOW TimeZone"))
        finally:
            await conn.close()

    return asyncio.run(query())


def _forget(data_dir: Path) -> None:
    """Drop this process's memory of the server, as a new program would start without it."""
    embedded._started.pop(data_dir.resolve(), None)


def test_the_last_lease_stops_a_server_a_lease_holder_started(data_dir: Path) -> None:
    _server, first = lease_embedded_server(data_dir)
    _server, second = lease_embedded_server(data_dir)  # a concurrent session joins
    status = embedded_status(data_dir)
    assert status.running and status.in_use_by_leases and status.stop_when_unused
    # The session that started it ends first: the other one still uses the server.
    assert first.release() is False
    assert embedded_status(data_dir).running
    assert second.release() is True
    status = embedded_status(data_dir)
    assert not status.running and not status.in_use_by_leases and not status.stop_when_unused
    assert second.release() is False  # a second release is a no-op


def test_a_server_running_before_the_first_lease_is_never_stopped(data_dir: Path) -> None:
    ensure_embedded_server(data_dir, announce=False)  # a developer's, or `hacs embedded start`
    _forget(data_dir)
    _server, lease = lease_embedded_server(data_dir)
    assert not embedded_status(data_dir).stop_when_unused
    assert lease.release() is False
    assert embedded_status(data_dir).running


def test_a_server_whose_programs_were_deleted_is_restarted_from_the_current_ones(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The programs of a virtual environment that is then deleted: a copy of the wheel's tree.
    wheel_bin = embedded._wheel_bin_dir()
    venv = Path("/tmp") / f"hacs-lc-venv-{os.getpid()}"
    try:
        for tree in embedded._wheel_trees(wheel_bin):
            where = venv / "site" / tree.relative_to(wheel_bin.parents[2])
            shutil.copytree(tree, where, symlinks=True)
        venv.chmod(0o755)
        (venv / "site").chmod(0o755)
        old_bin = venv / "site" / wheel_bin.relative_to(wheel_bin.parents[2])
        ensure_embedded_server(data_dir, announce=False)
        owner = embedded._owner_of(data_dir.resolve())
        old = embedded._Runner(data_dir.resolve(), owner, bin_dir=old_bin)
        old.stop()
        old.start()
        before = embedded_status(data_dir)
        assert before.running and before.current_binaries is False and not before.binaries_gone
    finally:
        shutil.rmtree(venv)
    gone = embedded_status(data_dir)
    assert gone.binaries_gone and gone.executable and gone.executable.endswith(" (deleted)")
    result = runner.invoke(_app(), ["embedded", "status", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "no longer exist" in result.stdout, result.stdout

    _forget(data_dir)
    assert _timezone(data_dir) == "Europe/Paris"
    after = embedded_status(data_dir)
    assert after.running and after.current_binaries is True and after.pid != gone.pid


def _app() -> typer.Typer:
    from hacs_cli.main import app

    return app


def test_hacs_embedded_start_status_stop(data_dir: Path) -> None:
    app = _app()
    where = ["--data-dir", str(data_dir)]
    result = runner.invoke(app, ["embedded", "status", *where])
    assert result.exit_code == 1 and "No embedded PostgreSQL" in result.stdout
    result = runner.invoke(app, ["embedded", "start", *where])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "is running" in result.stdout and "hacs_app:***@" in result.stdout
    result = runner.invoke(app, ["embedded", "status", *where])
    assert result.exit_code == 0 and "is running (pid" in result.stdout

    _server, lease = lease_embedded_server(data_dir)
    try:
        result = runner.invoke(app, ["embedded", "stop", *where])
        assert result.exit_code == 1 and "--force" in result.stderr
        assert embedded_status(data_dir).running
    finally:
        assert lease.release() is False  # it was running before the lease
    result = runner.invoke(app, ["embedded", "stop", *where])
    assert result.exit_code == 0 and "Stopped" in result.stdout
    result = runner.invoke(app, ["embedded", "status", *where])
    assert result.exit_code == 1 and "is stopped" in result.stdout
    result = runner.invoke(app, ["embedded", "stop", *where])
    assert result.exit_code == 0 and "was not running" in result.stdout


def test_hacs_embedded_start_keeps_a_server_a_test_session_started(data_dir: Path) -> None:
    _server, lease = lease_embedded_server(data_dir)
    assert embedded_status(data_dir).stop_when_unused
    result = runner.invoke(_app(), ["embedded", "start", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert not embedded_status(data_dir).stop_when_unused
    assert lease.release() is False
    assert embedded_status(data_dir).running


PROBE = """
def test_probe(server_url):
    assert server_url
"""


def _pytest_session(tmp_path: Path, data_dir: Path) -> None:
    """A whole pytest session with the suite's conftest, on the server in ``data_dir``."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(textwrap.dedent(PROBE), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "HACS_TEST_DATABASE_URL"}
    env.update(HACS_TEST_EMBEDDED_DIR=str(data_dir), PYTHONPATH=f"{ROOT / 'hacs'}:{ROOT}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-c", os.devnull,
         "--rootdir", str(tmp_path), "-o", "asyncio_mode=auto", str(probe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_test_session_stops_the_server_it_started_and_only_that(
    data_dir: Path, tmp_path: Path
) -> None:
    _pytest_session(tmp_path, data_dir)
    status = embedded_status(data_dir)
    assert status.initialized and not status.running
    # A server that was already running (used by someone else) is left running.
    ensure_embedded_server(data_dir, announce=False)
    _pytest_session(tmp_path, data_dir)
    assert embedded_status(data_dir).running
