"""Exceptions raised by ``hacs_auth``.

Every error derives from :class:`AuthError` so callers can catch the whole family at
once, and every message ends with what to do next. Messages never contain a token or a
secret: they name the claim, permission or actor involved instead.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PERMISSION_GRAMMAR",
    "AuthConfigurationError",
    "AuthError",
    "InactiveActorError",
    "InsufficientPermissionError",
    "InvalidTokenError",
    "MissingTokenError",
    "PermissionFormatError",
    "RevocationUnavailableError",
    "TokenExpiredError",
    "TokenRevokedError",
]

PERMISSION_GRAMMAR = (
    "permissions have the form 'resource:action' where resource is a resource type "
    "such as 'patient' or 'medication_request' (or '*' / 'admin' for every type) and "
    "action is one of 'read', 'write', 'delete' or '*'; "
    "examples: 'patient:read', 'observation:write', '*:read', 'admin:*'"
)


class AuthError(Exception):
    """Base class for every authentication and authorisation error in HACS."""

    _ctor_args: tuple[Any, ...] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the original constructor arguments (keeps custom ``__init__``s)."""
        args = self._ctor_args if self._ctor_args is not None else self.args
        return (type(self), args, self.__dict__)


class AuthConfigurationError(AuthError):
    """The auth layer is misconfigured (e.g. the JWT secret is missing or too weak)."""


class MissingTokenError(AuthError):
    """A protected call was made without an access token."""

    def __init__(self, message: str | None = None) -> None:
        """Build the error; the default message explains how to pass a token."""
        super().__init__(
            message
            or (
                "No access token was supplied. Pass token='<jwt>' or "
                "authorization='Bearer <jwt>'; create one with "
                "AuthManager().create_access_token(...)."
            )
        )


class InvalidTokenError(AuthError):
    """The access token could not be verified (signature, shape, issuer, audience...)."""

    _next_step = "Obtain a new token from the issuing AuthManager and retry."

    def __init__(self, reason: str) -> None:
        """Build the error from a short, token-free ``reason``."""
        self.reason = reason
        self._ctor_args = (reason,)
        super().__init__(f"Invalid access token: {reason}. {self._next_step}")


class TokenExpiredError(InvalidTokenError):
    """The access token was valid but its ``exp`` time has passed."""

    _next_step = "Tokens are short-lived: request a fresh token and retry."

    def __init__(self, reason: str = "the token has expired") -> None:
        """Build the error; ``reason`` defaults to a plain 'expired' message."""
        super().__init__(reason)


class TokenRevokedError(InvalidTokenError):
    """The access token was revoked (by its ``jti``, or all tokens of its actor)."""

    _next_step = (
        "A revoked token never becomes valid again: request a new token (an administrator may "
        "have deactivated this actor)."
    )

    def __init__(self, reason: str = "the token has been revoked") -> None:
        """Build the error; ``reason`` says whether the token or its actor was revoked."""
        super().__init__(reason)


class RevocationUnavailableError(InvalidTokenError):
    """The revocation list could not be read, so the token is refused (fail closed)."""

    _next_step = (
        "Check that the database holding the token revocations is reachable (and readable by "
        "this role), then retry."
    )

    def __init__(self, reason: str = "the revocation list could not be checked") -> None:
        """Build the error from a short reason that names no token and no secret."""
        super().__init__(reason)


class InsufficientPermissionError(AuthError):
    """The caller is authenticated but lacks the permission the operation needs."""

    def __init__(self, permission: str, actor_id: str | None = None) -> None:
        """Build the error naming the missing ``permission``; ``actor_id`` stays an attribute.

        Messages end up in logs and traces, so they never carry the person's id.
        """
        self.permission = permission
        self.actor_id = actor_id
        self._ctor_args = (permission, actor_id)
        who = "The actor" if actor_id else "The caller"
        super().__init__(
            f"{who} lacks permission '{permission}'. Grant '{permission}' (or a covering "
            f"wildcard such as '{permission.split(':', 1)[0]}:*') to this actor or token, "
            "or perform the operation as an actor that has it."
        )


class InactiveActorError(AuthError):
    """The actor is deactivated (``is_active=False``) and may not do anything."""

    def __init__(self, actor_id: str) -> None:
        """Build the error; the inactive ``actor_id`` is an attribute, never in the message."""
        self.actor_id = actor_id
        self._ctor_args = (actor_id,)
        super().__init__(
            "The actor is inactive and cannot perform any operation. "
            "Reactivate it (is_active=True) or act as a different actor."
        )


class PermissionFormatError(AuthError, ValueError):
    """A permission string does not follow the ``resource:action`` grammar.

    Also a :class:`ValueError`, so pydantic reports it as an ordinary validation error.
    """

    def __init__(self, permission: object, reason: str) -> None:
        """Build the error naming the bad ``permission`` and why it was rejected."""
        self.permission = permission
        self.reason = reason
        self._ctor_args = (permission, reason)
        super().__init__(
            f"Invalid permission {permission!r}: {reason}. Fix the string: {PERMISSION_GRAMMAR}."
        )
