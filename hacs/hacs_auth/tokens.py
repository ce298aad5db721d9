"""JWT access tokens: issuing, verifying and turning claims into an :class:`Actor`.

:class:`AuthManager` wraps PyJWT with HACS conventions (HMAC signing, issuer/audience,
normalised permission claims). The signing secret comes from the constructor or the
``HACS_JWT_SECRET`` environment variable and is never generated silently: a made-up
secret would make every token invalid after a restart and hide a configuration bug. A weak
secret (short, a placeholder, a pattern) is refused with the reason.

Verification fails closed: a token whose lifetime (``exp - iat``) exceeds the maximum
(``HACS_JWT_MAX_LIFETIME``, default one hour) is refused even when correctly signed, a token of a
patient-facing role must name its patients, and a revoked token (see :mod:`hacs_auth.revocation`)
is refused, as is any token when the revocation list cannot be read.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard

import jwt
from pydantic import ValidationError

from hacs_auth.actor import PATIENT_FACING_ROLES, Actor, ActorRole
from hacs_auth.errors import (
    AuthConfigurationError,
    InvalidTokenError,
    MissingTokenError,
    PermissionFormatError,
    TokenExpiredError,
)
from hacs_auth.permissions import normalize_permissions
from hacs_auth.revocation import RevocationList, get_revocation_list
from hacs_auth.secret_strength import weakness

__all__ = [
    "DEFAULT_MAX_LIFETIME",
    "MAX_LIFETIME_ENV_VAR",
    "MIN_SECRET_LENGTH",
    "SECRET_ENV_VAR",
    "AuthManager",
    "actor_from_claims",
    "get_auth_manager",
    "set_auth_manager",
]

SECRET_ENV_VAR: Final = "HACS_JWT_SECRET"
MAX_LIFETIME_ENV_VAR: Final = "HACS_JWT_MAX_LIFETIME"
MIN_SECRET_LENGTH: Final = 32
DEFAULT_MAX_LIFETIME: Final = timedelta(hours=1)

# HMAC algorithms and the minimum key size (bytes) RFC 7518 recommends for each.
_ALGORITHMS: Final[dict[str, int]] = {"HS256": 32, "HS384": 48, "HS512": 64}
_GENERATE_HINT: Final = (
    'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
)
_REGISTERED_CLAIMS: Final = ("sub", "iat", "nbf", "exp", "iss", "aud", "jti")
_HACS_CLAIMS: Final = ("user_id", "role", "permissions", "organization", "patient_ids")
_RESERVED_CLAIMS: Final = frozenset(_REGISTERED_CLAIMS + _HACS_CLAIMS)


def _load_secret(secret: str | None, algorithm: str) -> str:
    """Return a usable signing secret or explain exactly how to configure one."""
    if secret is None:
        secret = os.environ.get(SECRET_ENV_VAR)
    if not secret or not secret.strip():
        raise AuthConfigurationError(
            f"No JWT signing secret configured. Set the {SECRET_ENV_VAR} environment "
            f"variable (or pass secret=...) to a random value of at least "
            f"{MIN_SECRET_LENGTH} characters; {_GENERATE_HINT}"
        )
    minimum = max(MIN_SECRET_LENGTH, _ALGORITHMS[algorithm])
    reason = weakness(secret, minimum)
    if reason is not None:
        raise AuthConfigurationError(
            f"The JWT signing secret is weak: {reason} ({algorithm} needs a random value of at "
            f"least {minimum} characters). Set {SECRET_ENV_VAR} (or secret=...) to the output "
            f"of a random generator; {_GENERATE_HINT}"
        )
    return secret


def _max_lifetime_from_env() -> timedelta:
    """``HACS_JWT_MAX_LIFETIME`` (whole seconds > 0), else :data:`DEFAULT_MAX_LIFETIME`."""
    raw = os.environ.get(MAX_LIFETIME_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_LIFETIME
    if not raw.isdigit() or int(raw) <= 0:
        raise AuthConfigurationError(
            f"{MAX_LIFETIME_ENV_VAR} must be a whole number of seconds > 0 (default "
            f"{int(DEFAULT_MAX_LIFETIME.total_seconds())}); fix or unset it."
        )
    return timedelta(seconds=int(raw))


class AuthManager:
    """Issues and verifies HACS access tokens (HMAC-signed JWTs).

    Args:
        secret: Signing secret; defaults to ``$HACS_JWT_SECRET`` read at construction.
        algorithm: ``HS256`` (default), ``HS384`` or ``HS512``.
        issuer: Value of the ``iss`` claim, checked on verification.
        audience: Value of the ``aud`` claim, checked on verification.
        access_token_ttl: Default lifetime of issued tokens (default: one hour, or the
            maximum lifetime when that is shorter).
        max_token_lifetime: The longest ``exp - iat`` this manager issues or accepts;
            defaults to ``$HACS_JWT_MAX_LIFETIME`` seconds, else one hour.
        revocations: The revocation list verification consults; defaults to the process-wide
            one (:func:`hacs_auth.revocation.set_revocation_list`), looked up at each
            verification.

    Raises:
        AuthConfigurationError: If the secret is missing or weak, or an option is invalid.
    """

    __slots__ = (
        "_revocations",
        "_secret",
        "access_token_ttl",
        "algorithm",
        "audience",
        "issuer",
        "max_token_lifetime",
    )

    def __init__(
        self,
        secret: str | None = None,
        *,
        algorithm: str = "HS256",
        issuer: str = "hacs",
        audience: str = "hacs",
        access_token_ttl: timedelta | None = None,
        max_token_lifetime: timedelta | None = None,
        revocations: RevocationList | None = None,
    ) -> None:
        """Validate the configuration and load the secret."""
        if algorithm not in _ALGORITHMS:
            raise AuthConfigurationError(
                f"Unsupported JWT algorithm {algorithm!r}; use one of {sorted(_ALGORITHMS)}."
            )
        if not issuer or not audience:
            raise AuthConfigurationError("issuer and audience must be non-empty strings.")
        maximum = _max_lifetime_from_env() if max_token_lifetime is None else max_token_lifetime
        if maximum <= timedelta(0):
            raise AuthConfigurationError("max_token_lifetime must be a positive timedelta.")
        ttl = min(timedelta(minutes=60), maximum) if access_token_ttl is None else access_token_ttl
        if ttl <= timedelta(0):
            raise AuthConfigurationError("access_token_ttl must be a positive timedelta.")
        if ttl > maximum:
            raise AuthConfigurationError(
                f"access_token_ttl ({ttl.total_seconds():.0f} s) is longer than the maximum "
                f"token lifetime ({maximum.total_seconds():.0f} s); shorten it or raise "
                f"max_token_lifetime / {MAX_LIFETIME_ENV_VAR}."
            )
        self._secret = _load_secret(secret, algorithm)
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.access_token_ttl = ttl
        self.max_token_lifetime = maximum
        self._revocations = revocations

    def __repr__(self) -> str:
        """Describe the manager without revealing the secret."""
        return (
            f"AuthManager(algorithm={self.algorithm!r}, issuer={self.issuer!r}, "
            f"audience={self.audience!r}, access_token_ttl={self.access_token_ttl!r}, "
            f"max_token_lifetime={self.max_token_lifetime!r})"
        )

    @property
    def revocations(self) -> RevocationList | None:
        """The revocation list a verification consults now (own, else process-wide)."""
        return self._revocations if self._revocations is not None else get_revocation_list()

    def uses_secret(self, secret: str | None) -> bool:
        """Whether this manager signs with ``secret`` (used to detect a rotated secret)."""
        return secret == self._secret

    def create_access_token(
        self,
        user_id: str,
        role: ActorRole | str,
        permissions: Iterable[str],
        *,
        organization: str | None = None,
        expires_in: timedelta | None = None,
        patient_ids: Sequence[str] | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Issue a signed access token.

        Args:
            user_id: Who the token is for (``sub`` and ``user_id`` claims).
            role: An :class:`ActorRole` or its name, any case.
            permissions: Permission strings; normalised, invalid ones rejected.
            organization: Optional organisation claim.
            expires_in: Lifetime; defaults to ``access_token_ttl``; at most
                ``max_token_lifetime``. A negative value yields an already-expired token
                (useful in tests).
            patient_ids: Optional patient scope; ``None`` means unrestricted, which a
                patient-facing role (``patient``, ``caregiver``) may not have.
            extra_claims: Additional claims; may not override the standard ones.

        Returns:
            The encoded JWT.

        Raises:
            ValueError: If ``user_id``, ``role``, ``expires_in``, ``patient_ids`` or
                ``extra_claims`` are invalid.
            PermissionFormatError: If a permission is malformed.
        """
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValueError("user_id must be a non-empty string.")
        try:
            role_value = ActorRole(role).value
        except ValueError:
            roles = ", ".join(r.value for r in ActorRole)
            raise ValueError(f"Unknown role {role!r}; use one of: {roles}.") from None
        perms = normalize_permissions(permissions)
        if patient_ids is None and ActorRole(role_value) in PATIENT_FACING_ROLES:
            raise ValueError(
                f"A token of the patient-facing role {role_value!r} must name its patients: "
                "pass patient_ids=[...] (an empty list reaches no patient)."
            )
        lifetime = self.access_token_ttl if expires_in is None else expires_in
        if lifetime > self.max_token_lifetime:
            raise ValueError(
                f"expires_in ({lifetime.total_seconds():.0f} s) is longer than the maximum token "
                f"lifetime ({self.max_token_lifetime.total_seconds():.0f} s); issue a shorter "
                "token and a new one when it expires."
            )
        if extra_claims:
            clash = sorted(_RESERVED_CLAIMS.intersection(extra_claims))
            if clash:
                raise ValueError(f"extra_claims may not override reserved claims: {clash}.")
        now = datetime.now(UTC)
        payload: dict[str, Any] = dict(extra_claims or {})
        payload.update(
            sub=user_id,
            user_id=user_id,
            role=role_value,
            permissions=perms,
            organization=organization,
            patient_ids=list(patient_ids) if patient_ids is not None else None,
            iat=now,
            nbf=now,
            exp=now + lifetime,
            iss=self.issuer,
            aud=self.audience,
            jti=uuid.uuid4().hex,
        )
        return jwt.encode(payload, self._secret, algorithm=self.algorithm)

    def verify_token(self, token: str) -> dict[str, Any]:
        """Verify a token and return its claims.

        Checks the signature, ``exp``/``nbf``/``iat``, the lifetime against
        ``max_token_lifetime``, issuer, audience, the presence of the required claims, the
        shape of ``user_id``, ``role``, ``permissions`` (returned normalised) and
        ``patient_ids``, then the revocation list (refreshed first when stale; this may block
        on its store, so async code uses :meth:`verify_token_async`).

        Raises:
            MissingTokenError: If ``token`` is empty.
            TokenExpiredError: If the token has expired.
            TokenRevokedError: If the token or every token of its actor was revoked.
            RevocationUnavailableError: If the revocation list cannot be read.
            InvalidTokenError: For any other verification failure.
        """
        claims = self._verified_claims(token)
        revocations = self.revocations
        if revocations is not None:
            revocations.check(claims)
        return claims

    async def verify_token_async(self, token: str) -> dict[str, Any]:
        """:meth:`verify_token` for async code: a stale revocation list reloads off the loop.

        Raises:
            The same errors as :meth:`verify_token`.
        """
        claims = self._verified_claims(token)
        revocations = self.revocations
        if revocations is not None:
            await revocations.check_async(claims)
        return claims

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """Everything :meth:`verify_token` checks except revocation."""
        if token is None or (isinstance(token, str) and not token.strip()):
            raise MissingTokenError()
        if not isinstance(token, str):
            raise InvalidTokenError("the token must be a string")
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": [*_REGISTERED_CLAIMS, "user_id", "role", "permissions"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError() from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidTokenError(
                "signature verification failed (the token was altered or signed with a "
                "different secret)"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidTokenError(
                f"wrong audience (expected audience {self.audience!r})"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidTokenError(f"wrong issuer (expected issuer {self.issuer!r})") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"required claim {exc.claim!r} is missing") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidTokenError("the token is not valid yet (nbf/iat in the future)") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidTokenError(
                f"the token's signing algorithm is not allowed (expected {self.algorithm})"
            ) from exc
        except jwt.exceptions.InvalidJTIError as exc:
            raise InvalidTokenError("claim 'jti' must be a non-empty string") from exc
        except jwt.DecodeError as exc:
            raise InvalidTokenError("the token is malformed (not a decodable JWT)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"verification failed ({type(exc).__name__})") from exc
        self._check_lifetime(claims)
        return _check_hacs_claims(claims)

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        """Refuse a token valid for longer than ``max_token_lifetime`` (or of unknown length)."""
        issued, expires = claims.get("iat"), claims.get("exp")
        # PyJWT accepts numeric strings ("123") for both; the lifetime needs real numbers.
        if not (_is_number(issued) and _is_number(expires)):
            raise InvalidTokenError("claims 'iat' and 'exp' must be numbers (seconds since 1970)")
        lifetime = float(expires) - float(issued)
        maximum = self.max_token_lifetime.total_seconds()
        if lifetime > maximum:
            raise InvalidTokenError(
                f"its lifetime (exp - iat = {lifetime:.0f} s) exceeds the maximum of "
                f"{maximum:.0f} s ({MAX_LIFETIME_ENV_VAR})"
            )


def _is_number(value: object) -> TypeGuard[float]:
    """Whether a claim is an int or float (``True`` is an int to Python, not to a JWT)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_hacs_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """Validate the HACS-specific claims of a verified token and normalise them."""
    user_id = claims.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidTokenError("claim 'user_id' must be a non-empty string")
    if claims.get("sub") != user_id:
        raise InvalidTokenError("claims 'sub' and 'user_id' disagree")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti.strip():
        # Without a usable id the token could only be revoked with all of its actor's tokens.
        raise InvalidTokenError("claim 'jti' must be a non-empty string")
    role = claims.get("role")
    try:
        if not isinstance(role, str):
            raise ValueError(role)
        claims["role"] = ActorRole(role).value
    except ValueError:
        raise InvalidTokenError("claim 'role' is not a known actor role") from None
    perms = claims.get("permissions")
    if not isinstance(perms, list):
        raise InvalidTokenError("claim 'permissions' must be a list")
    try:
        claims["permissions"] = normalize_permissions(perms)
    except PermissionFormatError:
        raise InvalidTokenError("claim 'permissions' contains a malformed permission") from None
    patient_ids = claims.get("patient_ids")
    if patient_ids is not None and not (
        isinstance(patient_ids, list) and all(isinstance(p, str) for p in patient_ids)
    ):
        raise InvalidTokenError("claim 'patient_ids' must be a list of strings or null")
    if patient_ids is None and ActorRole(claims["role"]) in PATIENT_FACING_ROLES:
        # Fail closed: no list must never mean "every patient" for a patient or a caregiver.
        raise InvalidTokenError(
            f"a token of the patient-facing role {claims['role']!r} must list its patients in "
            "claim 'patient_ids'"
        )
    claims.setdefault("organization", None)
    claims.setdefault("patient_ids", None)
    return claims


def actor_from_claims(claims: Mapping[str, Any]) -> Actor:
    """Build the :class:`Actor` a verified token speaks for.

    The actor's ``id`` and ``name`` are the ``user_id`` claim and its ``session_id`` is
    the token's ``jti``.

    Raises:
        InvalidTokenError: If the claims cannot describe a valid actor.
    """
    user_id = claims.get("user_id")
    try:
        return Actor(
            id=user_id,
            name=user_id,
            role=claims.get("role"),
            permissions=claims.get("permissions", []),
            organization=claims.get("organization"),
            patient_ids=claims.get("patient_ids"),
            session_id=claims.get("jti"),
        )
    except ValidationError as exc:
        fields = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
        if not fields:  # a rule across fields: only the patient-facing scope rule is one
            fields = ["patient_ids (required for a patient-facing role)"]
        raise InvalidTokenError(
            f"the claims do not describe a valid actor (bad fields: {', '.join(fields)})"
        ) from exc


_lock = threading.Lock()
_explicit_manager: AuthManager | None = None
_env_manager: AuthManager | None = None
_env_key: tuple[str | None, str | None] | None = None


def _environment_key() -> tuple[str | None, str | None]:
    """The variables the default manager is built from (it is rebuilt when they change)."""
    return os.environ.get(SECRET_ENV_VAR), os.environ.get(MAX_LIFETIME_ENV_VAR)


def get_auth_manager() -> AuthManager:
    """Return the process-wide :class:`AuthManager`.

    A manager installed with :func:`set_auth_manager` wins. Otherwise one is built from
    ``HACS_JWT_SECRET`` and ``HACS_JWT_MAX_LIFETIME`` on first use, cached, and rebuilt when
    either variable changes. A manager without a revocation list of its own consults the
    process-wide one (:func:`hacs_auth.revocation.set_revocation_list`).

    Raises:
        AuthConfigurationError: If no manager is set and the secret is missing or weak.
    """
    global _env_manager, _env_key
    explicit = _explicit_manager
    if explicit is not None:
        return explicit
    key = _environment_key()
    cached = _env_manager
    if cached is not None and _env_key == key:
        return cached
    with _lock:
        cached = _env_manager
        if cached is None or _env_key != key:
            # "" (not None) so a missing variable raises instead of re-reading the env.
            cached = AuthManager(key[0] or "")
            _env_manager, _env_key = cached, key
        return cached


def set_auth_manager(manager: AuthManager | None) -> None:
    """Install ``manager`` as the process-wide default (``None`` reverts to the env)."""
    global _explicit_manager, _env_manager, _env_key
    with _lock:
        _explicit_manager = manager
        _env_manager, _env_key = None, None
