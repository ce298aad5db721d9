"""Connection settings: where the database is, how to reach it, and how to print it safely.

Resolution order follows the user guide: ``DATABASE_URL``, else ``HACS_DATABASE_URL``, else the
embedded PostgreSQL. Values from a ``.env`` file count as if they were in the environment (the real
environment wins). Empty values count as unset.

Only one ``.env`` is ever read: the file ``HACS_ENV_FILE`` names, else ``.env`` in the working
directory. Never one found by walking up the parents: a ``.env`` dropped in a parent directory
(a shared checkout, a home directory) must not redirect the program to another database.

Passwords are shown nowhere: :func:`mask_url` masks a parsed URL (never by substring, which would
reveal a short password by what it replaced), :func:`redact` applies it to messages, and
``HACS_DB_PASSWORD_FILE`` keeps the password out of the URL altogether.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from hacs_persistence.errors import ConfigurationError
from hacs_persistence.limits import DEFAULT_MAX_DOCUMENT_BYTES

__all__ = [
    "ENV_FILE_VAR",
    "REPLICA_URLS_ENV_VAR",
    "URL_ENV_VARS",
    "ConnectionTarget",
    "DatabaseSettings",
    "SslMode",
    "build_connection_target",
    "env_file_path",
    "load_settings",
    "mask_url",
    "redact",
    "resolve_database_url",
    "resolve_replica_urls",
    "url_has_password",
]

URL_ENV_VARS = ("DATABASE_URL", "HACS_DATABASE_URL")
# Comma-separated URLs of streaming standbys that serve reads (db/replicas.py).
REPLICA_URLS_ENV_VAR = "HACS_READ_REPLICA_URLS"
ENV_FILE_VAR = "HACS_ENV_FILE"
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}
_ENCODE_HINT = (
    "percent-encode reserved characters in the user name and password (@ is %40, : is %3A, "
    "/ is %2F), or better, take the password out of the URL: HACS_DB_PASSWORD_FILE, PGPASSFILE "
    "(~/.pgpass) or PGPASSWORD"
)
# A URL in free text: ``scheme://`` then the user info up to the last ``@`` of the token, so a
# password with an unencoded ``@`` is hidden whole.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/@\s]*):\S*@")
# libpq key/value spelling (``password=...``) and a ``?password=`` query parameter.
_PASSWORD_PARAM = re.compile(r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)[^\s&;,'\"]+", re.I)


def env_file_path() -> Path | None:
    """The one ``.env`` to read: ``HACS_ENV_FILE`` if set, else ``./.env`` if it exists.

    Raises:
        ConfigurationError: ``HACS_ENV_FILE`` names something that is not a file.
    """
    named = os.environ.get(ENV_FILE_VAR)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"{ENV_FILE_VAR} names {path}, which is not a file: fix the path or unset "
                f"{ENV_FILE_VAR} to read .env from the working directory."
            )
        return path.absolute()
    local = Path.cwd() / ".env"
    return local if local.is_file() else None


class DatabaseSettings(BaseSettings):
    """Pool, timeout and TLS settings; accepts the guide's ``production_config`` dict as written.

    Every field can also come from the environment with the ``HACS_DB_`` prefix
    (``HACS_DB_CONNECTION_POOL_SIZE=10``). Timeouts are in milliseconds, as in PostgreSQL.
    """

    model_config = SettingsConfigDict(env_prefix="HACS_DB_", extra="forbid", validate_default=True)

    connection_pool_size: int = Field(20, ge=1, le=1000)
    max_overflow: int = Field(30, ge=0, le=1000)
    pool_timeout: float = Field(30, gt=0)
    # Seconds a connection attempt may take (asyncpg waits 60 by default): a host that drops
    # packets then fails with a ConnectTimeoutError naming it instead of hanging.
    connect_timeout: float = Field(10, gt=0, le=3600)
    pool_recycle: int = Field(3600, ge=-1)
    # A round trip on every checkout to prove the connection alive. Off: a connection the
    # server closed (restart, terminated backend) is replaced for free (db/engine.py); on, for
    # networks that drop idle connections without a word (a NAT, a firewall).
    pool_pre_ping: bool = False
    ssl_mode: SslMode = "prefer"
    ssl_root_cert: Path | None = None
    application_name: str = Field("hacs", max_length=63)
    statement_timeout: int = Field(30000, ge=0)
    idle_in_transaction_session_timeout: int = Field(60000, ge=0)
    # PgBouncer in transaction mode cannot keep named prepared statements across transactions:
    # this one switch turns every prepared-statement cache off.
    prepared_statements: bool = True
    prepared_statement_cache_size: int = Field(512, ge=0)
    # The password as a file (a Docker or Kubernetes secret, say), so it is in neither the URL,
    # the command line nor the environment.
    password_file: Path | None = None
    # Largest document (a resource's JSON) a write accepts; see hacs_persistence.limits.
    max_document_bytes: int = Field(DEFAULT_MAX_DOCUMENT_BYTES, ge=1024, le=1024**3)
    # Read replicas (HACS_READ_REPLICA_URLS; see db/replicas.py), in seconds: a replica whose
    # replay lags more than replica_max_lag is skipped; after a write, a read by the same caller
    # waits at most read_your_writes_timeout for a replica to replay it, then reads the primary;
    # a replica that failed or lagged is not tried again for replica_retry_interval.
    replica_max_lag: float = Field(5.0, ge=0, le=86400)
    read_your_writes_timeout: float = Field(1.0, ge=0, le=60)
    replica_retry_interval: float = Field(5.0, ge=0, le=3600)

    @field_validator("ssl_mode", mode="before")
    @classmethod
    def _normalise_ssl_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The same single .env as the URL (HACS_ENV_FILE, else the working directory's). Only its
        # HACS_DB_* lines are settings: its DATABASE_URL is not an unknown setting, but a typo
        # such as HACS_DB_POOL_SISE still is.
        dotenv = DotEnvSettingsSource(
            settings_cls,
            env_file=env_file_path(),
            env_file_depth=0,
            dotenv_filtering="match_prefix",
        )
        return init_settings, env_settings, dotenv, file_secret_settings


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
    path = env_file_path()
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


def resolve_replica_urls(
    explicit: str | Sequence[str] | None = None,
) -> tuple[list[str], str]:
    """Return ``(urls, source)``: the read replicas' URLs and where they came from.

    ``explicit`` (a list, or one comma-separated string) wins, then ``HACS_READ_REPLICA_URLS``
    in the environment, then in the ``.env`` file; none of them: no replicas (``source`` is
    ``none``). Empty items are ignored, so a trailing comma is harmless.
    """
    if explicit is not None:
        items = explicit.split(",") if isinstance(explicit, str) else list(explicit)
        return [u.strip() for u in items if u and u.strip()], "argument"
    value = os.environ.get(REPLICA_URLS_ENV_VAR)
    source = REPLICA_URLS_ENV_VAR
    if not value:
        value = _dotenv().get(REPLICA_URLS_ENV_VAR)
        source = f".env:{REPLICA_URLS_ENV_VAR}"
    if not value:
        return [], "none"
    return [u.strip() for u in value.split(",") if u.strip()], source


def _parse(url: str | URL) -> URL:
    """``make_url``, refusing a user info that SQLAlchemy would split at the wrong ``@``.

    ``postgresql://u:p@ss@host/db`` parses as password ``p`` on host ``ss@host``: connecting
    would fail, and every message naming the host would show the rest of the password.
    """
    parsed = url if isinstance(url, URL) else make_url(str(url))
    if parsed.host is not None and "@" in parsed.host:
        raise ConfigurationError(
            "The database URL has an unencoded '@' in its user name or password: " + _ENCODE_HINT
        )
    return parsed


def mask_url(url: str | URL | None) -> str:
    """Render a URL with its password hidden; never raises, so it is safe in error messages.

    This is the one masking function: it masks the parsed URL, never by replacing the
    password's text (a password ``p`` would otherwise turn ``postgresql`` into ``***ostgresql``).
    """
    if url is None:
        return "<embedded>"
    try:
        parsed = _parse(url)
    except ConfigurationError:
        return "<database URL with an unencoded '@' in its user name or password>"
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    query = dict(parsed.query)
    if "password" in query:
        query["password"] = "***"
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=True)


def url_has_password(url: str) -> bool:
    """Whether ``url`` carries a password (in its user info or as ``?password=``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Unparseable: judge by its shape, so a broken URL with a password is still caught.
        return bool(_USERINFO.search(url) or _PASSWORD_PARAM.search(url))
    return bool(parsed.password) or "password" in parsed.query


def redact(message: str, *urls: str | URL | None) -> str:
    """``message`` with every database URL masked and every password parameter hidden.

    Each of ``urls`` that appears verbatim (as given, or as SQLAlchemy renders it) is replaced
    by its :func:`mask_url` form; any other ``scheme://user:password@`` and ``password=...`` in
    the text is masked by its shape. The bare password text is never searched for: masking
    every occurrence of a short password would reveal it by what it replaced.
    """
    for url in urls:
        raw = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        if not raw or not url_has_password(raw):
            continue  # nothing secret in it: leave the text as it was written
        forms = {raw}
        with contextlib.suppress(ArgumentError, ValueError):
            forms.add(make_url(raw).render_as_string(hide_password=False))
        masked = mask_url(raw)
        for form in sorted(forms, key=len, reverse=True):
            message = message.replace(form, masked)
    message = _USERINFO.sub(lambda m: f"{m['head']}:***@", message)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", message)


def _password_from_file(path: Path) -> str:
    try:
        content = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(
            f"Cannot read the password file {path} (HACS_DB_PASSWORD_FILE): {reason}. Point "
            "HACS_DB_PASSWORD_FILE at a readable file that holds only the password."
        ) from None
    # Only the line break an editor or `echo` adds: other whitespace may belong to the password.
    password = content.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigurationError(
            f"The password file {path} (HACS_DB_PASSWORD_FILE) is empty: write the password in "
            "it, or unset HACS_DB_PASSWORD_FILE."
        )
    return password


def _with_password_file(parsed: URL, settings: DatabaseSettings) -> URL:
    if settings.password_file is None:
        return parsed
    if parsed.password is not None:
        raise ConfigurationError(
            "The database URL has a password and HACS_DB_PASSWORD_FILE is set too: remove the "
            "password from the URL (postgresql://user@host/db) and keep it in the file."
        )
    return parsed.set(password=_password_from_file(settings.password_file))


@dataclass(frozen=True)
class ConnectionTarget:
    """A database URL translated into what SQLAlchemy's asyncpg dialect and asyncpg really take.

    ``url`` holds the password (the engine needs it); ``repr`` and ``str`` show ``masked`` only.
    """

    url: URL
    connect_args: dict[str, Any] = field(hash=False)
    ssl_mode: str
    masked: str

    @property
    def server(self) -> str:
        """The server in words for messages: ``host H port P`` or ``the socket in DIR``."""
        socket_dir = self.connect_args.get("host")
        port = self.connect_args.get("port") or self.url.port or 5432
        if socket_dir:
            return f"the server at socket {socket_dir} port {port}"
        return f"host {self.url.host or 'localhost'} port {port}"

    def __repr__(self) -> str:
        return f"ConnectionTarget({self.masked!r}, ssl_mode={self.ssl_mode!r})"

    __str__ = __repr__

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
    """Parse and normalise a PostgreSQL URL (``postgres://``, socket ``?host=``, ``sslmode``).

    The password comes from the URL or from ``settings.password_file``, never both; without
    either, asyncpg falls back to ``PGPASSWORD`` and then ``PGPASSFILE`` (default ``~/.pgpass``).
    """
    try:
        parsed = _parse(url)
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
    connect_args["timeout"] = settings.connect_timeout
    if settings.prepared_statements:
        connect_args["statement_cache_size"] = settings.prepared_statement_cache_size
    else:
        connect_args["statement_cache_size"] = 0
    normalised = _with_password_file(parsed, settings).set(
        drivername="postgresql+asyncpg", query={}
    )
    return ConnectionTarget(
        url=normalised, connect_args=connect_args, ssl_mode=ssl_mode, masked=masked
    )
