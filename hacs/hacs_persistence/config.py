"""Connection settings: where the database is, how to reach it, and how to print it safely.

Resolution order follows the user guide: ``DATABASE_URL``, else ``HACS_DATABASE_URL``, else the
embedded PostgreSQL. Values from a ``.env`` file count as if they were in the environment (the real
environment wins). Empty values count as unset.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values, find_dotenv
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from hacs_persistence.errors import ConfigurationError
from hacs_persistence.limits import DEFAULT_MAX_DOCUMENT_BYTES

__all__ = [
    "URL_ENV_VARS",
    "ConnectionTarget",
    "DatabaseSettings",
    "SslMode",
    "build_connection_target",
    "load_settings",
    "mask_url",
    "resolve_database_url",
]

URL_ENV_VARS = ("DATABASE_URL", "HACS_DATABASE_URL")
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}


class DatabaseSettings(BaseSettings):
    """Pool, timeout and TLS settings; accepts the guide's ``production_config`` dict as written.

    Every field can also come from the environment with the ``HACS_DB_`` prefix
    (``HACS_DB_CONNECTION_POOL_SIZE=10``). Timeouts are in milliseconds, as in PostgreSQL.
    """

    model_config = SettingsConfigDict(
        env_prefix="HACS_DB_", env_file=".env", extra="forbid", validate_default=True
    )

    connection_pool_size: int = Field(20, ge=1, le=1000)
    max_overflow: int = Field(30, ge=0, le=1000)
    pool_timeout: float = Field(30, gt=0)
    pool_recycle: int = Field(3600, ge=-1)
    ssl_mode: SslMode = "prefer"
    ssl_root_cert: Path | None = None
    application_name: str = Field("hacs", max_length=63)
    statement_timeout: int = Field(30000, ge=0)
    idle_in_transaction_session_timeout: int = Field(60000, ge=0)
    # PgBouncer in transaction mode cannot keep named prepared statements across transactions:
    # this one switch turns every prepared-statement cache off.
    prepared_statements: bool = True
    prepared_statement_cache_size: int = Field(512, ge=0)
    # Largest document (a resource's JSON) a write accepts; see hacs_persistence.limits.
    max_document_bytes: int = Field(DEFAULT_MAX_DOCUMENT_BYTES, ge=1024, le=1024**3)

    @field_validator("ssl_mode", mode="before")
    @classmethod
    def _normalise_ssl_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def load_settings(**overrides: Any) -> DatabaseSettings:
    """Settings from the environment plus explicit overrides; errors name the setting."""
    try:
        return DatabaseSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(
            f"Invalid database settings ({problems}). Fix the argument or the HACS_DB_* variable."
        ) from None


def _dotenv() -> dict[str, str | None]:
    path = find_dotenv(usecwd=True)
    return dict(dotenv_values(path)) if path else {}


def resolve_database_url(explicit: str | None = None) -> tuple[str | None, str]:
    """Return ``(url, source)``; ``url`` is None when the embedded default should be used.

    ``source`` names where the URL came from (``argument``, ``DATABASE_URL``, ``HACS_DATABASE_URL``,
    ``.env:DATABASE_URL``...) or ``embedded``.
    """
    if explicit:
        return explicit, "argument"
    file_values = _dotenv()
    for name in URL_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value, name
        value = file_values.get(name)
        if value:
            return value, f".env:{name}"
    return None, "embedded"


def mask_url(url: str | URL | None) -> str:
    """Render a URL with its password hidden; never raises, so it is safe in error messages."""
    if url is None:
        return "<embedded>"
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    query = dict(parsed.query)
    if "password" in query:
        query["password"] = "***"
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=True)


@dataclass(frozen=True)
class ConnectionTarget:
    """A database URL translated into what SQLAlchemy's asyncpg dialect and asyncpg really take."""

    url: URL
    connect_args: dict[str, Any] = field(hash=False)
    ssl_mode: str
    masked: str

    @property
    def cache_key(self) -> str:
        """A key that identifies the target for engine caching (contains the password)."""
        return (
            self.url.render_as_string(hide_password=False)
            + "|"
            + repr(sorted((k, repr(v)) for k, v in self.connect_args.items() if k != "ssl"))
            + f"|{self.ssl_mode}"
        )


def _ssl_argument(mode: str, root_cert: str | None, masked: str) -> Any:
    # asyncpg accepts the libpq mode names itself, but the verify-* modes need the CA file that the
    # URL names; asyncpg would otherwise look only in ~/.postgresql/root.crt.
    if mode in ("disable", "allow", "prefer", "require"):
        return mode
    cafile = root_cert or os.environ.get("PGSSLROOTCERT")
    if not cafile:
        raise ConfigurationError(
            f"sslmode={mode} needs a CA certificate: add ?sslrootcert=/path/to/ca.pem to the URL "
            f"or set HACS_DB_SSL_ROOT_CERT ({masked})."
        )
    if not Path(cafile).is_file():
        raise ConfigurationError(f"sslrootcert file not found: {cafile} ({masked}).")
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = mode == "verify-full"
    return context


def build_connection_target(url: str, settings: DatabaseSettings) -> ConnectionTarget:
    """Parse and normalise a PostgreSQL URL (``postgres://``, socket ``?host=``, ``sslmode``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            "DATABASE_URL is not a valid URL; expected postgresql://user:password@host:5432/dbname "
            "or postgresql://user@/dbname?host=/socket/dir"
        ) from None
    masked = mask_url(parsed)
    if parsed.drivername not in _SCHEMES:
        raise ConfigurationError(
            f"Unsupported database URL scheme {parsed.drivername!r} in {masked}: use "
            "postgresql://, "
            "postgres:// or postgresql+asyncpg://."
        )
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in parsed.query.items()}
    connect_args: dict[str, Any] = {}
    socket_host = query.pop("host", None)
    if socket_host:
        connect_args["host"] = socket_host
    if "port" in query and parsed.port is None:
        connect_args["port"] = int(query.pop("port"))
    ssl_mode = (query.pop("sslmode", None) or query.pop("ssl", None) or settings.ssl_mode).lower()
    if ssl_mode not in _SSL_MODES:
        raise ConfigurationError(
            f"sslmode={ssl_mode!r} in {masked} is not one of {', '.join(_SSL_MODES)}."
        )
    root_cert = query.pop("sslrootcert", None) or (
        str(settings.ssl_root_cert) if settings.ssl_root_cert else None
    )
    application_name = query.pop("application_name", None) or settings.application_name
    unknown = sorted(query)
    if unknown:
        raise ConfigurationError(
            f"Unsupported URL parameter(s) {', '.join(unknown)} in {masked}; supported: "
            "host, port, "
            "sslmode, sslrootcert, application_name."
        )
    connect_args["ssl"] = _ssl_argument(ssl_mode, root_cert, masked)
    connect_args["server_settings"] = {
        "application_name": application_name,
        "statement_timeout": str(settings.statement_timeout),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_session_timeout),
        "TimeZone": "UTC",
    }
    if settings.prepared_statements:
        connect_args["statement_cache_size"] = settings.prepared_statement_cache_size
    else:
        connect_args["statement_cache_size"] = 0
    normalised = parsed.set(drivername="postgresql+asyncpg", query={})
    return ConnectionTarget(
        url=normalised, connect_args=connect_args, ssl_mode=ssl_mode, masked=masked
    )
