"""Run SQLAlchemy Core statements as prepared statements directly on the asyncpg connection.

SQLAlchemy's per-execution machinery costs a few hundred microseconds of Python on every call,
which dominates a single-row save or read. The hot paths therefore compile each statement once
(for the asyncpg dialect, so SQL text, parameter order, casts and bind processors are exactly
what SQLAlchemy would send) and execute it with asyncpg, whose statement cache prepares it once
per connection. The statements themselves are still built from the tables and the mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql.elements import ClauseElement

from hacs_persistence.limits import STATEMENT_CACHE_SIZE

__all__ = ["CompiledStatement", "compiled"]

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, eq=False)
class CompiledStatement:
    """SQL text plus how to turn a parameter mapping into asyncpg's positional arguments."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """Positional arguments for ``params`` (literal values baked into the statement fill in)."""
        args: list[Any] = []
        for name, processor in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.defaults[name]
            args.append(processor(value) if processor is not None and value is not None else value)
        return args


@lru_cache(maxsize=STATEMENT_CACHE_SIZE)
def compiled(statement: ClauseElement) -> CompiledStatement:
    """Compile a statement once for asyncpg (cached per statement object)."""
    result: Any = statement.compile(dialect=_DIALECT)
    names: Sequence[str] = result.positiontup or ()
    processors = []
    defaults: dict[str, Any] = {}
    for name in names:
        bind = result.binds[name]
        impl = bind.type.dialect_impl(_DIALECT)
        processors.append(impl.bind_processor(_DIALECT))
        if not bind.required and bind.value is not None:
            defaults[name] = bind.effective_value
        elif not bind.required:
            defaults[name] = None
    return CompiledStatement(result.string, tuple(names), tuple(processors), defaults)
