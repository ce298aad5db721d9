"""Read-side repositories over the typed tables, bound to an actor, on an ``AsyncSession``.

One generic base, :class:`Repository`, gives every typed table ``get``, ``list`` (keyset pages on
(sort column, id)), ``count``, ``exists`` and the current JSON ``document``; the subclasses add
finders (fuzzy patient names, a patient's observations, the latest result per code, ...).

Access. A repository is bound to one acting :class:`~hacs_auth.Actor`:
``PatientRepository(session, actor)``, ``repository_for(session, "Patient", actor)``; passing
``actor=None`` binds the current actor (``hacs_auth.acting_as``) and is refused when there is none.
Every finder goes through the library's one ``access.gate.AccessGate``, like the
adapter:

- it checks the read permission of every resource type it reads (``observation:read``); a
  refusal raises ``PermissionDeniedError`` and is audited as ``denied``;
- it compiles a patient-scoped actor's patients into its SQL (the table's scope column,
  ``patients.id`` or ``patient_id``): rows of other patients are never fetched. Types outside
  every patient compartment are refused (audited) to patient-scoped actors;
- it writes one audit row per call, in the adapter's shape: action ``repository.<finder>``
  (``repository.list``, ``repository.for_patient``), the resource type, the id for single-row
  reads, the outcome (``success``, ``denied``, ``not_found``, ``invalid``), the number of rows
  returned (the number counted, for ``count``), the ids returned, and in ``detail`` the query's
  shape only (column names and operators, never values). The row is written on a connection of
  its own in autocommit before anything is returned, so a rollback of the caller's session cannot
  take it away, and a call whose audit row cannot be written returns nothing.

Conditions passed to ``list`` and ``count`` are SQLAlchemy expressions on the repository's own
table only: an expression that reads another table (a subquery, an ``exists``, an alias, a join,
raw ``text``) is refused, since it would reach rows outside the actor's scope.

Repositories only read. Writes go through the adapter (``create_postgres_adapter``), which keeps
the version history and the audit trail complete; a session used by a repository, or opened by
:func:`session_scope`, refuses to flush ORM changes to hacs tables. Repositories never commit: the
transaction belongs to the caller (``session_scope`` commits on success, rolls back on error).
Every value is a bound parameter and every identifier comes from the table metadata.

Raw SQL on a session. :func:`session_scope` hands out an ordinary ``AsyncSession``. What code runs
on it directly (``session.execute(text(...))``, a ``select`` of its own) is database access,
governed by the database role the connection logs in as (its GRANTs, row-level security), not by
hacs: hacs neither checks a permission, nor applies a patient scope, nor writes an audit row for
it. Every hacs read API (the adapter, these repositories, the agent tools) is actor-bound; code
that serves an actor reads through them, and raw session SQL is for trusted code under a role
chosen for it (migrations, reporting).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    and_,
    event,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import QueryableAttribute, Session, UOWTransaction
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, TextClause
from sqlalchemy.sql.selectable import AliasedReturnsRows, Join, SelectBase, TableClause, Values

from hacs_auth import Actor
from hacs_models import BaseResource, get_model_class, to_utc
from hacs_persistence.access.gate import AccessGate, audited_ids
from hacs_persistence.db.config import load_settings
from hacs_persistence.db.engine import get_engine, resolve_database, transactional
from hacs_persistence.errors import (
    DRIVER_ERRORS,
    HacsPersistenceError,
    InvalidQueryError,
    PermissionDeniedError,
    ResourceValidationError,
    translating,
)
from hacs_persistence.ids import checked_id
from hacs_persistence.schema import (
    TYPED_TABLES,
    AuditEventTable,
    ResourceDocumentTable,
    ResourceVersionTable,
    TypedResourceTable,
)
from hacs_persistence.schema.clinical import ConditionTable
from hacs_persistence.schema.core import EncounterTable, ObservationTable, PatientTable
from hacs_persistence.storage.codec import codec_for
from hacs_persistence.storage.mapping import ResourceMapping, mapping_for
from hacs_persistence.storage.statements import current_documents

__all__ = [
    "ACTIVE_CLINICAL_STATUSES",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ConditionRepository",
    "EncounterRepository",
    "Keyset",
    "KeysetPage",
    "ObservationRepository",
    "PatientRepository",
    "ReadOnlyViolationError",
    "Repository",
    "repository_for",
    "session_scope",
]

TableT = TypeVar("TableT", bound=TypedResourceTable)
RowT = TypeVar("RowT")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# FHIR condition-clinical codes that mean "the patient has it now".
ACTIVE_CLINICAL_STATUSES = ("active", "recurrence", "relapse")
# Verification codes that mean the condition is not (or no longer) believed to exist.
_DISCARDED_VERIFICATION = ("refuted", "entered-in-error")
# Observation statuses that are not results.
_VOID_OBSERVATION_STATUSES = ("cancelled", "entered-in-error")
_SORTABLE_TYPES = (str, int, float, Decimal, date, datetime, bool)
_TYPE_OF_TABLE: dict[type[TypedResourceTable], str] = {
    table: name for name, table in TYPED_TABLES.items()
}
_PROTECTED = (TypedResourceTable, ResourceVersionTable, ResourceDocumentTable, AuditEventTable)


# What a condition of ``list``/``count`` may not contain (unless it is the repository's own
# table): anything that reads other rows than the scoped ones of that table.
_REFUSED_IN_CONDITIONS = (TextClause, SelectBase, TableClause, AliasedReturnsRows, Join, Values)


class ReadOnlyViolationError(HacsPersistenceError):
    """An ORM flush tried to change a hacs table; save through the adapter instead."""


@dataclass(frozen=True)
class Keyset:
    """Where a page ended: the sort column's name and value and the row id (the tie-break)."""

    order_by: str
    value: Any
    id: str


@dataclass(frozen=True)
class KeysetPage(Generic[RowT]):
    """One page of rows; pass ``next_after`` as ``after`` for the next one (None: last page)."""

    items: builtins.list[RowT]
    next_after: Keyset | None

    def __iter__(self) -> Iterator[RowT]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> RowT:
        return self.items[index]


def _refuse_hacs_writes(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    changed = [*session.new, *session.deleted]
    changed += [obj for obj in session.dirty if session.is_modified(obj)]
    refused = sorted({type(obj).__name__ for obj in changed if isinstance(obj, _PROTECTED)})
    if refused:
        raise ReadOnlyViolationError(
            f"Refusing to flush ORM changes to {', '.join(refused)}: hacs tables are written "
            "through the adapter (save/update/delete), which records versions and audit."
        )


def _guard(session: AsyncSession) -> None:
    """Make the session refuse ORM writes to hacs tables (idempotent)."""
    sync = session.sync_session
    if not event.contains(sync, "before_flush", _refuse_hacs_writes):
        event.listen(sync, "before_flush", _refuse_hacs_writes)


@cache
def _mapping_of(table: type[TypedResourceTable]) -> ResourceMapping:
    """The storage mapping of a typed table (its scope column is the patient scope's)."""
    resource_type = _TYPE_OF_TABLE[table]
    try:
        model_cls = get_model_class(resource_type)
    except (KeyError, TypeError) as exc:
        raise TypeError(
            f"No model class is registered for {resource_type!r}; import the module that "
            "defines it before reading its table."
        ) from exc
    mapping = mapping_for(model_cls, typed=True)
    if mapping.table is not table.__table__:
        raise TypeError(f"{table.__name__} is not the typed table of {resource_type!r}.")
    return mapping


def _engine_of(session: AsyncSession) -> AsyncEngine:
    """The engine of the session's bind (audit rows are written on connections of their own)."""
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    if isinstance(bind, AsyncEngine):
        return bind
    raise TypeError(
        "A repository needs a session bound to one engine or connection "
        "(AsyncSession(engine) or session_scope()): its audit rows are written through it."
    )


def _plain(element: Any) -> Any:
    """``element`` without the ORM's annotations (to compare tables by identity)."""
    return element._deannotate() if isinstance(element, ClauseElement) else element


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError(f"limit must be an integer from 1 to {MAX_LIMIT}.")
    return limit


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidQueryError(f"{what} must be a string without NUL characters.")
    return value


def _aware(value: datetime, what: str) -> datetime:
    # Naive datetimes are local time, as everywhere in hacs (hacs_models.to_utc).
    if not isinstance(value, datetime):
        raise InvalidQueryError(f"{what} must be a datetime.")
    return to_utc(value)


class _Read:
    """One audited finder call: its gate decisions (permission, scope) and its audit row."""

    def __init__(self, repository: Repository[Any], action: str, resource_id: str | None) -> None:
        self.repository = repository
        self.action = action
        self.resource_id = resource_id
        self.allowed: dict[type[TypedResourceTable], builtins.list[str] | None] = {}
        self.detail: str | None = None
        self.recorded = False

    async def admit(self, tables: tuple[type[TypedResourceTable], ...]) -> None:
        """Authorize, then scope, every table the call reads (refusals are audited as denied)."""
        repository = self.repository
        gate, actor = repository.gate, repository.actor
        main = tables[0]
        for table in tables:
            resource_id = self.resource_id if table is main else None
            mapping = _mapping_of(table)
            try:
                await gate.authorize(actor, "read", mapping.resource_type, resource_id, self.action)
                allowed = await gate.scope(actor, mapping, self.action, resource_id)
            except PermissionDeniedError:
                self.recorded = True  # the gate wrote the denied row
                raise
            self.allowed[table] = allowed

    @property
    def scoped(self) -> bool:
        return any(allowed is not None for allowed in self.allowed.values())

    def where(self, table: type[TypedResourceTable]) -> builtins.list[ColumnElement[bool]]:
        """The scope condition of ``table`` (a KeyError if the call did not admit the table)."""
        allowed = self.allowed[table]
        if allowed is None:
            return []
        column = _mapping_of(table).scope_column
        if column is None:  # pragma: no cover - AccessGate.scope refuses these
            raise PermissionDeniedError(f"{_TYPE_OF_TABLE[table]} has no patient scope column.")
        return [column.in_(allowed)]

    def describe(
        self,
        filters: Iterable[str] = (),
        *,
        order_by: str | None = None,
        after: bool = False,
        include_deleted: bool = False,
    ) -> None:
        """The audit detail: the query's shape (``name:op`` or column names), never values."""
        parts = ["filters=" + ",".join(filters)]
        if order_by is not None:
            parts.append(f"order_by={order_by}")
        if after:
            parts.append("after")
        if include_deleted:
            parts.append("include_deleted")
        if self.scoped:
            parts.append("scope=patients")
        self.detail = ";".join(parts)

    async def record(
        self,
        outcome: str,
        count: int | None = None,
        resource_ids: Sequence[str] | None = None,
        patient_ids: Iterable[str | None] | None = None,
    ) -> None:
        """Write the call's one audit row (on its own autocommit connection)."""
        if self.recorded:  # pragma: no cover - a programming error in a finder
            raise RuntimeError(f"{self.action} tried to write a second audit row.")
        repository = self.repository
        await repository.gate.record(
            repository.actor,
            self.action,
            repository.resource_type,
            self.resource_id,
            outcome,
            self.detail,
            count=count,
            resource_ids=resource_ids,
            patient_ids=patient_ids,
        )
        self.recorded = True

    async def rows(self, rows: Sequence[Any]) -> None:
        """Audit a successful call that returns ``rows``."""
        await self.record(
            "success",
            len(rows),
            audited_ids(row.id for row in rows),
            [_patient_of(row) for row in rows],
        )

    async def single(self, found: bool, include_deleted: bool, row: Any = None) -> None:
        """Audit a single-row read; a miss on a stored but out-of-scope row is ``denied``."""
        if found:
            patients = [_patient_of(row)] if row is not None else None
            await self.record("success", 1, [self._id()], patients)
            return
        outcome = "not_found"
        if self.scoped and await self.repository._stored(self._id(), include_deleted):
            outcome = "denied"
        await self.record(outcome, 0)

    def _id(self) -> str:
        assert self.resource_id is not None
        return self.resource_id


class Repository(Generic[TableT]):
    """Queries on one typed table for one actor, through the caller's ``AsyncSession``.

    Subclass with ``model_type = SomeTable``, or pass the table:
    ``Repository(session, actor, GoalTable)``. ``actor`` is the acting :class:`~hacs_auth.Actor`
    (``None``: the current one from ``hacs_auth.acting_as``; refused when there is none). Every
    finder checks the actor's read permission, applies its patient scope in SQL and writes one
    audit row (see the module docstring). Rows are the table's ORM objects; soft-deleted rows are
    left out unless ``include_deleted=True``. Read only, and never commits.
    """

    model_type: type[TableT]
    default_order: ClassVar[str] = "id"

    def __init__(
        self,
        session: AsyncSession,
        actor: Actor | None,
        model_type: type[TableT] | None = None,
    ) -> None:
        if isinstance(actor, type):
            raise TypeError(
                f"{type(self).__name__}(session, actor, model_type=None): pass the acting Actor "
                f"(or None for the current one) before the table, not {actor.__name__}."
            )
        if model_type is not None:
            self.model_type = model_type
        elif getattr(type(self), "model_type", None) is None:
            raise TypeError(f"{type(self).__name__} needs a model_type (a typed table class).")
        if not (
            isinstance(self.model_type, type)
            and issubclass(self.model_type, TypedResourceTable)
            and self.model_type in _TYPE_OF_TABLE
        ):
            raise TypeError(f"{self.model_type!r} is not a typed resource table.")
        _mapping_of(self.model_type)  # a typed table without a model class cannot be gated
        self.actor: Actor = AccessGate.actor(actor)
        self.session = session
        # Audit rows go through the session's engine, on a connection of their own.
        self.gate = AccessGate(_engine_of(session))
        _guard(session)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def resource_type(self) -> str:
        """The resource type the table was declared for (``"Patient"``)."""
        return _TYPE_OF_TABLE[self.model_type]

    @asynccontextmanager
    async def _reading(
        self,
        finder: str,
        resource_id: str | None = None,
        also: tuple[type[TypedResourceTable], ...] = (),
    ) -> AsyncIterator[_Read]:
        """Gate one finder call: admit it, and make sure it leaves exactly one audit row.

        ``also``: the other typed tables the finder reads (each is authorized and scoped).
        """
        if resource_id is not None:
            # Before the gate: its audit row must never record a malformed id verbatim.
            resource_id = checked_id(resource_id, "resource_id", InvalidQueryError)
        read = _Read(self, f"repository.{finder}", resource_id)
        await read.admit((self.model_type, *also))
        try:
            yield read
        except InvalidQueryError:
            if not read.recorded:
                await read.record("invalid")
            raise
        if not read.recorded:  # pragma: no cover - a finder that forgot its audit row
            raise RuntimeError(f"{read.action} finished without its audit row; nothing returned.")

    def _live(self, include_deleted: bool) -> builtins.list[ColumnElement[bool]]:
        return [] if include_deleted else [self.model_type.deleted_at.is_(None)]

    async def _scalars(self, statement: Select[Any]) -> builtins.list[Any]:
        with translating():
            return builtins.list((await self.session.scalars(statement)).all())

    async def _scalar(self, statement: Select[Any]) -> Any:
        with translating():
            return await self.session.scalar(statement)

    async def _stored(self, resource_id: str, include_deleted: bool) -> bool:
        """Whether the row exists at all, outside any scope (only to audit a miss as denied)."""
        table = self.model_type
        found = exists().where(table.id == resource_id, *self._live(include_deleted))
        return bool(await self._scalar(select(found)))

    def _own_columns(self, conditions: Iterable[ColumnElement[bool]]) -> builtins.list[str]:
        """The column names ``conditions`` use; refuse anything that reads beyond this table."""
        own = self.model_type.__table__
        names: set[str] = set()
        for condition in conditions:
            if not isinstance(condition, ColumnElement):
                raise InvalidQueryError(
                    "conditions must be SQLAlchemy expressions on columns of "
                    f"{self.model_type.__name__}."
                )
            for element in visitors.iterate(condition):
                if isinstance(element, ColumnClause):
                    table = element.table
                    if table is None or _plain(table) is not own:
                        raise InvalidQueryError(
                            f"conditions may only use columns of {self.model_type.__name__}."
                        )
                    names.add(element.key)
                elif isinstance(element, _REFUSED_IN_CONDITIONS) and _plain(element) is not own:
                    raise InvalidQueryError(
                        f"conditions may only use columns of {self.model_type.__name__}: "
                        "no subqueries, other tables, aliases or SQL text (they would read rows "
                        "outside the actor's scope)."
                    )
        return sorted(names)

    def _sort_column(self, order_by: str | QueryableAttribute[Any] | None) -> tuple[str, bool]:
        """The (validated) sort column name, and whether a ``-name`` asked for descending."""
        descending = False
        if order_by is None:
            name = self.default_order
        elif isinstance(order_by, QueryableAttribute):
            owner = order_by.class_
            if not (isinstance(owner, type) and issubclass(self.model_type, owner)):
                raise InvalidQueryError(
                    f"order_by {order_by} is not a column of {self.model_type.__name__}."
                )
            name = order_by.key
        elif isinstance(order_by, str):
            descending = order_by.startswith("-")
            name = order_by.removeprefix("-")
        else:
            raise InvalidQueryError("order_by must be a column name or a mapped column attribute.")
        column = sa_inspect(self.model_type).columns.get(name)
        if column is None or not _sortable(column):
            raise InvalidQueryError(
                f"Cannot sort {self.model_type.__name__} by {name!r}; sortable columns: "
                f"{', '.join(self.sortable_columns())}."
            )
        return name, descending

    def sortable_columns(self) -> builtins.list[str]:
        """Names of the columns ``list`` can sort on (the table's scalar columns)."""
        return sorted(c.key for c in sa_inspect(self.model_type).columns if _sortable(c))

    # -- the generic queries -------------------------------------------------------------------

    async def get(self, resource_id: str, *, include_deleted: bool = False) -> TableT | None:
        """The row of ``resource_id``, or None (also for a deleted one unless asked for).

        A row outside the actor's patients is None too (audited as denied).
        """
        async with self._reading("get", resource_id) as read:
            table = self.model_type
            read.describe(["id:eq"], include_deleted=include_deleted)
            statement = select(table).where(
                table.id == resource_id, *self._live(include_deleted), *read.where(table)
            )
            rows = await self._scalars(statement)
            await read.single(bool(rows), include_deleted, rows[0] if rows else None)
        return rows[0] if rows else None

    async def list(
        self,
        *conditions: ColumnElement[bool],
        order_by: str | QueryableAttribute[Any] | None = None,
        descending: bool = False,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | TableT | None = None,
        include_deleted: bool = False,
    ) -> KeysetPage[TableT]:
        """One page of rows matching ``conditions`` (SQLAlchemy expressions on this table only).

        Ordered by ``order_by`` (a column name, ``"-name"`` for descending, or an attribute such
        as ``PatientTable.birth_date``) with NULLs last, then by id. ``after`` is the previous
        page's ``next_after`` (or its last row): pages never repeat or skip a row.
        """
        async with self._reading("list") as read:
            columns = self._own_columns(conditions)
            page = await self._page(
                read,
                builtins.list(conditions),
                order_by=order_by,
                descending=descending,
                limit=limit,
                after=after,
                include_deleted=include_deleted,
                filters=columns,
            )
        return page

    async def _patient_timeline(
        self,
        read: _Read,
        patient_id: str,
        time_column: str,
        since: datetime | None,
        until: datetime | None,
        extra: builtins.list[tuple[ColumnElement[bool], str]],
        newest_first: bool,
        limit: int,
        after: Any,
    ) -> KeysetPage[TableT]:
        """One patient's live rows with ``time_column`` in [since, until), paged by time."""
        table: Any = self.model_type
        moment: Any = getattr(table, time_column)
        where: builtins.list[ColumnElement[bool]] = [
            table.patient_id == checked_id(patient_id, "patient_id", InvalidQueryError)
        ]
        filters = ["patient_id:eq"]
        for condition, shape in extra:
            where.append(condition)
            filters.append(shape)
        if since is not None:
            where.append(moment >= _aware(since, "since"))
            filters.append(f"{time_column}:ge")
        if until is not None:
            where.append(moment < _aware(until, "until"))
            filters.append(f"{time_column}:lt")
        return await self._page(
            read,
            where,
            order_by=time_column,
            descending=newest_first,
            limit=limit,
            after=after,
            include_deleted=False,
            filters=filters,
        )

    async def _page(
        self,
        read: _Read,
        conditions: builtins.list[ColumnElement[bool]],
        *,
        order_by: str | QueryableAttribute[Any] | None,
        descending: bool,
        limit: int,
        after: Keyset | TableT | None,
        include_deleted: bool,
        filters: Iterable[str],
    ) -> KeysetPage[TableT]:
        """Run and audit one keyset page (the call's only statement and only audit row)."""
        limit = _check_limit(limit)
        name, minus = self._sort_column(order_by)
        descending = descending or minus
        read.describe(
            filters,
            order_by=f"-{name}" if descending else name,
            after=after is not None,
            include_deleted=include_deleted,
        )
        table = self.model_type
        column: Any = getattr(table, name)
        where = [*conditions, *self._live(include_deleted), *read.where(table)]
        if after is not None:
            where.append(self._after(after, name, column, descending))
        sort = column.desc() if descending else column.asc()
        statement = select(table).where(*where).limit(limit + 1)
        if name == "id":
            statement = statement.order_by(sort)
        else:
            statement = statement.order_by(sort.nulls_last(), table.id.asc())
        rows = await self._scalars(statement)
        items = rows[:limit]
        await read.rows(items)
        next_after = None
        if len(rows) > limit:
            last = items[-1]
            next_after = Keyset(name, getattr(last, name), last.id)
        return KeysetPage(items, next_after)

    def _after(
        self, after: Keyset | TableT, name: str, column: Any, descending: bool
    ) -> ColumnElement[bool]:
        if isinstance(after, Keyset):
            if after.order_by != name:
                raise InvalidQueryError(
                    f"after was taken from a page ordered by {after.order_by!r}, not {name!r}."
                )
            value, last_id = after.value, after.id
        elif isinstance(after, self.model_type):
            value, last_id = getattr(after, name), after.id
        else:
            raise InvalidQueryError("after must be a Keyset (next_after) or a row of this table.")
        id_column = self.model_type.id
        if name == "id":
            return id_column < last_id if descending else id_column > last_id
        if value is None:  # NULLs sort last: only later NULL rows remain
            return and_(column.is_(None), id_column > last_id)
        beyond = column < value if descending else column > value
        return or_(beyond, and_(column == value, id_column > last_id), column.is_(None))

    async def count(self, *conditions: ColumnElement[bool], include_deleted: bool = False) -> int:
        """How many of the actor's rows match (``SELECT count(*)``; no row is loaded)."""
        async with self._reading("count") as read:
            read.describe(self._own_columns(conditions), include_deleted=include_deleted)
            total = await self._count(read, builtins.list(conditions), include_deleted)
        return total

    async def _count(
        self,
        read: _Read,
        conditions: builtins.list[ColumnElement[bool]],
        include_deleted: bool,
    ) -> int:
        table = self.model_type
        statement = (
            select(func.count())
            .select_from(table)
            .where(*conditions, *self._live(include_deleted), *read.where(table))
        )
        total = int(await self._scalar(statement) or 0)
        await read.record("success", total)
        return total

    async def exists(self, resource_id: str, *, include_deleted: bool = False) -> bool:
        """Whether ``resource_id`` is stored (and live, unless ``include_deleted``).

        False for a row outside the actor's patients (audited as denied).
        """
        async with self._reading("exists", resource_id) as read:
            table = self.model_type
            read.describe(["id:eq"], include_deleted=include_deleted)
            found = exists().where(
                table.id == resource_id, *self._live(include_deleted), *read.where(table)
            )
            result = bool(await self._scalar(select(found)))
            await read.single(result, include_deleted)
        return result

    async def document(
        self, resource_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        """The current JSON document of ``resource_id`` (its row's version in resource_versions).

        For a deleted resource (with ``include_deleted``) that is the tombstone, which carries the
        last document. None for a row outside the actor's patients (audited as denied).
        """
        async with self._reading("document", resource_id) as read:
            document = await self._document(read, resource_id, include_deleted)
        return document

    async def _document(
        self, read: _Read, resource_id: str, include_deleted: bool
    ) -> dict[str, Any] | None:
        # resource_versions holds the versions of the same resource: reached only through the
        # (scoped) typed row, so the scope of the typed table covers it.
        table = self.model_type
        read.describe(["id:eq"], include_deleted=include_deleted)
        source, document = current_documents(_mapping_of(table))
        statement = (
            select(document)
            .select_from(source)
            .where(table.id == resource_id, *self._live(include_deleted), *read.where(table))
        )
        rows = await self._scalars(statement)
        await read.single(bool(rows), include_deleted)
        return dict(rows[0]) if rows else None

    def to_model(self, document: dict[str, Any]) -> BaseResource:
        """Validate a stored document into the class of its ``resource_type`` (registered types)."""
        stored_type = document.get("resource_type", self.resource_type)
        try:
            model_cls = get_model_class(stored_type)
        except (KeyError, TypeError) as exc:
            raise ResourceValidationError(
                f"No model class is registered for resource type {stored_type!r}; import the "
                "module that defines it."
            ) from exc
        codec = codec_for(_mapping_of(self.model_type))
        return codec.load(document, model_cls, resource_type=str(stored_type))

    async def get_model(
        self, resource_id: str, *, include_deleted: bool = False
    ) -> BaseResource | None:
        """The current version of ``resource_id`` as a model, or None."""
        async with self._reading("get_model", resource_id) as read:
            document = await self._document(read, resource_id, include_deleted)
        return None if document is None else self.to_model(document)


def _sortable(column: Column[Any]) -> bool:
    try:
        return column.type.python_type in _SORTABLE_TYPES
    except NotImplementedError:
        return False


class PatientRepository(Repository[PatientTable]):
    """Patients: fuzzy name search (pg_trgm), family-name prefix, birth dates, gender."""

    model_type = PatientTable

    async def find_by_name(
        self, text: str, limit: int = 10, *, min_similarity: float | None = None
    ) -> builtins.list[PatientTable]:
        """Patients whose ``full_name`` contains a word like ``text``, best match first.

        Uses pg_trgm's word similarity (``full_name %> text``, served by the GIN index
        ``ix_patients_full_name_trgm``; the server's ``pg_trgm.word_similarity_threshold``,
        0.6 by default, decides what matches). ``min_similarity`` (0-1) only narrows that.
        """
        async with self._reading("find_by_name") as read:
            filters = ["full_name:word_similar"]
            if min_similarity is not None:
                filters.append("full_name:min_similarity")
            read.describe(filters, order_by="-similarity")
            limit = _check_limit(limit)
            query = _check_text(text, "text").strip()
            if not query:
                await read.rows([])
                return []
            table = self.model_type
            name: Any = table.full_name
            word_score = func.word_similarity(query, name)
            where = [
                name.op("%>", is_comparison=True)(query),
                *self._live(False),
                *read.where(table),
            ]
            if min_similarity is not None:
                if not 0 <= min_similarity <= 1:
                    raise InvalidQueryError("min_similarity must be between 0 and 1.")
                where.append(word_score >= min_similarity)
            statement = (
                select(table)
                .where(*where)
                .order_by(word_score.desc(), func.similarity(query, name).desc(), table.id)
                .limit(limit)
            )
            rows = await self._scalars(statement)
            await read.rows(rows)
        return rows

    async def find_by_family_name_prefix(
        self,
        prefix: str,
        *,
        case_sensitive: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients whose family name starts with ``prefix`` (``%``/``_`` are literal)."""
        async with self._reading("find_by_family_name_prefix") as read:
            prefix = _check_text(prefix, "prefix")
            family: Any = self.model_type.family_name
            condition = (
                family.startswith(prefix, autoescape=True)
                if case_sensitive
                else family.istartswith(prefix, autoescape=True)
            )
            page = await self._page(
                read,
                [condition],
                order_by="family_name",
                descending=False,
                limit=limit,
                after=after,
                include_deleted=False,
                filters=["family_name:prefix" if case_sensitive else "family_name:iprefix"],
            )
        return page

    async def born_between(
        self,
        start: date,
        end: date,
        *,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients born from ``start`` to ``end``, both included, oldest first."""
        async with self._reading("born_between") as read:
            for value, what in ((start, "start"), (end, "end")):
                if not isinstance(value, date) or isinstance(value, datetime):
                    raise InvalidQueryError(f"{what} must be a date.")
            if start > end:
                raise InvalidQueryError(f"start ({start}) is after end ({end}).")
            birth: Any = self.model_type.birth_date
            page = await self._page(
                read,
                [birth.between(start, end)],
                order_by="birth_date",
                descending=False,
                limit=limit,
                after=after,
                include_deleted=False,
                filters=["birth_date:between"],
            )
        return page

    async def by_gender(
        self,
        gender: str,
        *,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients of one administrative gender (``female``, ``male``, ``other``, ``unknown``)."""
        async with self._reading("by_gender") as read:
            gender = _check_text(gender, "gender")
            page = await self._page(
                read,
                [self.model_type.gender == gender],
                order_by="id",
                descending=False,
                limit=limit,
                after=after,
                include_deleted=False,
                filters=["gender:eq"],
            )
        return page


class ObservationRepository(Repository[ObservationTable]):
    """Observations: a patient's results over time, by code, and the latest result per code."""

    model_type = ObservationTable

    async def for_patient(
        self,
        patient_id: str,
        code: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        newest_first: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | ObservationTable | None = None,
    ) -> KeysetPage[ObservationTable]:
        """A patient's observations, optionally of one code, effective in [since, until)."""
        async with self._reading("for_patient") as read:
            table = self.model_type
            extra = [] if code is None else [(table.code == _check_text(code, "code"), "code:eq")]
            page = await self._patient_timeline(
                read, patient_id, "effective_at", since, until, extra, newest_first, limit, after
            )
        return page

    async def by_code(
        self,
        system: str | None,
        code: str,
        *,
        newest_first: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | ObservationTable | None = None,
    ) -> KeysetPage[ObservationTable]:
        """Observations of one code across patients; ``system=None`` matches any code system.

        Across the actor's patients, for a patient-scoped actor.
        """
        async with self._reading("by_code") as read:
            table = self.model_type
            where: builtins.list[ColumnElement[bool]] = [table.code == _check_text(code, "code")]
            filters = ["code:eq"]
            if system is not None:
                where.append(table.code_system == _check_text(system, "system"))
                filters.append("code_system:eq")
            page = await self._page(
                read,
                where,
                order_by="effective_at",
                descending=newest_first,
                limit=limit,
                after=after,
                include_deleted=False,
                filters=filters,
            )
        return page

    async def latest_per_code(
        self,
        patient_id: str,
        *,
        exclude_statuses: Collection[str] = _VOID_OBSERVATION_STATUSES,
    ) -> builtins.list[ObservationTable]:
        """A patient's newest observation of each (code system, code), ordered by code.

        ``DISTINCT ON (code_system, code) ... ORDER BY code_system, code, effective_at DESC``;
        cancelled and entered-in-error observations are not results and are skipped.
        """
        async with self._reading("latest_per_code") as read:
            table = self.model_type
            effective: Any = table.effective_at
            status: Any = table.status
            where: builtins.list[ColumnElement[bool]] = [
                table.patient_id == checked_id(patient_id, "patient_id", InvalidQueryError),
                table.code.is_not(None),
                *self._live(False),
                *read.where(table),
            ]
            filters = ["patient_id:eq", "code:not_null"]
            if exclude_statuses:
                statuses = [_check_text(s, "status") for s in exclude_statuses]
                where.append(or_(status.is_(None), status.not_in(statuses)))
                filters.append("status:not_in")
            read.describe(filters, order_by="code_system,code,-effective_at")
            statement = (
                select(table)
                .ext(distinct_on(table.code_system, table.code))
                .where(*where)
                .order_by(
                    table.code_system.asc().nulls_last(),
                    table.code,
                    effective.desc().nulls_last(),
                    table.id,
                )
            )
            rows = await self._scalars(statement)
            await read.rows(rows)
        return rows

    async def count_for_patient(self, patient_id: str, code: str | None = None) -> int:
        """How many live observations a patient has (of one code, if given)."""
        async with self._reading("count_for_patient") as read:
            table = self.model_type
            where: builtins.list[ColumnElement[bool]] = [
                table.patient_id == checked_id(patient_id, "patient_id", InvalidQueryError)
            ]
            filters = ["patient_id:eq"]
            if code is not None:
                where.append(table.code == _check_text(code, "code"))
                filters.append("code:eq")
            read.describe(filters)
            total = await self._count(read, where, include_deleted=False)
        return total


class ConditionRepository(Repository[ConditionTable]):
    """Conditions (problems, diagnoses)."""

    model_type = ConditionTable

    async def active_for_patient(self, patient_id: str) -> builtins.list[ConditionTable]:
        """A patient's active conditions, earliest onset first.

        Active: clinical status in ``ACTIVE_CLINICAL_STATUSES``, and not refuted or entered in
        error.
        """
        async with self._reading("active_for_patient") as read:
            table = self.model_type
            verification: Any = table.verification_status
            onset: Any = table.onset_at
            clinical: Any = table.clinical_status
            read.describe(
                ["patient_id:eq", "clinical_status:in", "verification_status:not_in"],
                order_by="onset_at",
            )
            statement = (
                select(table)
                .where(
                    table.patient_id == checked_id(patient_id, "patient_id", InvalidQueryError),
                    clinical.in_(ACTIVE_CLINICAL_STATUSES),
                    or_(verification.is_(None), verification.not_in(_DISCARDED_VERIFICATION)),
                    *self._live(False),
                    *read.where(table),
                )
                .order_by(onset.asc().nulls_last(), table.id)
            )
            rows = await self._scalars(statement)
            await read.rows(rows)
        return rows


class EncounterRepository(Repository[EncounterTable]):
    """Encounters (visits, admissions)."""

    model_type = EncounterTable

    async def for_patient(
        self,
        patient_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        newest_first: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | EncounterTable | None = None,
    ) -> KeysetPage[EncounterTable]:
        """A patient's encounters that started in [since, until)."""
        async with self._reading("for_patient") as read:
            page = await self._patient_timeline(
                read, patient_id, "period_start", since, until, [], newest_first, limit, after
            )
        return page


_SPECIALISED: dict[str, type[Repository[Any]]] = {
    "Patient": PatientRepository,
    "Observation": ObservationRepository,
    "Condition": ConditionRepository,
    "Encounter": EncounterRepository,
}


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Patient"], actor: Actor | None
) -> PatientRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Observation"], actor: Actor | None
) -> ObservationRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Condition"], actor: Actor | None
) -> ConditionRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Encounter"], actor: Actor | None
) -> EncounterRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: str, actor: Actor | None
) -> Repository[TypedResourceTable]: ...


def repository_for(
    session: AsyncSession, resource_type: str, actor: Actor | None
) -> Repository[Any]:
    """The repository of a typed resource type for ``actor``: ``repository_for(s, "Patient", a)``.

    ``actor=None`` binds the current actor (``hacs_auth.acting_as``); refused when there is none.
    """
    specialised = _SPECIALISED.get(resource_type)
    if specialised is not None:
        return specialised(session, actor)
    table = TYPED_TABLES.get(resource_type)
    if table is None:
        raise InvalidQueryError(
            f"{resource_type!r} has no typed table (types without one live in "
            "public.hacs_resources; use the adapter's search). Typed: "
            f"{', '.join(sorted(TYPED_TABLES))}."
        )
    return Repository(session, actor, table)


@asynccontextmanager
async def session_scope(
    database_url: str | None = None, **settings: Any
) -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` on the library's engine: commits on success, rolls back on error.

    The database is resolved like the adapter's (argument, environment, .env, else the embedded
    server); ``settings`` are ``DatabaseSettings`` fields. ``expire_on_commit=False`` keeps rows
    readable after the block; ORM writes to hacs tables are refused (use the adapter). A session
    of your own for repositories should be bound to ``engine.transactional(engine)`` likewise.

    The session itself is database access: SQL run on it directly is governed by the database
    role, not by hacs (no permission check, patient scope or audit row). Read data for an actor
    through the actor-bound repositories on it: ``PatientRepository(session, actor)``.
    """
    resolved = await resolve_database(database_url, load_settings(**settings))
    # The library's engine autocommits (the adapters manage their own transactions); the
    # session uses the same pool with SQLAlchemy's usual transactions.
    engine = transactional(await get_engine(resolved))
    session = AsyncSession(engine, expire_on_commit=False)
    _guard(session)
    try:
        try:
            # The SQL a caller runs on the session fails as this package's errors too.
            with translating():
                yield session
        except BaseException:
            await _rollback_quietly(session)
            raise
        try:
            with translating(during_commit=True):
                await session.commit()
        except BaseException:
            await _rollback_quietly(session)
            raise
    finally:
        await session.close()


async def _rollback_quietly(session: AsyncSession) -> None:
    # A lost connection cannot roll back; the server rolls the transaction back itself.
    with contextlib.suppress(*DRIVER_ERRORS):
        await session.rollback()


def _patient_of(row: Any) -> str | None:
    """The patient a typed row belongs to (its own id for a patient), for the audit row."""
    if isinstance(row, PatientTable):
        return row.id
    return getattr(row, "patient_id", None)
