"""The PgBouncer switch against a real PgBouncer in transaction mode, under the load test.

A session fixture installs Debian's ``pgbouncer`` package when the machine lacks it (a failure to
install fails the tests, it never skips them) and starts one pgbouncer for the session: a
temporary ini with ``pool_mode = transaction`` and the ``ignore_startup_parameters`` of
docs/operations.md, clients on 127.0.0.1 with SCRAM against an auth_file holding the suite's
superuser password (read from ``PGPASSFILE``, as tests/conftest.py keeps it), a wildcard
database entry pointing at the suite's server, and fewer server connections than the workload's
client connections. As root it runs as an unprivileged user (pgbouncer refuses root): the owner
of the server's socket directory, so it can reach the embedded server's private socket.

With ``prepared_statements=False`` the shared workload of tests/load_workload.py passes its
consistency audit through it; with prepared statements on, a few concurrent tasks fail with
asyncpg's prepared-statement errors, so the test can tell a broken switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from hacs_models import Patient
from hacs_persistence.adapter import create_postgres_adapter
from tests.factories import make_patient
from tests.load_workload import ACTOR, TASKS, audit_workload, run_mixed_workload
from tests.pgservers import embedded_bin_dir, server_os_user

pytestmark = pytest.mark.db

PACKAGE = "pgbouncer"
# Server connections per (database, user) pool: fewer than the workload's client connections
# (the adapter's pool keeps 20 and opens up to 50 for the 50 tasks), so pgbouncer must multiplex.
SERVER_POOL = 10
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# The startup parameters hacs sends that PgBouncer does not track itself (application_name and
# TimeZone it does): docs/operations.md "PgBouncer in transaction mode".
IGNORED_STARTUP_PARAMETERS = "statement_timeout,idle_in_transaction_session_timeout"
PREPARED_STATEMENT_SQLSTATES = {
    asyncpg.exceptions.DuplicatePreparedStatementError.sqlstate,  # 42P05 "... already exists"
    asyncpg.exceptions.InvalidSQLStatementNameError.sqlstate,  # 26000 "... does not exist"
}


@dataclass(frozen=True)
class Bouncer:
    """A running pgbouncer: where clients reach it, as whom, and its log."""

    port: int
    user: str
    password: str
    base_dir: Path
    version: tuple[int, ...]

    @property
    def log_file(self) -> Path:
        return self.base_dir / "pgbouncer.log"

    def url(self, database: str) -> str:
        """A TCP URL to ``database`` through pgbouncer (password included: in-process only)."""
        return URL.create(
            "postgresql",
            username=self.user,
            password=self.password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def log(self) -> str:
        """The last lines of pgbouncer's log (for failure messages)."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return "<no pgbouncer log>"

    async def admin(self, command: str) -> list[dict[str, str]]:
        """Run ``command`` (``SHOW POOLS``...) on the admin console with psql; rows as dicts.

        The console speaks only the simple query protocol, which asyncpg uses without rows.
        """
        process = await asyncio.create_subprocess_exec(
            str(embedded_bin_dir() / "psql"), "-X", "-A", "-F", "\t", "-P", "footer=off",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "pgbouncer",
            "-c", command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"},
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, f"psql {command}: {err.decode(errors='replace')}"
        header, *rows = out.decode().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


def _pgbouncer_binary() -> Path | None:
    for candidate in (shutil.which(PACKAGE), "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run(
        [*prefix, "apt-get", "-o", "DPkg::Lock::Timeout=300", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def ensure_pgbouncer() -> Path:
    """The pgbouncer binary, installing Debian's package first when it is missing.

    A fresh CI machine has none. Fails (never skips) when it cannot be installed.
    """
    binary = _pgbouncer_binary()
    if binary is not None:
        return binary
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        pytest.fail(
            "pgbouncer is not installed and this user cannot install it: run "
            "`apt-get install -y pgbouncer` as root (CI installs it the same way).",
            pytrace=False,
        )
    install = ("install", "-y", "--no-install-recommends", PACKAGE)
    result = _apt(*install)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        _apt("update")
        result = _apt(*install)
    binary = _pgbouncer_binary()
    if result.returncode != 0 or binary is None:
        pytest.fail(
            f"`apt-get install -y {PACKAGE}` failed (exit {result.returncode}); the PgBouncer "
            f"tests need Debian's pgbouncer package:\n{(result.stdout + result.stderr)[-3000:]}",
            pytrace=False,
        )
    return binary


def _version(binary: Path) -> tuple[int, ...]:
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    assert found is not None, f"cannot read pgbouncer's version from {out!r}"
    return tuple(int(part) for part in found.groups() if part is not None)


def _passfile_password(host: str, port: int, user: str) -> str:
    """The password of ``user`` from ``PGPASSFILE`` (tests/conftest.py keeps it there)."""
    passfile = Path(os.environ.get("PGPASSFILE", Path.home() / ".pgpass"))
    # conftest refuses passwords with ':' or '\\', so the fields need no unescaping here.
    for line in passfile.read_text().splitlines():
        fields = line.split(":")
        if len(fields) != 5 or line.startswith("#"):
            continue
        wanted = (host, str(port), "*", user)
        if all(field in ("*", value) for field, value in zip(fields[:4], wanted, strict=True)):
            return fields[4]
    raise AssertionError(f"no password for {user} in the password file {passfile}")


def _bouncer_os_user(server_host: str) -> pwd.struct_passwd | None:
    """Who runs pgbouncer: None (this user) unless root, which pgbouncer refuses to be.

    As root: the owner of the server's socket directory (the embedded server's socket is in its
    0700 data directory), else the unprivileged user that tests/pgservers.py runs servers as.
    """
    if os.geteuid() != 0:
        return None
    if server_host.startswith("/"):
        owner = pwd.getpwuid(os.stat(server_host).st_uid)
        if owner.pw_uid != 0:
            return owner
    name = server_os_user()
    assert name is not None
    return pwd.getpwnam(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ini(
    base: Path, port: int, server_host: str, server_port: int, user: str, version: tuple[int, ...]
) -> str:
    lines = [
        "[databases]",
        # Every database name goes to the same name on the suite's server (each test has its own).
        f"* = host={server_host} port={server_port}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {base / 'userlist.txt'}",
        f"admin_users = {user}",
        "pool_mode = transaction",
        f"default_pool_size = {SERVER_POOL}",
        "max_client_conn = 200",
        f"ignore_startup_parameters = {IGNORED_STARTUP_PARAMETERS}",
        f"logfile = {base / 'pgbouncer.log'}",
    ]
    if version >= (1, 21):
        # PgBouncer 1.21+ can track protocol-level prepared statements itself when
        # max_prepared_statements > 0 (later releases default to it), which would hide a broken
        # switch from the prepared-statements test: off explicitly (1.18 has no such setting).
        lines.append("max_prepared_statements = 0")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running_pgbouncer(server_url: str) -> Iterator[Bouncer]:
    """Start pgbouncer in front of ``server_url``'s server; stop it and remove its files on exit."""
    binary = ensure_pgbouncer()
    version = _version(binary)
    parsed = make_url(server_url)
    server_host = str(parsed.query.get("host") or parsed.host or "/var/run/postgresql")
    server_port = parsed.port or int(str(parsed.query.get("port") or 5432))
    user = str(parsed.username)
    password = (
        str(parsed.password)
        if parsed.password is not None
        else _passfile_password(server_host, server_port, user)
    )
    assert " " not in server_host and '"' not in user + password
    os_user = _bouncer_os_user(server_host)
    base = Path(tempfile.mkdtemp(prefix="hacs-pgbouncer-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        (base / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        (base / "userlist.txt").chmod(0o600)
        if os_user is not None:
            for path in (base, base / "userlist.txt"):
                os.chown(path, os_user.pw_uid, os_user.pw_gid)
        for _attempt in range(3):
            port = _free_port()
            ini = base / "pgbouncer.ini"
            ini.write_text(_ini(base, port, server_host, server_port, user, version))
            process = subprocess.Popen(
                [str(binary), str(ini)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=base,
                user=os_user.pw_uid if os_user else None,
                group=os_user.pw_gid if os_user else None,
                extra_groups=[] if os_user else None,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and not _accepts(port):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if process.poll() is None and _accepts(port):
                break
            bouncer = Bouncer(port, user, password, base, version)
            log = bouncer.log()
            _stop(process)
            process = None
            if "Address already in use" not in log:
                raise AssertionError(f"pgbouncer did not start on port {port}:\n{log}")
        assert process is not None, "pgbouncer found no free port in three attempts"
        yield Bouncer(port, user, password, base, version)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the pgbouncer this module started (its own pid): SIGTERM, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[Bouncer]:
    """One pgbouncer in transaction mode in front of the suite's server, for the session."""
    with running_pgbouncer(server_url) as bouncer:
        yield bouncer


def _prepared_statement_error(exc: BaseException) -> bool:
    """Whether asyncpg's prepared-statement error is somewhere in ``exc``'s chain of causes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if getattr(current, "sqlstate", None) in PREPARED_STATEMENT_SQLSTATES:
            return True
        orig = getattr(current, "orig", None)
        pending += [current.__cause__, current.__context__]
        if isinstance(orig, BaseException):
            pending.append(orig)
    return False


async def test_load_workload_through_pgbouncer_with_prepared_statements_off(
    pgbouncer: Bouncer, database_url: str, db: asyncpg.Connection
) -> None:
    database = str(make_url(database_url).database)
    adapter = await create_postgres_adapter(pgbouncer.url(database), prepared_statements=False)
    try:
        result = await run_mixed_workload(adapter)
        # pgbouncer was in the path and multiplexed: the adapter's pooled client connections
        # (still open) share at most SERVER_POOL server connections, which pg_stat_activity on
        # the server confirms (the direct ``db`` connection aside).
        pools = [p for p in await pgbouncer.admin("SHOW POOLS") if p["database"] == database]
        backends = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await adapter.close()
    print(f"\npgbouncer {'.'.join(map(str, pgbouncer.version))}: {result.summary()}")
    assert result.unexpected == [], f"{result.unexpected[:5]!r}\n{pgbouncer.log()}"
    await audit_workload(db, result)
    assert len(pools) == 1, pools
    clients = int(pools[0]["cl_active"]) + int(pools[0]["cl_waiting"])
    servers = sum(int(pools[0][key]) for key in ("sv_active", "sv_idle", "sv_used", "sv_tested"))
    assert 1 <= servers <= SERVER_POOL < clients <= TASKS, pools
    assert 1 <= backends <= SERVER_POOL


async def test_prepared_statements_on_fail_through_pgbouncer_in_transaction_mode(
    pgbouncer: Bouncer, database_url: str
) -> None:
    """The switch matters: with asyncpg's statement cache, a few concurrent tasks collide."""
    database = str(make_url(database_url).database)
    adapter = await create_postgres_adapter(pgbouncer.url(database), prepared_statements=True)
    errors: list[BaseException] = []

    async def worker() -> None:
        for _ in range(10):
            try:
                saved = await adapter.save(make_patient(), ACTOR)
                await adapter.read(Patient, saved.id, ACTOR)
            except Exception as exc:  # collected: the test asserts what they are
                errors.append(exc)

    try:
        await asyncio.gather(*(worker() for _ in range(6)))
    finally:
        await adapter.close()
    assert errors, "prepared statements worked through pgbouncer in transaction mode"
    # Every failure is the collision the switch exists for (nothing else broke).
    assert all(_prepared_statement_error(exc) for exc in errors), errors[:5]
