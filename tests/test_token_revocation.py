"""Token revocation against a real PostgreSQL: stored, audited, seen by every verifying path.

Revoking one token (``jti``) or an actor's tokens issued before a time writes a row in
``hacs_admin.token_revocations`` and a ``token.revoke`` audit row; the revoking process refuses
the token at once, another process (a second revocation list, or a real subprocess) once its
cache is older than the staleness; ``@require_permission`` and the CLI's ``HACS_TOKEN`` refuse it;
an unreadable revocation table refuses every token (fail closed).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from typer.testing import CliRunner, Result

from hacs_auth import (
    Actor,
    AuthManager,
    RevocationUnavailableError,
    TokenRevokedError,
    get_auth_manager,
    require_permission,
    set_auth_manager,
    set_revocation_list,
)
from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_persistence.access.revocations import (
    DatabaseRevocationList,
    enable_revocation_checks,
    revoke_actor,
    revoke_token,
)
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceValidationError
from tests.conftest import db_connect

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Actor(id="security-officer", name="security-officer", role="admin", permissions=["admin:*"])
CLERK = Actor(id="clerk", name="clerk", role="nurse", permissions=["patient:read"])
REVOCATIONS = "hacs_admin.token_revocations"
UNREACHABLE_URL = "postgresql://hacs:pw@127.0.0.1:1/hacs"  # port 1: nothing listens


class FakeClock:
    """Monotonic seconds that move only when the test says so (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_auth() -> Iterator[None]:
    set_auth_manager(None)
    set_revocation_list(None)
    yield
    set_auth_manager(None)
    set_revocation_list(None)


@pytest.fixture
def adapter(granular: PostgreSQLAdapter) -> PostgreSQLAdapter:
    """Every test here is about the typed-table adapter (tests/conftest.py opens it)."""
    return granular


def _token(user_id: str = "dr_martinez", **kwargs: Any) -> str:
    return get_auth_manager().create_access_token(user_id, "physician", ["patient:read"], **kwargs)


def _jti(token: str) -> str:
    jti: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return jti


async def test_revoked_jti_is_refused_at_once_here_and_by_another_list_after_staleness(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    clock = FakeClock()
    enable_revocation_checks(database_url, ttl=timedelta(seconds=5))
    # "Another process": its own list and manager, with a warm cache from before the revocation.
    elsewhere = AuthManager(
        revocations=DatabaseRevocationList(database_url, ttl=timedelta(seconds=5), clock=clock)
    )
    token, other = _token(), _token()
    assert (await elsewhere.verify_token_async(token))["user_id"] == "dr_martinez"

    await revoke_token(adapter, _jti(token), ADMIN, reason="laptop stolen")

    with pytest.raises(TokenRevokedError, match="revoked") as info:
        await get_auth_manager().verify_token_async(token)  # the revoking process: at once
    assert _jti(token) not in str(info.value)
    # Within the staleness the other process still uses its cached list (documented)...
    assert (await elsewhere.verify_token_async(token))["user_id"] == "dr_martinez"
    clock.now += 5  # ...and once it is that old, it reloads and refuses.
    with pytest.raises(TokenRevokedError):
        await elsewhere.verify_token_async(token)
    with pytest.raises(TokenRevokedError):
        elsewhere.verify_token(token)  # the blocking path reads the same table
    assert (await elsewhere.verify_token_async(other))["user_id"] == "dr_martinez"


async def test_revoke_token_is_idempotent_and_audited(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    jti = _jti(_token())
    await revoke_token(adapter, jti, ADMIN)
    await revoke_token(adapter, jti, ADMIN)
    rows = await db.fetch(f"SELECT jti, revoked_by FROM {REVOCATIONS}")
    assert [(r["jti"], r["revoked_by"]) for r in rows] == [(jti, "security-officer")]
    audit = await db.fetch(
        "SELECT actor_id, action, resource_type, resource_id, outcome FROM "
        "hacs_audit.audit_events WHERE action = 'token.revoke' ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("security-officer", "token.revoke", "AccessToken", jti, "success")
    ] * 2


async def test_revoking_needs_admin_and_a_refusal_is_audited(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    with pytest.raises(PermissionDeniedError, match="admin"):
        await revoke_actor(adapter, "dr_martinez", CLERK)
    with pytest.raises(PermissionDeniedError):
        await revoke_token(adapter, "some-jti", CLERK)
    scoped_admin = ADMIN.model_copy(update={"id": "ward-admin", "patient_ids": ["p-1"]})
    with pytest.raises(PermissionDeniedError, match="limited to its patients"):
        await revoke_actor(adapter, "dr_martinez", scoped_admin)
    assert await db.fetchval(f"SELECT count(*) FROM {REVOCATIONS}") == 0
    outcomes = await db.fetch(
        "SELECT actor_id, outcome FROM hacs_audit.audit_events WHERE action = 'token.revoke' "
        "ORDER BY id"
    )
    assert [tuple(r) for r in outcomes] == [
        ("clerk", "denied"),
        ("clerk", "denied"),
        ("ward-admin", "denied"),
    ]


async def test_bad_revocation_input_is_a_clear_error(adapter: PostgreSQLAdapter) -> None:
    with pytest.raises(ResourceValidationError, match="jti must be a non-empty string"):
        await revoke_token(adapter, "  ", ADMIN)
    with pytest.raises(ResourceValidationError, match="timezone-aware"):
        await revoke_actor(adapter, "u", ADMIN, issued_before=datetime(2026, 1, 1))


async def test_revoked_actor_loses_tokens_issued_before_the_cutoff_only(
    adapter: PostgreSQLAdapter, database_url: str, db: asyncpg.Connection
) -> None:
    revocations = DatabaseRevocationList(database_url, ttl=timedelta(0))
    manager = AuthManager(revocations=revocations)
    cutoff = datetime.now(UTC) - timedelta(seconds=30)
    stored = await revoke_actor(adapter, "dr_martinez", ADMIN, issued_before=cutoff)
    assert abs((stored - cutoff).total_seconds()) < 1e-3

    secret = os.environ["HACS_JWT_SECRET"]
    short = _token(expires_in=timedelta(minutes=5))
    claims = jwt.decode(short, secret, algorithms=["HS256"], audience="hacs")
    earlier = {**claims, "iat": claims["iat"] - 60, "nbf": claims["iat"] - 60}
    with pytest.raises(TokenRevokedError, match="every token of its actor"):
        await manager.verify_token_async(jwt.encode(earlier, secret, algorithm="HS256"))
    # Issued after the cutoff (the user was re-enabled upstream): accepted.
    assert (await manager.verify_token_async(_token()))["user_id"] == "dr_martinez"
    assert (await manager.verify_token_async(_token("dr_other")))["user_id"] == "dr_other"

    # Minted before the revocation: "iat" has whole seconds, so a token minted just after it,
    # in the next second, is (rightly) newer than the cutoff.
    held = _token(expires_in=timedelta(minutes=5))
    now = await revoke_actor(adapter, "dr_martinez", ADMIN, reason="left the organisation")
    with pytest.raises(TokenRevokedError):
        await manager.verify_token_async(held)
    row = await db.fetchrow(
        f"SELECT issued_before, revoked_by, reason FROM {REVOCATIONS} ORDER BY id DESC LIMIT 1"
    )
    assert row is not None and row["issued_before"] == now
    assert (row["revoked_by"], row["reason"]) == ("security-officer", "left the organisation")
    audit = await db.fetch(
        "SELECT resource_type, resource_id, outcome FROM hacs_audit.audit_events "
        "WHERE action = 'token.revoke' ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [("Actor", "dr_martinez", "success")] * 2


async def test_require_permission_refuses_a_revoked_actor_sync_and_async(
    adapter: PostgreSQLAdapter, database_url: str
) -> None:
    @require_permission("patient:read")
    async def read_async(**kwargs: Any) -> str:
        return str(kwargs["claims"]["user_id"])

    @require_permission("patient:read")
    def read_sync(**kwargs: Any) -> str:
        return str(kwargs["claims"]["user_id"])

    token = _token()
    assert await read_async(token=token) == "dr_martinez"
    # Another process revokes; this one reads the table at every verification (ttl 0).
    enable_revocation_checks(database_url, ttl=timedelta(0))
    async with await create_postgres_adapter(database_url) as other:
        await revoke_actor(other, "dr_martinez", ADMIN)
    set_revocation_list(None)
    enable_revocation_checks(database_url, ttl=timedelta(0))  # no local notes: the table speaks
    with pytest.raises(TokenRevokedError):
        await read_async(token=token)
    with pytest.raises(TokenRevokedError):
        read_sync(authorization=f"Bearer {token}")  # blocking load on its own loop and thread


async def test_revocations_are_checked_by_default_against_the_configured_database(
    adapter: PostgreSQLAdapter, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No enable_revocation_checks() call: a deployment that forgets it still honours revocations.

    Before, a process that did not switch checks on accepted a revoked token until it expired.
    """
    import hacs_auth.revocation as revocation

    monkeypatch.setenv("HACS_DATABASE_URL", database_url)
    monkeypatch.setenv("HACS_REVOCATION_TTL", "0")
    monkeypatch.setattr(revocation, "_default", revocation._CONFIGURED)  # the shipped default
    token = _token()
    assert get_auth_manager().verify_token(token)["user_id"] == "dr_martinez"
    assert isinstance(revocation.get_revocation_list(), DatabaseRevocationList)
    async with await create_postgres_adapter(database_url) as other:
        await revoke_token(other, _jti(token), ADMIN)
    with pytest.raises(TokenRevokedError):
        await get_auth_manager().verify_token_async(token)


async def test_an_unreadable_revocation_list_refuses_every_token() -> None:
    manager = AuthManager(revocations=DatabaseRevocationList(UNREACHABLE_URL, ttl=timedelta(0)))
    token = manager.create_access_token("dr_martinez", "physician", ["patient:read"])
    with pytest.raises(RevocationUnavailableError, match="revocation list could not be checked"):
        await manager.verify_token_async(token)
    with pytest.raises(RevocationUnavailableError) as info:
        manager.verify_token(token)
    assert "pw" not in str(info.value)


async def test_revocation_table_refuses_a_row_that_revokes_nothing_or_both(
    db: asyncpg.Connection,
) -> None:
    for values in ("(NULL, NULL, NULL)", "('j', 'a', now())", "(NULL, 'a', NULL)"):
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute(
                f"INSERT INTO {REVOCATIONS} (jti, actor_id, issued_before, revoked_by) "
                f"VALUES {values[:-1]}, 'x')"
            )


def test_a_second_process_sees_the_revocation(database_url: str) -> None:
    token = _token()
    script = (
        "import sys\n"
        "from datetime import timedelta\n"
        "from hacs_auth import AuthManager, TokenRevokedError\n"
        "from hacs_persistence.access.revocations import DatabaseRevocationList\n"
        "manager = AuthManager(revocations=DatabaseRevocationList(sys.argv[1], ttl=timedelta(0)))\n"
        "try:\n"
        "    manager.verify_token(sys.argv[2])\n"
        "except TokenRevokedError:\n"
        "    sys.exit(7)\n"
    )

    def verify_elsewhere() -> int:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "hacs")}
        done = subprocess.run(
            [sys.executable, "-c", script, database_url, token], env=env, timeout=120, check=False
        )
        return done.returncode

    assert verify_elsewhere() == 0

    async def revoke() -> None:
        async with await create_postgres_adapter(database_url) as adapter:
            await revoke_token(adapter, _jti(token), ADMIN)

    asyncio.run(revoke())
    assert verify_elsewhere() == 7


# -- the CLI ------------------------------------------------------------------------------------


def _cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--database-url", url])


def _count(url: str, query: str) -> int:
    async def fetch() -> int:
        conn = await db_connect(url)
        try:
            return int(await conn.fetchval(query))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_cli_revokes_an_actor_and_its_token_is_then_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_token = get_auth_manager().create_access_token("cli-user", "physician", ["*:read"])
    monkeypatch.setenv("HACS_TOKEN", user_token)
    assert _cli(database_url, "export", "--type", "Observation").exit_code == ExitCode.OK

    monkeypatch.delenv("HACS_TOKEN")  # the operator's hacs-cli (admin:*) revokes
    done = _cli(database_url, "token", "revoke", "--actor", "cli-user", "--reason", "left")
    assert done.exit_code == ExitCode.OK, done.output
    assert "is revoked" in done.stdout and "HACS_REVOCATION_TTL" in done.stdout
    assert _count(database_url, f"SELECT count(*) FROM {REVOCATIONS}") == 1
    assert (
        _count(
            database_url,
            "SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'token.revoke' "
            "AND actor_id = 'hacs-cli' AND resource_id = 'cli-user' AND outcome = 'success'",
        )
        == 1
    )

    monkeypatch.setenv("HACS_TOKEN", user_token)
    refused = _cli(database_url, "export", "--type", "Observation")
    assert refused.exit_code == ExitCode.USAGE
    assert "revoked" in refused.output and user_token not in refused.output
    assert _cli(database_url, "import", str(ROOT / "README.md")).exit_code == ExitCode.USAGE


def test_cli_checks_the_token_against_the_database_it_was_given(database_url: str) -> None:
    """--database-url decides whose revocations apply: never the one DATABASE_URL names.

    Was: verification first read the revocations of the configured database (here a dead one),
    so the export failed with "HACS_TOKEN cannot be checked".
    """
    token = get_auth_manager().create_access_token("cli-reader", "physician", ["*:read"])
    env = {
        **os.environ,
        "HACS_TOKEN": token,
        "DATABASE_URL": "postgresql://hacs@127.0.0.1:1/hacs",  # nothing listens on port 1
    }
    command = "import sys\nfrom hacs_cli.main import app\nsys.exit(app())"
    done = subprocess.run(
        [sys.executable, "-c", command, "--database-url", database_url, "export", "--type",
         "Patient"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stderr

    revoke_jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    asyncio.run(_revoke_in(database_url, revoke_jti))
    refused = subprocess.run(
        [sys.executable, "-c", command, "--database-url", database_url, "export", "--type",
         "Patient"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert refused.returncode == ExitCode.USAGE and "revoked" in refused.stderr, refused.stderr


async def _revoke_in(database_url: str, jti: str) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        await revoke_token(adapter, jti, actor=ADMIN)
    finally:
        await adapter.close()


def test_cli_revoke_by_jti_needs_admin_in_hacs_token(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _jti(_token())
    monkeypatch.setenv("HACS_TOKEN", _token("someone"))
    refused = _cli(database_url, "token", "revoke", "--jti", target)
    assert refused.exit_code == ExitCode.FAILED and "admin" in refused.output
    admin_token = get_auth_manager().create_access_token("sec-admin", "admin", ["admin:*"])
    monkeypatch.setenv("HACS_TOKEN", admin_token)
    assert _cli(database_url, "token", "revoke", "--jti", target).exit_code == ExitCode.OK
    assert _count(database_url, f"SELECT count(*) FROM {REVOCATIONS} WHERE jti IS NOT NULL") == 1
    assert (
        _count(
            database_url,
            "SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'token.revoke' "
            "AND actor_id = 'sec-admin' AND outcome = 'success'",
        )
        == 1
    )


@pytest.mark.parametrize(
    "args",
    [
        ("token", "revoke"),
        ("token", "revoke", "--jti", "j", "--actor", "a"),
        ("token", "revoke", "--jti", "j", "--before", "2026-12-02T09:00:00+00:00"),
        ("token", "revoke", "--actor", "a", "--before", "yesterday"),
        ("token", "revoke", "--actor", "a", "--before", "2026-12-02T09:00:00"),
    ],
)
def test_cli_revoke_usage_errors(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == ExitCode.USAGE, result.output


# -- the documented example ---------------------------------------------------------------------


def test_configuration_example_revokes_and_refuses(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = [
        block
        for block in re.findall(r"^```python\n(.*?)^```$", page, flags=re.MULTILINE | re.DOTALL)
        if "enable_revocation_checks" in block
    ]
    assert len(blocks) == 1
    monkeypatch.setenv("DATABASE_URL", database_url)
    started = time.monotonic()
    exec(compile(blocks[0], "configuration.md", "exec"), {"__name__": "doc"})
    assert time.monotonic() - started < 60
    assert "every token of its actor issued before" in capsys.readouterr().out
