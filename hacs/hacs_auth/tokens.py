"""JWT access tokens: issuing, verifying and turning claims into an :class:`Actor`.

:class:`AuthManager` wraps PyJWT with HACS conventions (HMAC signing, issuer/audience,
normalised permission claims). The signing secret comes from the constructor or the
``HACS_JWT_SECRET`` environment variable and is never generated silently: a made-up
secret would make every token invalid after a restart and hide a configuration bug.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from pydantic import ValidationError

from hacs_auth.actor import Actor, ActorRole
from hacs_auth.errors import (
    AuthConfigurationError,
    InvalidTokenError,
    MissingTokenError,
    PermissionFormatError,
    TokenExpiredError,
)
from hacs_auth.permissions import normalize_permissions

__all__ = [
    "MIN_SECRET_LENGTH",
    "SECRET_ENV_VAR",
    "AuthManager",
    "actor_from_claims",
    "get_auth_manager",
    "set_auth_manager",
]

SECRET_ENV_VAR: Final = "HACS_JWT_SECRET"
MIN_SECRET_LENGTH: Final = 32

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
    if len(secret.encode("utf-8")) < minimum:
        raise AuthConfigurationError(
            f"The JWT signing secret is weak: it is shorter than {minimum} characters "
            f"(required for {algorithm}). Set {SECRET_ENV_VAR} (or secret=...) to a "
            f"random value of at least {minimum} characters; {_GENERATE_HINT}"
        )
    return secret


class AuthManager:
    """Issues and verifies HACS access tokens (HMAC-signed JWTs).

    Args:
        secret: Signing secret; defaults to ``$HACS_JWT_SECRET`` read at construction.
        algorithm: ``HS256`` (default), ``HS384`` or ``HS512``.
        issuer: Value of the ``iss`` claim, checked on verification.
        audience: Value of the ``aud`` claim, checked on verification.
        access_token_ttl: Default lifetime of issued tokens.

    Raises:
        AuthConfigurationError: If the secret is missing or weak, or an option is invalid.
    """

    __slots__ = ("_secret", "access_token_ttl", "algorithm", "audience", "issuer")

    def __init__(
        self,
        secret: str | None = None,
        *,
        algorithm: str = "HS256",
        issuer: str = "hacs",
        audience: str = "hacs",
        access_token_ttl: timedelta = timedelta(minutes=60),
    ) -> None:
        """Validate the configuration and load the secret."""
        if algorithm not in _ALGORITHMS:
            raise AuthConfigurationError(
                f"Unsupported JWT algorithm {algorithm!r}; use one of {sorted(_ALGORITHMS)}."
            )
        if not issuer or not audience:
            raise AuthConfigurationError("issuer and audience must be non-empty strings.")
        if access_token_ttl <= timedelta(0):
            raise AuthConfigurationError("access_token_ttl must be a positive timedelta.")
        self._secret = _load_secret(secret, algorithm)
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.access_token_ttl = access_token_ttl

    def __repr__(self) -> str:
        """Describe the manager without revealing the secret."""
        return (
            f"AuthManager(algorithm={self.algorithm!r}, issuer={self.issuer!r}, "
            f"audience={self.audience!r}, access_token_ttl={self.access_token_ttl!r})"
        )

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
            expires_in: Lifetime; defaults to ``access_token_ttl``. A negative value
                yields an already-expired token (useful in tests).
            patient_ids: Optional patient scope; ``None`` means unrestricted.
            extra_claims: Additional claims; may not override the standard ones.

        Returns:
            The encoded JWT.

        Raises:
            ValueError: If ``user_id``, ``role`` or ``extra_claims`` are invalid.
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
        if extra_claims:
            clash = sorted(_RESERVED_CLAIMS.intersection(extra_claims))
            if clash:
                raise ValueError(f"extra_claims may not override reserved claims: {clash}.")
        now = datetime.now(UTC)
        lifetime = self.access_token_ttl if expires_in is None else expires_in
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

        Checks the signature, ``exp``/``nbf``/``iat``, issuer, audience, the presence of
        the required claims and the shape of ``user_id``, ``role`` and ``permissions``
        (returned normalised).

        Raises:
            MissingTokenError: If ``token`` is empty.
            TokenExpiredError: If the token has expired.
            InvalidTokenError: For any other verification failure.
        """
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
        except jwt.DecodeError as exc:
            raise InvalidTokenError("the token is malformed (not a decodable JWT)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"verification failed ({type(exc).__name__})") from exc
        return _check_hacs_claims(claims)


def _check_hacs_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """Validate the HACS-specific claims of a verified token and normalise them."""
    user_id = claims.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidTokenError("claim 'user_id' must be a non-empty string")
    if claims.get("sub") != user_id:
        raise InvalidTokenError("claims 'sub' and 'user_id' disagree")
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
        raise InvalidTokenError(
            f"the claims do not describe a valid actor (bad fields: {', '.join(fields)})"
        ) from exc


_lock = threading.Lock()
_explicit_manager: AuthManager | None = None
_env_manager: AuthManager | None = None


def get_auth_manager() -> AuthManager:
    """Return the process-wide :class:`AuthManager`.

    A manager installed with :func:`set_auth_manager` wins. Otherwise one is built from
    ``HACS_JWT_SECRET`` on first use, cached, and rebuilt when the variable changes.

    Raises:
        AuthConfigurationError: If no manager is set and the secret is missing or weak.
    """
    global _env_manager
    explicit = _explicit_manager
    if explicit is not None:
        return explicit
    secret = os.environ.get(SECRET_ENV_VAR)
    cached = _env_manager
    if cached is not None and cached.uses_secret(secret):
        return cached
    with _lock:
        cached = _env_manager
        if cached is None or not cached.uses_secret(secret):
            # "" (not None) so a missing variable raises instead of re-reading the env.
            cached = AuthManager(secret or "")
            _env_manager = cached
        return cached


def set_auth_manager(manager: AuthManager | None) -> None:
    """Install ``manager`` as the process-wide default (``None`` reverts to the env)."""
    global _explicit_manager, _env_manager
    with _lock:
        _explicit_manager = manager
        _env_manager = None
