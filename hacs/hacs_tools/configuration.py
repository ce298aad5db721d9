"""Which database the tools use: chosen by the application, never by whoever calls a tool.

A tool's arguments are filled in by a model, and a prompt injection can make it write anything
there. A connection argument would let that text pick the server (a request to any host and port
the application can reach: server-side request forgery, a loopback port scan), another database
or another role, using the process's ambient credentials (``~/.pgpass``, ``PGPASSWORD``). So no
tool takes a connection parameter. The database comes from configuration only: what the
application sets with :func:`configure_tools`, else the library's usual resolution
(``DATABASE_URL``, ``HACS_DATABASE_URL``, ``.env``, the embedded PostgreSQL)::

    from hacs_tools import configure_tools

    configure_tools(kind="granular", connection_pool_size=5)  # once, at startup
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from hacs_persistence.db.config import build_connection_target, load_settings, mask_url
from hacs_persistence.errors import ConfigurationError

__all__ = ["AdapterKind", "ToolConfiguration", "configure_tools", "tool_configuration"]

AdapterKind = Literal["auto", "granular", "jsonb"]
_KINDS: tuple[AdapterKind, ...] = ("auto", "granular", "jsonb")


@dataclass(frozen=True)
class ToolConfiguration:
    """What the tools pass to ``create_postgres_adapter`` on every call.

    Attributes:
        database_url: The database; ``None`` resolves it from the environment as the library
            does. May hold a password, so ``repr`` and ``str`` show it masked.
        kind: The adapter kind (``"auto"``, ``"granular"`` or ``"jsonb"``).
        settings: ``DatabaseSettings`` fields (pool size, timeouts...), read-only.
    """

    database_url: str | None = None
    kind: AdapterKind = "auto"
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        where = mask_url(self.database_url) if self.database_url else "<from the environment>"
        return f"ToolConfiguration({where!r}, kind={self.kind!r}, settings={dict(self.settings)!r})"

    __str__ = __repr__


class _Current:
    """The process-wide configuration: one slot, read by every tool call on every thread.

    Not a context variable: the sync tools run on worker threads, and an application configures
    its database once for the whole process.
    """

    value = ToolConfiguration()


def tool_configuration() -> ToolConfiguration:
    """The configuration the next tool call will use."""
    return _Current.value


class configure_tools:  # lower case: used like a function
    """Point every tool at the application's database, for the whole process.

    Call it once at startup; or use it as ``with configure_tools(database_url=url):`` to put
    the previous configuration back when the block ends (tests, scripts). Values are checked
    now, without connecting, so a mistake fails at startup rather than in an agent's tool call.

    Args:
        database_url: The database; ``None`` (the default) resolves it from ``DATABASE_URL``,
            ``HACS_DATABASE_URL``, ``.env``, else the embedded server, at each call.
        kind: The adapter kind, as for ``create_postgres_adapter``.
        **settings: ``DatabaseSettings`` fields, e.g. ``connection_pool_size=5``.

    Raises:
        ConfigurationError: An invalid URL, kind or setting (the message never shows a password).
    """

    __slots__ = ("_configuration", "_previous")

    def __init__(
        self, database_url: str | None = None, *, kind: AdapterKind = "auto", **settings: Any
    ) -> None:
        if kind not in _KINDS:
            raise ConfigurationError(f"kind must be 'auto', 'granular' or 'jsonb', not {kind!r}.")
        checked = load_settings(**settings)
        if database_url is not None:
            build_connection_target(database_url, checked)
        self._configuration = ToolConfiguration(
            database_url, kind, MappingProxyType(dict(settings))
        )
        self._previous = _Current.value
        _Current.value = self._configuration

    @property
    def configuration(self) -> ToolConfiguration:
        """The configuration this call set."""
        return self._configuration

    def __repr__(self) -> str:
        return f"configure_tools({self._configuration!r})"

    def __enter__(self) -> ToolConfiguration:
        return self._configuration

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _Current.value = self._previous
