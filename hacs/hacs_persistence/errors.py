"""The persistence layer's one exception tree, and the one place database errors map into it.

Callers catch ``HacsPersistenceError`` (or a subclass); driver and SQLAlchemy exceptions never leak.
Every database call runs inside :class:`translating` (``with translating():`` or ``async with``),
which turns the errors of :data:`DRIVER_ERRORS` into this tree by SQLSTATE
(:func:`translate_database_error`).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.exc import InvalidRequestError, SQLAlchemyError

__all__ = [
    "DRIVER_ERRORS",
    "ConfigurationError",
    "ConnectTimeoutError",
    "DatabaseTimeoutError",
    "DatabaseUnavailableError",
    "HacsPersistenceError",
    "InvalidQueryError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "ReferentialIntegrityError",
    "ResourceNotFoundError",
    "ResourceValidationError",
    "SchemaNotMigratedError",
    "ServerEndpoint",
    "StoredDocumentError",
    "TransientDatabaseError",
    "UniqueViolationError",
    "VersionConflictError",
    "sqlstate_of",
    "translate_database_error",
    "translating",
    "validation_details",
]


class HacsPersistenceError(Exception):
    """Base of every error raised by hacs_persistence.

    Messages never quote resource content or ids (they end up in logs and traces); where a
    caller needs the id it is an attribute, and the audit row of the call records it.
    """


class ConfigurationError(HacsPersistenceError):
    """A setting or URL is wrong; the message names it (never with a password)."""


class DatabaseUnavailableError(HacsPersistenceError):
    """The server cannot be reached or the connection was lost; the call did not take effect."""


class OutcomeUnknownError(DatabaseUnavailableError):
    """The connection was lost during COMMIT: the write may or may not have been committed."""


class DatabaseTimeoutError(HacsPersistenceError):
    """A statement, lock or pool wait exceeded its configured timeout."""


class ConnectTimeoutError(DatabaseTimeoutError, DatabaseUnavailableError):
    """The server did not answer a connection attempt within HACS_DB_CONNECT_TIMEOUT."""


class TransientDatabaseError(HacsPersistenceError):
    """A serialization failure or deadlock that persisted after the bounded retries."""


class SchemaNotMigratedError(HacsPersistenceError):
    """The schema is missing or behind: run ``hacs db upgrade`` or ``run_migration()``."""


class ResourceNotFoundError(HacsPersistenceError):
    """No such resource (or it was deleted, which the message says)."""

    def __init__(self, resource_type: str, resource_id: str, *, deleted: bool = False) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.deleted = deleted
        # The id is an attribute only: the message ends up in logs and traces.
        state = "was deleted" if deleted else "does not exist (or is not visible to the actor)"
        super().__init__(f"The requested {resource_type} {state}.")


class PermissionDeniedError(HacsPersistenceError):
    """The actor lacks the permission for this action (the attempt was audited)."""

    def __init__(self, message: str, *, actor_id: str | None = None, permission: str = "") -> None:
        self.actor_id = actor_id
        self.permission = permission
        super().__init__(message)


class VersionConflictError(HacsPersistenceError):
    """Optimistic concurrency: the stored version is not the one the caller based its change on."""

    def __init__(
        self, resource_type: str, resource_id: str, expected: int | None, actual: int | None
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Version conflict on a {resource_type}: expected version {expected}, "
            f"stored version is {actual}. Read the resource again and re-apply the change."
        )


class ResourceValidationError(HacsPersistenceError, ValueError):
    """The resource or its data is invalid; the message names the field and the problem."""


class StoredDocumentError(ResourceValidationError):
    """A stored document no longer validates against its model (changed by hand, or by an
    older model). Only the read or the one search page holding it fails.

    ``position``: where it is in the page (1-based; 1 for a read); ``errors``: pydantic's
    errors without the input values; ``next_cursor``: the cursor after the failing page, so a
    search can continue past it. The id is in the call's audit row (outcome ``error``).
    """

    def __init__(
        self,
        resource_type: str,
        errors: list[dict[str, Any]],
        *,
        position: int = 1,
        page: bool = False,
        next_cursor: str | None = None,
    ) -> None:
        self.resource_type = resource_type
        self.errors = errors
        self.position = position
        self.next_cursor = next_cursor
        where = f"document #{position} of this page" if page else "document"
        after = (
            " Other pages are unaffected: continue with this error's next_cursor."
            if next_cursor
            else ""
        )
        super().__init__(
            f"A stored {resource_type} {where} does not validate ({_summary(errors)}). Its id "
            "is in this call's audit row (outcome 'error'): repair or delete that resource." + after
        )


class InvalidQueryError(ResourceValidationError):
    """A search used an unknown field, operator or sort key, or a bad cursor or page size."""


class UniqueViolationError(ResourceValidationError):
    """A unique key (e.g. a definition's name and version) is already taken."""


class ReferentialIntegrityError(ResourceValidationError):
    """A reference points at a resource that does not exist."""

    def __init__(self, message: str, *, reference: str | None = None) -> None:
        self.reference = reference
        super().__init__(message)


# pydantic error types whose message is the validator's own text, which may quote the value.
_OWN_MESSAGES = frozenset({"value_error", "assertion_error"})


def validation_details(exc: BaseException) -> list[dict[str, Any]]:
    """A pydantic ``ValidationError``'s errors (field, message, type) without the input values.

    The input is resource content (patient data), so it is never kept; neither is the message
    of a custom validator, which may quote it.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [{"field": "(resource)", "message": "invalid value", "type": type(exc).__name__}]
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(resource)",
            "message": "invalid value" if err["type"] in _OWN_MESSAGES else str(err["msg"]),
            "type": err["type"],
        }
        for err in errors(include_url=False, include_input=False, include_context=False)
    ]


def _summary(errors: list[dict[str, Any]], shown: int = 3) -> str:
    parts = [f"{e['field']}: {e['message']}" for e in errors[:shown]]
    more = len(errors) - shown
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# Which table a foreign key column points at, to name the missing reference the way users write it.
_FK_TARGETS = {"patient_id": "Patient", "encounter_id": "Encounter"}
_KEY_DETAIL = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>[^)]*)\)")


def sqlstate_of(exc: BaseException) -> str | None:
    """Find the SQLSTATE in an asyncpg or SQLAlchemy-wrapped error, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None)
        if isinstance(code, str):
            return code
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def _detail_of(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        detail = getattr(current, "detail", None)
        if isinstance(detail, str) and detail:
            return detail
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return str(exc)


def _missing_reference(exc: BaseException) -> tuple[str, str | None]:
    match = _KEY_DETAIL.search(_detail_of(exc))
    if not match:
        return "A reference points at a resource that does not exist.", None
    cols = [c.strip() for c in match["cols"].split(",")]
    vals = [v.strip() for v in match["vals"].split(",")]
    # The message names the column, never the value: the reference is the error's attribute.
    if len(cols) == 1 and cols[0] in _FK_TARGETS:
        reference = f"{_FK_TARGETS[cols[0]]}/{vals[0]}"
        return (
            f"A {_FK_TARGETS[cols[0]]} reference (column {cols[0]}) points at a resource that "
            "does not exist; save it first or fix the reference (see the error's reference).",
            reference,
        )
    return f"A reference ({', '.join(cols)}) points at a row that does not exist.", None


# Errors that mean "the database said no" or "the connection broke"; anything else is a bug.
# The one definition: SQLAlchemy's (DBAPIError and the pool's TimeoutError among them), the
# driver's own (raised by statements run on the asyncpg connection), and the socket's (OSError,
# which covers ConnectionError and the TimeoutError of a connect timeout).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


# SQLAlchemy's errors about its API's use (``NoResultFound`` from ``.one()``, a closed result):
# the caller's own, raised by code in a ``with translating()`` block, never the database's.
_CALLERS_OWN = (InvalidRequestError,)


@dataclass(frozen=True)
class ServerEndpoint:
    """Where a connection goes, for the messages of connection errors (never a password).

    ``server``: e.g. ``host db.example.org port 5432``; ``database``: its name; ``setting``:
    where the URL came from, in the words a user can act on (``DATABASE_URL``...);
    ``connect_timeout``: seconds a connection attempt may take.
    """

    server: str
    database: str | None
    setting: str
    connect_timeout: float | None = None


class translating:
    """Run database calls so that their errors leave as this package's exceptions.

    ``with translating():`` or ``async with translating():`` around any code that talks to the
    database: an error of :data:`DRIVER_ERRORS` is re-raised as
    ``translate_database_error(exc)`` (chained, so ``sqlstate_of`` still finds the SQLSTATE);
    anything else, including an already translated error and SQLAlchemy's errors about its own
    API (``NoResultFound``...), passes unchanged.

    ``during_commit``: a lost connection means the outcome is unknown (``OutcomeUnknownError``).
    ``endpoint``: where the connection goes, so connection errors name the host and the setting
    (use it around opening a connection).
    ``specific``: a caller's more precise reading of some errors (e.g. "that view exists"); it
    returns the error to raise instead, or ``None`` for the general translation. Its error is
    not chained: it says all there is to say, and the driver's text may quote the statement.
    """

    __slots__ = ("during_commit", "endpoint", "specific")

    def __init__(
        self,
        *,
        during_commit: bool = False,
        endpoint: ServerEndpoint | None = None,
        specific: Callable[[BaseException], Exception | None] | None = None,
    ) -> None:
        self.during_commit = during_commit
        self.endpoint = endpoint
        self.specific = specific

    def __enter__(self) -> translating:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, DRIVER_ERRORS) and not isinstance(exc, _CALLERS_OWN):
            if self.specific is not None and (precise := self.specific(exc)) is not None:
                raise precise from None
            raise translate_database_error(
                exc, during_commit=self.during_commit, endpoint=self.endpoint
            ) from exc

    async def __aenter__(self) -> translating:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def translate_database_error(
    exc: BaseException,
    *,
    during_commit: bool = False,
    endpoint: ServerEndpoint | None = None,
) -> Exception:
    """Map a driver or SQLAlchemy error to this package's tree by SQLSTATE (no PHI in messages).

    With ``endpoint`` (the error came from opening a connection), connection errors name the
    server and the setting to fix.
    """
    code = sqlstate_of(exc)
    if code is None and type(exc).__name__ == "TimeoutError" and "QueuePool" in str(exc):
        return DatabaseTimeoutError(
            "No pooled connection became free within pool_timeout: every connection is busy. "
            "Raise HACS_DB_CONNECTION_POOL_SIZE / HACS_DB_MAX_OVERFLOW, or finish long "
            "transactions sooner."
        )
    if endpoint is not None and not during_commit:
        connecting = _connection_error(exc, code, endpoint)
        if connecting is not None:
            return connecting
    if code == "3D000":
        name = _MISSING_DATABASE.search(_server_message(exc))
        return DatabaseUnavailableError(
            f"database {name['name'] if name else '(named in the URL)'} does not exist: create "
            "it or fix the database URL."
        )
    if code is None:
        certificate = _certificate_error(exc)
        if certificate is not None:
            # "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: <why>": no secrets.
            reason = str(certificate) or certificate.verify_message
            return DatabaseUnavailableError(
                f"TLS certificate verification failed ({reason}): check that sslrootcert is the "
                "CA that signed the server's certificate and that the URL's host is a name the "
                "certificate lists."
            )
        if _is_connection_loss(exc):
            if during_commit:
                return OutcomeUnknownError(
                    "The connection was lost during COMMIT; the write may or may not have been "
                    "saved. Read the resource to find out before retrying."
                )
            return DatabaseUnavailableError(
                f"The database is unavailable ({type(exc).__name__}); nothing was written. "
                "Retry when it is back."
            )
        return HacsPersistenceError(f"Unexpected database error: {type(exc).__name__}")
    if code == "23503":
        message, reference = _missing_reference(exc)
        return ReferentialIntegrityError(message, reference=reference)
    if code == "23505":
        match = _KEY_DETAIL.search(_detail_of(exc))
        columns = f" ({match['cols']})" if match else ""
        # The key's columns, never its values (a name, an identifier).
        return UniqueViolationError(
            f"A unique key{columns} is already taken; use another value or update the stored one."
        )
    if code in ("23502", "23514", "22001", "22P02", "22007", "22008", "22003", "22021", "22P05"):
        return ResourceValidationError(f"Invalid data rejected by the database (SQLSTATE {code}).")
    if code == "54000":
        # e.g. "index row size 4024 exceeds btree version 4 maximum 2704 for index ...": the
        # value, not the database, is the problem. The server's message names no data.
        return ResourceValidationError(
            f"A value is too large for the database ({_server_message(exc)}); an indexed text "
            "field holds at most about 2,700 bytes."
        )
    if code in ("57014",):
        return DatabaseTimeoutError(
            "The statement was cancelled by statement_timeout; raise HACS_DB_STATEMENT_TIMEOUT "
            "or narrow the query."
        )
    if code in ("55P03", "25P03"):
        return DatabaseTimeoutError(f"Lock or idle-transaction timeout (SQLSTATE {code}).")
    if code in ("40001", "40P01"):
        return TransientDatabaseError(
            f"Transaction aborted by a concurrent one (SQLSTATE {code}) after retries; try again."
        )
    if code in ("3F000", "42P01"):
        return SchemaNotMigratedError(
            "The hacs schema is missing; run `hacs db upgrade` or "
            "`await hacs_persistence.ops.migrations.run_migration()`."
        )
    if code.startswith("08") or code in ("57P01", "57P02", "57P03"):
        if during_commit:
            return OutcomeUnknownError(
                "The connection was lost during COMMIT; the write may or may not have been saved."
            )
        return DatabaseUnavailableError(
            f"The database is unavailable (SQLSTATE {code}); nothing was written. Retry later."
        )
    if code == "28000":
        # pg_hba.conf refused the connection; the server's message names host, user and
        # database (never a password) and says whether the connection was encrypted.
        message = _server_message(exc)
        hint = (
            " The server requires TLS: use sslmode=require or verify-full."
            if "no encryption" in message
            else ""
        )
        return DatabaseUnavailableError(
            f"The server refused the connection (SQLSTATE 28000): {message}.{hint}"
        )
    if code.startswith("28"):
        # The server's message names the user ("password authentication failed for user
        # \"hacs\""), never the password.
        where = endpoint.setting if endpoint is not None else "the URL"
        return DatabaseUnavailableError(
            f"Authentication failed (SQLSTATE {code}: {_server_message(exc)}): check the user "
            f"and password in {where} (or HACS_DB_PASSWORD_FILE, ~/.pgpass)."
        )
    return HacsPersistenceError(f"Database error SQLSTATE {code}")


def _connection_error(
    exc: BaseException, code: str | None, endpoint: ServerEndpoint
) -> Exception | None:
    """What went wrong opening a connection to ``endpoint``, in its terms; None if not that."""
    if code == "3D000":
        found = _MISSING_DATABASE.search(_server_message(exc))
        name = found["name"] if found else endpoint.database or "(named in the URL)"
        return DatabaseUnavailableError(
            f"database {name} does not exist on {endpoint.server}: create it or fix "
            f"{endpoint.setting}."
        )
    if code is not None:
        return None
    server = _capitalised(endpoint.server)
    if _timed_out(exc):
        waited = f" within {endpoint.connect_timeout:g} s" if endpoint.connect_timeout else ""
        return ConnectTimeoutError(
            f"{server} did not answer{waited}: check the host and port in {endpoint.setting} "
            "and that no firewall drops the connection (the wait is HACS_DB_CONNECT_TIMEOUT)."
        )
    if _certificate_error(exc) is None and _is_connection_loss(exc):
        return DatabaseUnavailableError(
            f"{server} is not reachable ({_os_reason(exc)}): check that the server is running "
            f"and the host and port in {endpoint.setting}."
        )
    return None


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (``orig`` of SQLAlchemy errors, else ``__cause__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10 and all(c is not current for c in chain):
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def _timed_out(exc: BaseException) -> bool:
    # Builtin TimeoutError (asyncio's since 3.11), never SQLAlchemy's pool TimeoutError.
    return any(isinstance(e, TimeoutError) for e in _chain(exc))


def _os_reason(exc: BaseException) -> str:
    """The socket error behind ``exc``: ``ConnectionRefusedError: [Errno 111] ...``."""
    for error in _chain(exc):
        if isinstance(error, OSError) and str(error):
            return f"{type(error).__name__}: {error}"
    return type(exc).__name__


def _server_message(exc: BaseException) -> str:
    """The primary message of the PostgreSQL error in ``exc``'s chain (no DETAIL, no values)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(getattr(current, "sqlstate", None), str):
            message = getattr(current, "message", None)
            return str(message) if message else str(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return str(exc)


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS certificate verification failure behind ``exc``, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def _is_connection_loss(exc: BaseException) -> bool:
    current: BaseException | None = exc
    names: list[str] = []
    while current is not None and len(names) < 10:
        names.append(type(current).__name__)
        if isinstance(current, (ConnectionError, OSError)):
            return True
        orig: Any = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return any(
        n in ("ConnectionDoesNotExistError", "InterfaceError", "ConnectionFailureError")
        for n in names
    )
