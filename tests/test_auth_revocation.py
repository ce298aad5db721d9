"""``hacs_auth.revocation`` without a database: staleness, fail closed, local revocations."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from hacs_auth import (
    SECRET_ENV_VAR,
    AuthConfigurationError,
    AuthManager,
    CachedRevocationList,
    RevocationSnapshot,
    RevocationUnavailableError,
    TokenRevokedError,
    get_auth_manager,
    set_auth_manager,
    set_revocation_list,
)
from hacs_auth.revocation import REVOCATION_TTL_ENV_VAR, revocation_ttl_from_env


class Store(CachedRevocationList):
    """A revocation list over an in-memory "store" whose reads the test counts or breaks."""

    def __init__(self, ttl: timedelta) -> None:
        self.now = 0.0
        super().__init__(ttl, clock=lambda: self.now)
        self.stored = RevocationSnapshot()
        self.reads = 0
        self.broken = False

    def load(self) -> RevocationSnapshot:
        self.reads += 1
        if self.broken:
            raise OSError("store unreachable")
        return self.stored


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(SECRET_ENV_VAR, secrets.token_urlsafe(48))
    set_auth_manager(None)
    set_revocation_list(None)
    yield
    set_auth_manager(None)
    set_revocation_list(None)


def _claims(manager: AuthManager, user_id: str = "u") -> tuple[str, str]:
    token = manager.create_access_token(user_id, "agent", [])
    return token, str(jwt.decode(token, options={"verify_signature": False})["jti"])


def test_the_store_is_read_again_only_once_the_snapshot_is_stale() -> None:
    store = Store(timedelta(seconds=30))
    manager = AuthManager(revocations=store)
    token, jti = _claims(manager)
    manager.verify_token(token)
    manager.verify_token(token)
    assert store.reads == 1
    store.stored = RevocationSnapshot(frozenset({jti}))
    store.now = 29.9
    manager.verify_token(token)  # still the cached snapshot: the documented staleness
    store.now = 30.0
    with pytest.raises(TokenRevokedError, match="has been revoked"):
        manager.verify_token(token)
    assert store.reads == 2


async def test_an_unreadable_store_refuses_every_token_sync_and_async() -> None:
    store = Store(timedelta(0))
    manager = AuthManager(revocations=store)
    token, _ = _claims(manager)
    store.broken = True
    with pytest.raises(RevocationUnavailableError, match="could not be checked"):
        manager.verify_token(token)
    with pytest.raises(RevocationUnavailableError):
        await manager.verify_token_async(token)


def test_local_revocations_count_at_once_and_survive_an_older_reload() -> None:
    store = Store(timedelta(seconds=30))
    set_revocation_list(store)  # the default manager consults the process-wide list
    manager = get_auth_manager()
    token, jti = _claims(manager)
    other, _ = _claims(manager, "v")
    manager.verify_token(token)
    store.note_jti(jti)
    with pytest.raises(TokenRevokedError):
        manager.verify_token(token)
    store.now = 60.0  # the store has not caught up yet: the local revocation still counts
    with pytest.raises(TokenRevokedError):
        manager.verify_token(token)
    store.note_actor("v", datetime.now(UTC) + timedelta(seconds=5))
    with pytest.raises(TokenRevokedError, match="every token of its actor"):
        manager.verify_token(other)


def test_actor_cutoff_spares_later_tokens() -> None:
    store = Store(timedelta(0))
    manager = AuthManager(revocations=store)
    token, _ = _claims(manager)
    store.stored = RevocationSnapshot(actors={"u": datetime.now(UTC).timestamp() - 60})
    assert manager.verify_token(token)["user_id"] == "u"


def test_revocation_ttl_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert revocation_ttl_from_env() == timedelta(seconds=30)
    monkeypatch.setenv(REVOCATION_TTL_ENV_VAR, "2.5")
    assert revocation_ttl_from_env() == timedelta(seconds=2.5)
    for bad in ("-1", "soon", "inf", "nan"):
        monkeypatch.setenv(REVOCATION_TTL_ENV_VAR, bad)
        with pytest.raises(AuthConfigurationError, match=REVOCATION_TTL_ENV_VAR):
            revocation_ttl_from_env()


def test_set_revocation_list_checks_its_argument() -> None:
    with pytest.raises(TypeError, match="RevocationList"):
        set_revocation_list("not a list")  # type: ignore[arg-type]
