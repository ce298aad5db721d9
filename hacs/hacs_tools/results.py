"""The result every hacs tool returns, and the one mapping from exceptions to failed results.

Agents cannot catch exceptions, so tools report outcomes as data: ``success``, a readable
``message`` and a stable ``error`` code to branch on. Messages name resource types,
fields and permissions, never resource content, so a result can be shown or logged without
leaking PHI.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from hacs_auth import AuthError, InactiveActorError, InsufficientPermissionError
from hacs_models import UnknownResourceTypeError
from hacs_persistence.errors import (
    ConfigurationError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    HacsPersistenceError,
    InvalidQueryError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    ResourceNotFoundError,
    ResourceValidationError,
    SchemaNotMigratedError,
    TransientDatabaseError,
    UniqueViolationError,
    VersionConflictError,
)

__all__ = [
    "ErrorCode",
    "HACSResult",
    "ToolError",
    "failure",
    "failure_from_exception",
    "success",
]

_log = logging.getLogger("hacs_tools")

# At most this many field errors are spelled out in a message (all of them go in ``data``).
_MESSAGE_ERRORS = 5
# A unique-violation detail looks like "Key (name, version)=(value, 1) ..."; the values go.
_KEY_VALUES = re.compile(r"\)=\(.*\)")


class ErrorCode(StrEnum):
    """Stable ``HACSResult.error`` codes an agent can branch on."""

    NO_ACTOR = "no_actor"
    ACTOR_MISMATCH = "actor_mismatch"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    VERSION_CONFLICT = "version_conflict"
    VALIDATION = "validation"
    INVALID_QUERY = "invalid_query"
    UNIQUE_VIOLATION = "unique_violation"
    REFERENTIAL_INTEGRITY = "referential_integrity"
    UNKNOWN_RESOURCE_TYPE = "unknown_resource_type"
    DATABASE_UNAVAILABLE = "database_unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    DATABASE_TIMEOUT = "database_timeout"
    TRANSIENT = "transient"
    SCHEMA_NOT_MIGRATED = "schema_not_migrated"
    CONFIGURATION = "configuration"
    AUTH_ERROR = "auth_error"
    DATABASE_ERROR = "database_error"
    INTERNAL_ERROR = "internal_error"


class HACSResult(BaseModel):
    """Outcome of a tool call: never an exception, always this.

    Attributes:
        success: Whether the operation took effect (or the read found what it looked for).
        message: One human-readable sentence, free of resource content.
        data: The payload (e.g. ``{"resource": {...}}``), or details of a failure.
        error: An :class:`ErrorCode` value on failure, ``None`` on success.
        actor_id: The id of the actor the call ran as (or would have run as).
    """

    model_config = ConfigDict(extra="forbid")

    success: bool
    message: str
    data: dict[str, Any] | None = None
    error: str | None = None
    actor_id: str | None = None


class ToolError(Exception):
    """A refusal decided by the tool layer itself (no actor, bad argument, ...).

    Raised inside a tool and turned into a failed result by :func:`failure_from_exception`.
    """

    def __init__(self, code: ErrorCode, message: str, data: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(message)


def success(
    message: str, data: dict[str, Any] | None = None, *, actor_id: str | None = None
) -> HACSResult:
    """A successful result."""
    return HACSResult(success=True, message=message, data=data, actor_id=actor_id)


def failure(
    code: ErrorCode,
    message: str,
    data: dict[str, Any] | None = None,
    *,
    actor_id: str | None = None,
) -> HACSResult:
    """A failed result with error ``code``."""
    return HACSResult(
        success=False, message=message, data=data, error=code.value, actor_id=actor_id
    )


def failure_from_exception(
    exc: Exception, *, operation: str, actor_id: str | None = None
) -> HACSResult:
    """Turn an exception raised during ``operation`` into a failed result.

    Known errors keep their (PHI-free) message; anything else becomes ``internal_error``
    naming only the exception type, and is logged with its traceback for operators.
    """
    code, message, data = _classify(exc, operation)
    return failure(code, message, data, actor_id=actor_id)


def _classify(exc: Exception, operation: str) -> tuple[ErrorCode, str, dict[str, Any] | None]:
    # Order matters: the persistence tree nests (InvalidQueryError is a validation error,
    # OutcomeUnknownError a DatabaseUnavailableError), so the specific classes come first.
    if isinstance(exc, ToolError):
        return exc.code, exc.message, exc.data
    if isinstance(exc, ValidationError):
        return _validation(exc, f"{exc.title} is invalid")
    if isinstance(exc, UnknownResourceTypeError):
        return ErrorCode.UNKNOWN_RESOURCE_TYPE, str(exc), None
    if isinstance(exc, HacsPersistenceError):
        return _persistence(exc)
    if isinstance(exc, (InsufficientPermissionError, InactiveActorError)):
        return ErrorCode.PERMISSION_DENIED, str(exc), None
    if isinstance(exc, AuthError):
        return ErrorCode.AUTH_ERROR, str(exc), None
    _log.error("%s failed with an unexpected %s", operation, type(exc).__name__, exc_info=exc)
    # str(exc) of an unknown error could quote data, so only its type is reported.
    return (
        ErrorCode.INTERNAL_ERROR,
        f"{operation} failed with an unexpected {type(exc).__name__}; see the server log.",
        {"exception_type": type(exc).__name__},
    )


def _persistence(exc: HacsPersistenceError) -> tuple[ErrorCode, str, dict[str, Any] | None]:
    if isinstance(exc.__cause__, ValidationError):
        # A stored document that no longer validates: pydantic's own text quotes the input.
        return _validation(exc.__cause__, f"Stored {exc.__cause__.title} data is invalid")
    if isinstance(exc, ResourceNotFoundError):
        data = {"resource_type": exc.resource_type, "id": exc.resource_id, "deleted": exc.deleted}
        return ErrorCode.NOT_FOUND, str(exc), data
    if isinstance(exc, PermissionDeniedError):
        return ErrorCode.PERMISSION_DENIED, str(exc), {"permission": exc.permission or None}
    if isinstance(exc, VersionConflictError):
        return (
            ErrorCode.VERSION_CONFLICT,
            _conflict_message(exc),
            {
                "resource_type": exc.resource_type,
                "id": exc.resource_id,
                "expected_version": exc.expected,
                "stored_version": exc.actual,
            },
        )
    if isinstance(exc, InvalidQueryError):
        return ErrorCode.INVALID_QUERY, str(exc), None
    if isinstance(exc, UniqueViolationError):
        return ErrorCode.UNIQUE_VIOLATION, _KEY_VALUES.sub(")", str(exc)), None
    if isinstance(exc, ReferentialIntegrityError):
        return ErrorCode.REFERENTIAL_INTEGRITY, str(exc), {"reference": exc.reference}
    if isinstance(exc, ResourceValidationError):
        return ErrorCode.VALIDATION, str(exc), None
    if isinstance(exc, OutcomeUnknownError):
        return ErrorCode.OUTCOME_UNKNOWN, str(exc), None
    if isinstance(exc, DatabaseUnavailableError):
        return ErrorCode.DATABASE_UNAVAILABLE, str(exc), None
    if isinstance(exc, DatabaseTimeoutError):
        return ErrorCode.DATABASE_TIMEOUT, str(exc), None
    if isinstance(exc, TransientDatabaseError):
        return ErrorCode.TRANSIENT, str(exc), None
    if isinstance(exc, SchemaNotMigratedError):
        return ErrorCode.SCHEMA_NOT_MIGRATED, str(exc), None
    if isinstance(exc, ConfigurationError):
        return ErrorCode.CONFIGURATION, str(exc), None
    return ErrorCode.DATABASE_ERROR, str(exc), None


def _conflict_message(exc: VersionConflictError) -> str:
    # The adapter's text is written for programmers; an agent needs to know what to do next.
    # The id is in the result's data, never in the message (messages end up in logs).
    where = f"this {exc.resource_type}"
    if exc.expected is None and exc.actual is None:
        return (
            f"Updating {where} needs the version it is based on: pass expected_version= or "
            "include 'version' from read_resource in the resource."
        )
    if exc.expected is None:
        return (
            f"The {exc.resource_type} already exists (version {exc.actual}); to change it, read "
            "it and "
            f"update it with expected_version={exc.actual}."
        )
    return str(exc)


def _validation(exc: ValidationError, title: str) -> tuple[ErrorCode, str, dict[str, Any] | None]:
    # include_input/include_context off: the input is resource content (possibly PHI).
    errors = [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(resource)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:_MESSAGE_ERRORS])
    more = len(errors) - _MESSAGE_ERRORS
    suffix = f" (and {more} more)" if more > 0 else ""
    return ErrorCode.VALIDATION, f"{title}: {shown}{suffix}", {"errors": errors}
