"""Tests for ``hacs_auth.decorators.require_permission`` on sync and async functions."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from hacs_auth import (
    SECRET_ENV_VAR,
    Actor,
    ActorRole,
    AuthConfigurationError,
    AuthManager,
    InsufficientPermissionError,
    InvalidTokenError,
    MissingTokenError,
    PermissionFormatError,
    TokenExpiredError,
    acting_as,
    get_current_actor,
    require_permission,
    set_auth_manager,
)

SECRET = secrets.token_urlsafe(48)
OTHER_SECRET = secrets.token_urlsafe(48)

Seen = dict[str, Any]


@pytest.fixture(autouse=True)
def _isolated_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(SECRET_ENV_VAR, SECRET)
    set_auth_manager(None)
    with acting_as(None):
        yield
    set_auth_manager(None)


def _token(permissions: list[str], **kwargs: Any) -> str:
    return AuthManager().create_access_token("dr_martinez", "physician", permissions, **kwargs)


def _sync_reader(seen: Seen) -> Callable[..., str]:
    @require_permission("patient:read")
    def read_patient(patient_id: str, **kwargs: Any) -> str:
        """Read one patient."""
        seen["kwargs"] = kwargs
        seen["actor"] = get_current_actor()
        return f"patient {patient_id}"

    return read_patient


def _async_reader(seen: Seen) -> Callable[..., Awaitable[str]]:
    @require_permission("patient:read")
    async def read_patient(patient_id: str, **kwargs: Any) -> str:
        """Read one patient."""
        seen["kwargs"] = kwargs
        seen["actor"] = get_current_actor()
        return f"patient {patient_id}"

    return read_patient


async def _call(is_async: bool, seen: Seen, *args: Any, **kwargs: Any) -> str:
    """Call the sync or async reader the same way so one test covers both."""
    if is_async:
        return await _async_reader(seen)(*args, **kwargs)
    return _sync_reader(seen)(*args, **kwargs)


both = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@both
async def test_valid_token_passes_verified_claims_and_actor(is_async: bool) -> None:
    seen: Seen = {}
    token = _token(["patient:read", "observation:read"], organization="GH")
    result = await _call(is_async, seen, "p-1", token=token, extra="kept")
    assert result == "patient p-1"
    kwargs = seen["kwargs"]
    assert kwargs["token"] == token  # other kwargs pass through
    assert kwargs["extra"] == "kept"
    claims = kwargs["claims"]
    assert claims["user_id"] == "dr_martinez"
    assert claims["role"] == "physician"
    assert claims["permissions"] == ["patient:read", "observation:read"]
    actor = seen["actor"]
    assert isinstance(actor, Actor)
    assert actor.id == "dr_martinez"
    assert actor.role is ActorRole.PHYSICIAN
    assert actor.organization == "GH"
    assert get_current_actor() is None  # restored after the call


@both
async def test_caller_supplied_claims_are_replaced(is_async: bool) -> None:
    seen: Seen = {}
    forged = {"user_id": "attacker", "role": "admin", "permissions": ["admin:*"]}
    await _call(is_async, seen, "p-1", token=_token(["patient:read"]), claims=forged)
    claims = seen["kwargs"]["claims"]
    assert claims is not forged
    assert claims["user_id"] == "dr_martinez"
    assert claims["permissions"] == ["patient:read"]
    assert seen["actor"].id == "dr_martinez"


@both
async def test_bearer_authorization_header(is_async: bool) -> None:
    seen: Seen = {}
    token = _token(["patient:read"])
    await _call(is_async, seen, "p-1", authorization=f"Bearer {token}")
    assert seen["kwargs"]["claims"]["user_id"] == "dr_martinez"
    assert seen["kwargs"]["authorization"] == f"Bearer {token}"
    await _call(is_async, seen, "p-1", authorization=f"  bearer   {token} ")
    assert seen["kwargs"]["claims"]["user_id"] == "dr_martinez"


@both
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"token": None}, {"token": ""}, {"authorization": ""}, {"authorization": "Bearer  "}],
)
async def test_missing_token(is_async: bool, kwargs: dict[str, Any]) -> None:
    seen: Seen = {}
    with pytest.raises(MissingTokenError, match="token"):
        await _call(is_async, seen, "p-1", **kwargs)
    assert seen == {}


@both
@pytest.mark.parametrize(
    "kwargs",
    [
        {"token": "garbage"},
        {"token": 123},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer garbage"},
    ],
)
async def test_invalid_token(is_async: bool, kwargs: dict[str, Any]) -> None:
    seen: Seen = {}
    with pytest.raises(InvalidTokenError) as info:
        await _call(is_async, seen, "p-1", **kwargs)
    assert not isinstance(info.value, TokenExpiredError)
    assert seen == {}


@both
async def test_token_signed_with_other_secret(is_async: bool) -> None:
    token = AuthManager(OTHER_SECRET).create_access_token("dr_martinez", "physician", ["admin:*"])
    seen: Seen = {}
    with pytest.raises(InvalidTokenError, match="signature"):
        await _call(is_async, seen, "p-1", token=token)
    assert seen == {}


@both
async def test_expired_token(is_async: bool) -> None:
    seen: Seen = {}
    token = _token(["patient:read"], expires_in=timedelta(seconds=-5))
    with pytest.raises(TokenExpiredError):
        await _call(is_async, seen, "p-1", token=token)
    assert seen == {}


@both
async def test_insufficient_permission(is_async: bool) -> None:
    seen: Seen = {}
    token = _token(["observation:read", "patient:delete"])
    with pytest.raises(InsufficientPermissionError) as info:
        await _call(is_async, seen, "p-1", token=token)
    assert seen == {}
    assert info.value.permission == "patient:read"
    assert info.value.actor_id == "dr_martinez"
    message = str(info.value)
    # The id is an attribute; messages reach logs and traces, so they never carry it.
    assert "patient:read" in message and "dr_martinez" not in message
    for part in token.split("."):
        assert part not in message


@both
@pytest.mark.parametrize("granted", ["patient:write", "patient:*", "*:read", "admin:*", "*:*"])
async def test_wildcards_and_implication_grant_access(is_async: bool, granted: str) -> None:
    seen: Seen = {}
    assert await _call(is_async, seen, "p-1", token=_token([granted])) == "patient p-1"


@both
async def test_missing_secret_is_a_configuration_error(
    is_async: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token(["patient:read"])
    monkeypatch.delenv(SECRET_ENV_VAR)
    with pytest.raises(AuthConfigurationError):
        await _call(is_async, {}, "p-1", token=token)


def test_current_actor_restored_after_sync_exception() -> None:
    outer = Actor(name="outer", role="system")
    inside: list[Actor | None] = []

    @require_permission("patient:write")
    def boom(**kwargs: Any) -> None:
        inside.append(get_current_actor())
        raise RuntimeError("boom")

    with acting_as(outer):
        with pytest.raises(RuntimeError, match="boom"):
            boom(token=_token(["patient:write"]))
        assert inside[0] is not None and inside[0].id == "dr_martinez"
        assert get_current_actor() is outer
    assert get_current_actor() is None


async def test_current_actor_restored_after_async_exception() -> None:
    outer = Actor(name="outer", role="system")
    inside: list[Actor | None] = []

    @require_permission("patient:write")
    async def boom(**kwargs: Any) -> None:
        inside.append(get_current_actor())
        raise RuntimeError("boom")

    with acting_as(outer):
        with pytest.raises(RuntimeError, match="boom"):
            await boom(token=_token(["patient:write"]))
        assert inside[0] is not None and inside[0].id == "dr_martinez"
        assert get_current_actor() is outer
    assert get_current_actor() is None


def test_token_actor_does_not_outlive_the_call_on_a_reused_worker() -> None:
    @require_permission("patient:read")
    def job(**kwargs: Any) -> Actor | None:
        return get_current_actor()

    token = _token(["patient:read"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        actor = pool.submit(job, token=token).result()
        assert actor is not None and actor.id == "dr_martinez"
        assert pool.submit(get_current_actor).result() is None


def test_wraps_preserves_metadata() -> None:
    sync_fn = _sync_reader({})
    async_fn = _async_reader({})
    assert sync_fn.__name__ == async_fn.__name__ == "read_patient"
    assert sync_fn.__doc__ == async_fn.__doc__ == "Read one patient."
    assert not inspect.iscoroutinefunction(sync_fn)
    assert inspect.iscoroutinefunction(async_fn)
    params = list(inspect.signature(async_fn).parameters)
    assert params == ["patient_id", "kwargs"]


def test_explicit_claims_parameter_and_named_token() -> None:
    @require_permission("observation:write")
    def record(value: int, *, token: str, claims: dict[str, Any] | None = None) -> str:
        assert claims is not None
        return f"{claims['user_id']}:{value}"

    assert record(5, token=_token(["observation:write"])) == "dr_martinez:5"


def test_bad_permission_fails_at_decoration() -> None:
    with pytest.raises(PermissionFormatError, match="patient:fly"):
        require_permission("patient:fly")


def test_function_without_claims_parameter_rejected() -> None:
    def no_claims(patient_id: str, token: str) -> None:
        del patient_id, token

    with pytest.raises(TypeError, match="claims"):
        require_permission("patient:read")(no_claims)


async def test_user_guide_example() -> None:
    provider_token = AuthManager().create_access_token(
        user_id="dr_martinez",
        role="physician",
        permissions=["patient:read", "observation:read"],
    )
    provider_claims = {"user_id": "someone-else"}

    @require_permission("patient:read")
    async def get_patient_by_id(patient_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"id": patient_id, "accessed_by": kwargs.get("claims", {}).get("user_id")}

    record = await get_patient_by_id("p-1", token=provider_token, claims=provider_claims)
    assert record == {"id": "p-1", "accessed_by": "dr_martinez"}
