"""``@require_permission``: guard a sync or async function with a JWT permission check.

The decorated function is called with ``token='<jwt>'`` or
``authorization='Bearer <jwt>'``. The token is verified with :func:`get_auth_manager`
(signature, lifetime, scope rules and the revocation list),
the permission is checked, and the function runs with ``claims=`` set to the *verified*
claims (a caller-supplied ``claims`` is discarded, never trusted) and with the token's
actor as the current actor for the duration of the call only (see
:mod:`hacs_auth.context`): the previous actor is restored when it returns or raises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from hacs_auth.actor import Actor
from hacs_auth.context import acting_as
from hacs_auth.errors import InsufficientPermissionError, InvalidTokenError, MissingTokenError
from hacs_auth.permissions import Permission, parse_permission
from hacs_auth.tokens import actor_from_claims, get_auth_manager

__all__ = ["require_permission"]

P = ParamSpec("P")
R = TypeVar("R")


def _extract_token(kwargs: Mapping[str, Any]) -> str:
    """Return the raw JWT from ``token=`` or ``authorization='Bearer <jwt>'``."""
    token = kwargs.get("token")
    if token is not None and token != "":
        if not isinstance(token, str):
            raise InvalidTokenError("the token= argument must be a string")
        return token
    header = kwargs.get("authorization")
    if header is None or header == "":
        raise MissingTokenError()
    if not isinstance(header, str):
        raise InvalidTokenError("the authorization= argument must be a string")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidTokenError("the authorization= argument must look like 'Bearer <token>'")
    if not value.strip():
        raise MissingTokenError()
    return value.strip()


def _permitted(required: Permission, claims: dict[str, Any]) -> tuple[dict[str, Any], Actor]:
    """The claims and their actor, if the actor holds ``required``."""
    actor = actor_from_claims(claims)
    if not actor.permission_set.implies(required):
        raise InsufficientPermissionError(str(required), actor.id)
    return claims, actor


def _authorize(required: Permission, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], Actor]:
    """Verify the caller's token (revocation included) and permission."""
    return _permitted(required, get_auth_manager().verify_token(_extract_token(kwargs)))


async def _authorize_async(
    required: Permission, kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], Actor]:
    """:func:`_authorize` for coroutines: a stale revocation list reloads off the loop."""
    token = _extract_token(kwargs)
    return _permitted(required, await get_auth_manager().verify_token_async(token))


def _check_accepts_claims(func: Callable[..., Any]) -> None:
    """Fail at decoration time if ``func`` cannot receive the ``claims`` keyword."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no introspectable signature: trust the caller
        return
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return
        if param.name == "claims" and param.kind is not inspect.Parameter.POSITIONAL_ONLY:
            return
    raise TypeError(
        f"@require_permission cannot decorate {func.__qualname__}: it must accept a "
        "'claims' keyword argument (or **kwargs) to receive the verified token claims."
    )


def require_permission(permission: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a verified token granting ``permission`` to call the decorated function.

    Works on both ``def`` and ``async def`` functions. The caller passes
    ``token='<jwt>'`` or ``authorization='Bearer <jwt>'``; the function receives
    ``claims=`` (the verified claims) plus every other keyword unchanged, and runs with
    the token's actor as the current actor.

    Args:
        permission: A ``resource:action`` permission such as ``"patient:read"``.

    Raises:
        PermissionFormatError: At decoration time, if ``permission`` is malformed.
        TypeError: At decoration time, if the function cannot accept ``claims=``.
        MissingTokenError: At call time, if no token was supplied.
        InvalidTokenError: At call time, if the token fails verification.
        TokenExpiredError: At call time, if the token has expired.
        TokenRevokedError: At call time, if the token (or its actor) was revoked.
        RevocationUnavailableError: At call time, if the revocation list cannot be read.
        InsufficientPermissionError: At call time, if the token lacks ``permission``.

    Example:
        >>> @require_permission("patient:read")
        ... async def get_patient_by_id(patient_id: str, **kwargs: Any) -> dict: ...
        >>> await get_patient_by_id("p-1", token=token)
    """
    required = parse_permission(permission)

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        _check_accepts_claims(func)

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                claims, actor = await _authorize_async(required, kwargs)
                kwargs["claims"] = claims
                with acting_as(actor):
                    return await async_func(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            claims, actor = _authorize(required, kwargs)
            kwargs["claims"] = claims
            with acting_as(actor):
                return func(*args, **kwargs)

        return wrapper

    return decorator
