"""Tests for ``hacs_auth.tokens``: AuthManager, actor_from_claims and the default manager."""

from __future__ import annotations

import base64
import json
import pickle
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest

from hacs_auth import (
    SECRET_ENV_VAR,
    ActorRole,
    AuthConfigurationError,
    AuthManager,
    InvalidTokenError,
    MissingTokenError,
    PermissionFormatError,
    TokenExpiredError,
    actor_from_claims,
    get_auth_manager,
    set_auth_manager,
)

SECRET = secrets.token_urlsafe(48)
OTHER_SECRET = secrets.token_urlsafe(48)
MAX_LIFETIME_ENV_VAR = "HACS_JWT_MAX_LIFETIME"  # the documented name
# Exactly 32 and 40 characters, and 64 for HS512: generator output, so strong.
SECRET_32 = secrets.token_hex(16)
SECRET_40 = secrets.token_urlsafe(30)
SECRET_64 = secrets.token_urlsafe(48)


@pytest.fixture(autouse=True)
def _isolated_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(SECRET_ENV_VAR, SECRET)
    set_auth_manager(None)
    yield
    set_auth_manager(None)


@pytest.fixture
def manager() -> AuthManager:
    return AuthManager()


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def _assert_no_token_leak(err: BaseException, token: str) -> None:
    text = str(err)
    for part in token.split("."):
        assert part not in text


def test_round_trip(manager: AuthManager) -> None:
    token = manager.create_access_token(
        "dr_martinez",
        "PHYSICIAN",
        [" Patient : READ ", "medication_request:write"],
        organization="General Hospital",
        patient_ids=["p-1"],
        extra_claims={"department": "cardiology"},
    )
    claims = manager.verify_token(token)
    assert claims["sub"] == claims["user_id"] == "dr_martinez"
    assert claims["role"] == "physician"
    assert claims["permissions"] == ["patient:read", "medicationrequest:write"]
    assert claims["organization"] == "General Hospital"
    assert claims["patient_ids"] == ["p-1"]
    assert claims["department"] == "cardiology"
    assert claims["iss"] == "hacs"
    assert claims["aud"] == "hacs"
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_defaults_for_optional_claims(manager: AuthManager) -> None:
    claims = manager.verify_token(manager.create_access_token("svc", ActorRole.SERVICE, []))
    assert claims["organization"] is None
    assert claims["patient_ids"] is None
    assert claims["permissions"] == []


def test_unique_jti(manager: AuthManager) -> None:
    a = manager.verify_token(manager.create_access_token("u", "agent", []))
    b = manager.verify_token(manager.create_access_token("u", "agent", []))
    assert a["jti"] != b["jti"]


def test_custom_lifetime(manager: AuthManager) -> None:
    token = manager.create_access_token("u", "agent", [], expires_in=timedelta(minutes=5))
    claims = manager.verify_token(token)
    assert claims["exp"] - claims["iat"] == 300
    short = AuthManager(access_token_ttl=timedelta(minutes=2))
    claims = short.verify_token(short.create_access_token("u", "agent", []))
    assert claims["exp"] - claims["iat"] == 120


def test_expired(manager: AuthManager) -> None:
    token = manager.create_access_token("u", "agent", [], expires_in=timedelta(seconds=-10))
    with pytest.raises(TokenExpiredError) as info:
        manager.verify_token(token)
    assert isinstance(info.value, InvalidTokenError)
    assert isinstance(info.value.__cause__, jwt.ExpiredSignatureError)
    assert "expired" in str(info.value)
    _assert_no_token_leak(info.value, token)


def test_tampered_payload(manager: AuthManager) -> None:
    token = manager.create_access_token("u", "guest", ["patient:read"])
    header, _body, signature = token.split(".")
    payload = _payload(token)
    payload["permissions"] = ["admin:*"]
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_body}.{signature}"
    with pytest.raises(InvalidTokenError, match="signature") as info:
        manager.verify_token(forged)
    assert not isinstance(info.value, TokenExpiredError)
    assert isinstance(info.value.__cause__, jwt.InvalidSignatureError)
    _assert_no_token_leak(info.value, forged)


def test_tampered_signature(manager: AuthManager) -> None:
    token = manager.create_access_token("u", "guest", ["patient:read"])
    header, body, signature = token.split(".")
    bad_sig = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidTokenError, match="signature"):
        manager.verify_token(f"{header}.{body}.{bad_sig}")


def test_wrong_secret(manager: AuthManager) -> None:
    token = AuthManager(OTHER_SECRET).create_access_token("u", "agent", ["patient:read"])
    with pytest.raises(InvalidTokenError, match="signature"):
        manager.verify_token(token)


def test_wrong_audience(manager: AuthManager) -> None:
    token = AuthManager(audience="someone-else").create_access_token("u", "agent", [])
    with pytest.raises(InvalidTokenError, match="audience") as info:
        manager.verify_token(token)
    assert isinstance(info.value.__cause__, jwt.InvalidAudienceError)
    assert "someone-else" not in str(info.value)


def test_wrong_issuer(manager: AuthManager) -> None:
    token = AuthManager(issuer="evil").create_access_token("u", "agent", [])
    with pytest.raises(InvalidTokenError, match="issuer") as info:
        manager.verify_token(token)
    assert isinstance(info.value.__cause__, jwt.InvalidIssuerError)
    assert "evil" not in str(info.value)


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "x" * 40])
def test_malformed(manager: AuthManager, garbage: str) -> None:
    with pytest.raises(InvalidTokenError, match="malformed") as info:
        manager.verify_token(garbage)
    assert garbage not in str(info.value)


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_token_is_missing(manager: AuthManager, empty: str) -> None:
    with pytest.raises(MissingTokenError):
        manager.verify_token(empty)


def test_algorithm_none_rejected(manager: AuthManager) -> None:
    payload = _payload(manager.create_access_token("u", "admin", ["admin:*"]))
    # PyJWT's annotations omit the None key that algorithm "none" requires.
    unsigned = jwt.encode(payload, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError):
        manager.verify_token(unsigned)


def _sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _base_claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "u",
        "user_id": "u",
        "role": "agent",
        "permissions": ["patient:read"],
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "iss": "hacs",
        "aud": "hacs",
        "jti": "j",
    }


def test_base_claims_are_accepted(manager: AuthManager) -> None:
    assert manager.verify_token(_sign(_base_claims()))["user_id"] == "u"


@pytest.mark.parametrize(
    "claim", ["exp", "iat", "jti", "iss", "aud", "sub", "user_id", "role", "permissions"]
)
def test_missing_required_claim(manager: AuthManager, claim: str) -> None:
    claims = _base_claims()
    del claims[claim]
    with pytest.raises(InvalidTokenError, match=claim):
        manager.verify_token(_sign(claims))


@pytest.mark.parametrize(
    ("claim", "value", "fragment"),
    [
        ("role", "wizard", "role"),
        ("role", 7, "role"),
        ("permissions", ["patient:fly"], "permissions"),
        ("permissions", "patient:read", "permissions"),
        ("user_id", "someone-else", "sub"),
        ("user_id", "", "user_id"),
        ("patient_ids", "p-1", "patient_ids"),
        ("jti", "", "jti"),
        ("jti", 42, "jti"),
    ],
)
def test_malformed_hacs_claims(manager: AuthManager, claim: str, value: Any, fragment: str) -> None:
    claims = _base_claims()
    claims[claim] = value
    with pytest.raises(InvalidTokenError, match=fragment):
        manager.verify_token(_sign(claims))


def test_not_yet_valid(manager: AuthManager) -> None:
    claims = _base_claims()
    claims["nbf"] = claims["nbf"] + 3600
    claims["exp"] = claims["exp"] + 7200
    with pytest.raises(InvalidTokenError, match="not valid yet"):
        manager.verify_token(_sign(claims))


def test_create_rejects_bad_input(manager: AuthManager) -> None:
    with pytest.raises(PermissionFormatError):
        manager.create_access_token("u", "agent", ["patient:fly"])
    with pytest.raises(ValueError, match="role"):
        manager.create_access_token("u", "wizard", [])
    with pytest.raises(ValueError, match="user_id"):
        manager.create_access_token("", "agent", [])
    with pytest.raises(ValueError, match="reserved"):
        manager.create_access_token("u", "agent", [], extra_claims={"permissions": ["admin:*"]})
    with pytest.raises(ValueError, match="reserved"):
        manager.create_access_token("u", "agent", [], extra_claims={"exp": 0})


def test_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV_VAR)
    with pytest.raises(AuthConfigurationError) as info:
        AuthManager()
    message = str(info.value)
    assert SECRET_ENV_VAR in message
    assert "32" in message
    assert "secrets.token_urlsafe(48)" in message
    with pytest.raises(AuthConfigurationError):
        AuthManager("")
    with pytest.raises(AuthConfigurationError, match=SECRET_ENV_VAR):
        get_auth_manager()


@pytest.mark.parametrize("weak", ["tiny-key", "x" * 31])
def test_weak_secret(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    with pytest.raises(AuthConfigurationError, match="weak") as info:
        AuthManager(weak)
    assert weak not in str(info.value)
    monkeypatch.setenv(SECRET_ENV_VAR, weak)
    with pytest.raises(AuthConfigurationError, match="weak"):
        AuthManager()


def test_secret_of_exactly_32_characters_is_accepted() -> None:
    AuthManager(SECRET_32)


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    token = AuthManager(OTHER_SECRET).create_access_token("u", "agent", [])
    assert AuthManager(OTHER_SECRET).verify_token(token)["user_id"] == "u"
    with pytest.raises(InvalidTokenError):
        AuthManager().verify_token(token)


def test_stronger_algorithms_need_longer_secrets() -> None:
    with pytest.raises(AuthConfigurationError, match="weak"):
        AuthManager(SECRET_40, algorithm="HS512")
    strong = AuthManager(SECRET_64, algorithm="HS512")
    assert strong.verify_token(strong.create_access_token("u", "agent", []))["user_id"] == "u"


def test_algorithm_mismatch_rejected() -> None:
    token = AuthManager(SECRET_64, algorithm="HS512").create_access_token("u", "agent", [])
    with pytest.raises(InvalidTokenError, match="algorithm"):
        AuthManager(SECRET_64).verify_token(token)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithm": "RS256"},
        {"algorithm": "none"},
        {"issuer": ""},
        {"audience": ""},
        {"access_token_ttl": timedelta(0)},
    ],
)
def test_invalid_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(AuthConfigurationError):
        AuthManager(**kwargs)


def test_repr_hides_secret(manager: AuthManager) -> None:
    assert SECRET not in repr(manager)
    assert "HS256" in repr(manager)


def test_actor_from_claims(manager: AuthManager) -> None:
    token = manager.create_access_token(
        "dr_martinez",
        "physician",
        ["patient:write"],
        organization="GH",
        patient_ids=["p-1"],
    )
    claims = manager.verify_token(token)
    actor = actor_from_claims(claims)
    assert actor.id == actor.name == "dr_martinez"
    assert actor.role is ActorRole.PHYSICIAN
    assert actor.permissions == ("patient:write",)
    assert actor.organization == "GH"
    assert actor.patient_ids == ("p-1",)
    assert actor.session_id == claims["jti"]
    assert actor.can("read", "Patient")
    assert not actor.can("read", "Observation")


def test_actor_from_bad_claims() -> None:
    with pytest.raises(InvalidTokenError, match="role"):
        actor_from_claims({"user_id": "u", "role": "wizard", "permissions": []})
    with pytest.raises(InvalidTokenError, match="name"):
        actor_from_claims({"role": "agent", "permissions": []})


def test_default_manager_is_cached_and_follows_env(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_auth_manager()
    assert get_auth_manager() is first
    token = first.create_access_token("u", "agent", [])

    monkeypatch.setenv(SECRET_ENV_VAR, OTHER_SECRET)
    second = get_auth_manager()
    assert second is not first
    assert get_auth_manager() is second
    with pytest.raises(InvalidTokenError):
        second.verify_token(token)

    monkeypatch.setenv(SECRET_ENV_VAR, SECRET)
    assert get_auth_manager().verify_token(token)["user_id"] == "u"


def test_set_auth_manager_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    custom = AuthManager(OTHER_SECRET, issuer="custom")
    set_auth_manager(custom)
    assert get_auth_manager() is custom
    monkeypatch.setenv(SECRET_ENV_VAR, secrets.token_urlsafe(30))
    assert get_auth_manager() is custom
    set_auth_manager(None)
    assert get_auth_manager() is not custom
    assert get_auth_manager().issuer == "hacs"


def test_errors_pickle() -> None:
    for err in (TokenExpiredError(), InvalidTokenError("bad"), MissingTokenError()):
        clone = pickle.loads(pickle.dumps(err))
        assert type(clone) is type(err)
        assert str(clone) == str(err)


# -- maximum lifetime ---------------------------------------------------------------------------


def test_a_correctly_signed_hundred_year_token_is_refused(manager: AuthManager) -> None:
    claims = _base_claims()
    claims["exp"] = claims["iat"] + 100 * 365 * 24 * 3600
    with pytest.raises(InvalidTokenError, match="exceeds the maximum of 3600 s") as info:
        manager.verify_token(_sign(claims))
    assert MAX_LIFETIME_ENV_VAR in str(info.value)


def test_a_token_without_iat_is_refused(manager: AuthManager) -> None:
    claims = _base_claims()
    del claims["iat"]
    with pytest.raises(InvalidTokenError, match="'iat' is missing"):
        manager.verify_token(_sign(claims))


def test_a_token_with_a_string_iat_is_refused(manager: AuthManager) -> None:
    claims = _base_claims()
    claims["iat"] = str(claims["iat"] - 10 * 365 * 24 * 3600)  # PyJWT takes numeric strings
    with pytest.raises(InvalidTokenError, match="must be numbers"):
        manager.verify_token(_sign(claims))


def test_create_refuses_a_lifetime_beyond_the_maximum(manager: AuthManager) -> None:
    with pytest.raises(ValueError, match="longer than the maximum token lifetime"):
        manager.create_access_token("u", "agent", [], expires_in=timedelta(days=365 * 100))
    token = manager.create_access_token("u", "agent", [], expires_in=timedelta(hours=1))
    assert manager.verify_token(token)["user_id"] == "u"


def test_maximum_lifetime_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_LIFETIME_ENV_VAR, "600")
    short = get_auth_manager()
    assert short.max_token_lifetime == timedelta(minutes=10)
    assert short.access_token_ttl == timedelta(minutes=10)  # the default never exceeds it
    hour = AuthManager(max_token_lifetime=timedelta(hours=2)).create_access_token(
        "u", "agent", [], expires_in=timedelta(hours=1)
    )
    with pytest.raises(InvalidTokenError, match="exceeds the maximum of 600 s"):
        short.verify_token(hour)
    with pytest.raises(AuthConfigurationError, match="longer than the maximum"):
        AuthManager(access_token_ttl=timedelta(hours=1))
    for bad in ("0", "-5", "an hour"):
        monkeypatch.setenv(MAX_LIFETIME_ENV_VAR, bad)
        with pytest.raises(AuthConfigurationError, match=MAX_LIFETIME_ENV_VAR):
            AuthManager()


# -- weak secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("a" * 32, "only 1 distinct characters"),
        ("ab" * 16, "only 2 distinct characters"),
        ("abcdefgh" * 4, "repeats a short pattern"),
        ("abcdefghijklmnopqrstuvwxyz012345", "run of consecutive"),
        ("changeme-changeme-changeme-changeme", "placeholder word 'changeme'"),
        ("my-jwt-Secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0", "placeholder word 'secret'"),
        ("your-password-goes-here-0123456789", "placeholder word 'password'"),
    ],
)
def test_weak_secret_is_refused_with_the_reason(weak: str, reason: str) -> None:
    with pytest.raises(AuthConfigurationError, match="weak") as info:
        AuthManager(weak)
    assert reason in str(info.value)
    assert weak not in str(info.value)
    assert "secrets.token_urlsafe(48)" in str(info.value)


def test_generator_output_is_always_strong_enough() -> None:
    for _ in range(200):
        AuthManager(secrets.token_hex(16))
        AuthManager(secrets.token_urlsafe(24))
        AuthManager(secrets.token_urlsafe(48), algorithm="HS512")


def test_the_test_suite_secret_is_strong() -> None:
    from tests.conftest import JWT_SECRET

    assert AuthManager(JWT_SECRET).uses_secret(JWT_SECRET)


# -- patient-facing roles fail closed -----------------------------------------------------------


@pytest.mark.parametrize("role", ["patient", "caregiver"])
def test_patient_facing_token_without_patients_is_refused(manager: AuthManager, role: str) -> None:
    with pytest.raises(ValueError, match="must name its patients"):
        manager.create_access_token("p", role, ["patient:read"])
    claims = {**_base_claims(), "role": role, "patient_ids": None}
    with pytest.raises(InvalidTokenError, match="must list its patients") as info:
        manager.verify_token(_sign(claims))
    assert "p-1" not in str(info.value)
    del claims["patient_ids"]
    with pytest.raises(InvalidTokenError, match="must list its patients"):
        manager.verify_token(_sign(claims))
    with pytest.raises(InvalidTokenError, match="patient_ids"):
        actor_from_claims({"user_id": "p", "role": role, "permissions": []})


@pytest.mark.parametrize("role", ["patient", "caregiver"])
def test_patient_facing_token_with_patients_is_scoped(manager: AuthManager, role: str) -> None:
    token = manager.create_access_token("p", role, ["*:read"], patient_ids=["p-1"])
    actor = actor_from_claims(manager.verify_token(token))
    assert actor.patient_ids == ("p-1",)
    nobody = manager.create_access_token("p", role, ["*:read"], patient_ids=[])
    assert actor_from_claims(manager.verify_token(nobody)).patient_ids == ()


def test_other_roles_without_patients_stay_unrestricted(manager: AuthManager) -> None:
    claims = manager.verify_token(manager.create_access_token("dr", "physician", ["*:read"]))
    assert actor_from_claims(claims).patient_ids is None
