"""Read-side repositories over the typed tables, for application code with its own ``AsyncSession``.

One generic base, :class:`Repository`, gives every typed table ``get``, ``list`` (keyset pages on
(sort column, id)), ``count``, ``exists`` and the current JSON ``document``; the subclasses add
finders (fuzzy patient names, a patient's observations, the latest result per code, ...).

Repositories only read. Writes go through the adapter (``create_postgres_adapter``), which keeps
the version history and the audit trail complete; a session used by a repository, or opened by
:func:`session_scope`, refuses to flush ORM changes to hacs tables. Repositories never commit: the
transaction belongs to the caller (``session_scope`` commits on success, rolls back on error).
Every value is a bound parameter and every identifier comes from the table metadata.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, Session, UOWTransaction

from hacs_models import BaseResource, get_model_class, to_utc
from hacs_persistence.config import load_settings
from hacs_persistence.engine import get_engine, resolve_database, transactional
from hacs_persistence.errors import (
    HacsPersistenceError,
    InvalidQueryError,
    ResourceValidationError,
    translate_database_error,
)
from hacs_persistence.schema import (
    TYPED_TABLES,
    AuditEventTable,
    ResourceDocumentTable,
    ResourceVersionTable,
    TypedResourceTable,
)
from hacs_persistence.schema.clinical import ConditionTable
from hacs_persistence.schema.core import EncounterTable, ObservationTable, PatientTable

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


class Repository(Generic[TableT]):
    """Queries on one typed table through the caller's ``AsyncSession`` (read only, no commit).

    Subclass with ``model_type = SomeTable``, or pass the table: ``Repository(session, GoalTable)``.
    Rows are the table's ORM objects; soft-deleted rows are left out unless
    ``include_deleted=True``.
    """

    model_type: type[TableT]
    default_order: ClassVar[str] = "id"

    def __init__(self, session: AsyncSession, model_type: type[TableT] | None = None) -> None:
        if model_type is not None:
            self.model_type = model_type
        elif getattr(type(self), "model_type", None) is None:
            raise TypeError(f"{type(self).__name__} needs a model_type (a typed table class).")
        if not (
            isinstance(self.model_type, type) and issubclass(self.model_type, TypedResourceTable)
        ):
            raise TypeError(f"{self.model_type!r} is not a typed resource table.")
        self.session = session
        _guard(session)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def resource_type(self) -> str:
        """The resource type the table was declared for (``"Patient"``)."""
        return _TYPE_OF_TABLE[self.model_type]

    def _live(self, include_deleted: bool) -> builtins.list[ColumnElement[bool]]:
        return [] if include_deleted else [self.model_type.deleted_at.is_(None)]

    async def _scalars(self, statement: Select[Any]) -> builtins.list[Any]:
        try:
            return builtins.list((await self.session.scalars(statement)).all())
        except (DBAPIError, OSError) as exc:
            raise translate_database_error(exc) from exc

    async def _scalar(self, statement: Select[Any]) -> Any:
        try:
            return await self.session.scalar(statement)
        except (DBAPIError, OSError) as exc:
            raise translate_database_error(exc) from exc

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
        """The row of ``resource_id``, or None (also for a deleted one unless asked for)."""
        table = self.model_type
        statement = select(table).where(table.id == resource_id, *self._live(include_deleted))
        rows = await self._scalars(statement)
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
        """One page of rows matching ``conditions`` (SQLAlchemy expressions on the table).

        Ordered by ``order_by`` (a column name, ``"-name"`` for descending, or an attribute such
        as ``PatientTable.birth_date``) with NULLs last, then by id. ``after`` is the previous
        page's ``next_after`` (or its last row): pages never repeat or skip a row.
        """
        return await self._page(
            builtins.list(conditions),
            order_by=order_by,
            descending=descending,
            limit=limit,
            after=after,
            include_deleted=include_deleted,
        )

    async def _patient_timeline(
        self,
        patient_id: str,
        time_column: str,
        since: datetime | None,
        until: datetime | None,
        extra: builtins.list[ColumnElement[bool]],
        newest_first: bool,
        limit: int,
        after: Any,
    ) -> KeysetPage[TableT]:
        """One patient's live rows with ``time_column`` in [since, until), paged by time."""
        table: Any = self.model_type
        moment: Any = getattr(table, time_column)
        where: builtins.list[ColumnElement[bool]] = [table.patient_id == patient_id, *extra]
        if since is not None:
            where.append(moment >= _aware(since, "since"))
        if until is not None:
            where.append(moment < _aware(until, "until"))
        return await self._page(
            where,
            order_by=time_column,
            descending=newest_first,
            limit=limit,
            after=after,
            include_deleted=False,
        )

    async def _page(
        self,
        conditions: builtins.list[ColumnElement[bool]],
        *,
        order_by: str | QueryableAttribute[Any] | None,
        descending: bool,
        limit: int,
        after: Keyset | TableT | None,
        include_deleted: bool,
    ) -> KeysetPage[TableT]:
        limit = _check_limit(limit)
        name, minus = self._sort_column(order_by)
        descending = descending or minus
        table = self.model_type
        column: Any = getattr(table, name)
        where = [*conditions, *self._live(include_deleted)]
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
        """How many rows match (``SELECT count(*)``; no row is loaded)."""
        table = self.model_type
        statement = (
            select(func.count()).select_from(table).where(*conditions, *self._live(include_deleted))
        )
        return int(await self._scalar(statement) or 0)

    async def exists(self, resource_id: str, *, include_deleted: bool = False) -> bool:
        """Whether ``resource_id`` is stored (and live, unless ``include_deleted``)."""
        table = self.model_type
        found = exists().where(table.id == resource_id, *self._live(include_deleted))
        return bool(await self._scalar(select(found)))

    async def document(
        self, resource_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        """The current JSON document of ``resource_id`` (its row's version in resource_versions).

        For a deleted resource (with ``include_deleted``) that is the tombstone, which carries the
        last document.
        """
        table = self.model_type
        versions = ResourceVersionTable
        statement = (
            select(versions.document)
            .join_from(
                table,
                versions,
                and_(
                    versions.resource_type == table.resource_type,
                    versions.id == table.id,
                    versions.version == table.version,
                ),
            )
            .where(table.id == resource_id, *self._live(include_deleted))
        )
        rows = await self._scalars(statement)
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
        try:
            return model_cls.model_validate(document)
        except ValueError as exc:
            raise ResourceValidationError(
                f"A stored {model_cls.__name__} document does not validate: {exc}"
            ) from exc

    async def get_model(
        self, resource_id: str, *, include_deleted: bool = False
    ) -> BaseResource | None:
        """The current version of ``resource_id`` as a model, or None."""
        document = await self.document(resource_id, include_deleted=include_deleted)
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
        limit = _check_limit(limit)
        query = _check_text(text, "text").strip()
        if not query:
            return []
        table = self.model_type
        name: Any = table.full_name
        word_score = func.word_similarity(query, name)
        where = [name.op("%>", is_comparison=True)(query), *self._live(False)]
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
        return await self._scalars(statement)

    async def find_by_family_name_prefix(
        self,
        prefix: str,
        *,
        case_sensitive: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients whose family name starts with ``prefix`` (``%``/``_`` are literal)."""
        prefix = _check_text(prefix, "prefix")
        family: Any = self.model_type.family_name
        condition = (
            family.startswith(prefix, autoescape=True)
            if case_sensitive
            else family.istartswith(prefix, autoescape=True)
        )
        return await self._page(
            [condition],
            order_by="family_name",
            descending=False,
            limit=limit,
            after=after,
            include_deleted=False,
        )

    async def born_between(
        self,
        start: date,
        end: date,
        *,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients born from ``start`` to ``end``, both included, oldest first."""
        for value, what in ((start, "start"), (end, "end")):
            if not isinstance(value, date) or isinstance(value, datetime):
                raise InvalidQueryError(f"{what} must be a date.")
        if start > end:
            raise InvalidQueryError(f"start ({start}) is after end ({end}).")
        birth: Any = self.model_type.birth_date
        return await self._page(
            [birth.between(start, end)],
            order_by="birth_date",
            descending=False,
            limit=limit,
            after=after,
            include_deleted=False,
        )

    async def by_gender(
        self,
        gender: str,
        *,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | PatientTable | None = None,
    ) -> KeysetPage[PatientTable]:
        """Patients of one administrative gender (``female``, ``male``, ``other``, ``unknown``)."""
        gender = _check_text(gender, "gender")
        return await self._page(
            [self.model_type.gender == gender],
            order_by="id",
            descending=False,
            limit=limit,
            after=after,
            include_deleted=False,
        )


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
        table = self.model_type
        extra = [] if code is None else [table.code == _check_text(code, "code")]
        return await self._patient_timeline(
            patient_id, "effective_at", since, until, extra, newest_first, limit, after
        )

    async def by_code(
        self,
        system: str | None,
        code: str,
        *,
        newest_first: bool = True,
        limit: int = DEFAULT_LIMIT,
        after: Keyset | ObservationTable | None = None,
    ) -> KeysetPage[ObservationTable]:
        """Observations of one code across patients; ``system=None`` matches any code system."""
        table = self.model_type
        where: builtins.list[ColumnElement[bool]] = [table.code == _check_text(code, "code")]
        if system is not None:
            where.append(table.code_system == _check_text(system, "system"))
        return await self._page(
            where,
            order_by="effective_at",
            descending=newest_first,
            limit=limit,
            after=after,
            include_deleted=False,
        )

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
        table = self.model_type
        effective: Any = table.effective_at
        status: Any = table.status
        where: builtins.list[ColumnElement[bool]] = [
            table.patient_id == patient_id,
            table.code.is_not(None),
            *self._live(False),
        ]
        if exclude_statuses:
            where.append(or_(status.is_(None), status.not_in(builtins.list(exclude_statuses))))
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
        return await self._scalars(statement)

    async def count_for_patient(self, patient_id: str, code: str | None = None) -> int:
        """How many live observations a patient has (of one code, if given)."""
        table = self.model_type
        where: builtins.list[ColumnElement[bool]] = [table.patient_id == patient_id]
        if code is not None:
            where.append(table.code == _check_text(code, "code"))
        return await self.count(*where)


class ConditionRepository(Repository[ConditionTable]):
    """Conditions (problems, diagnoses)."""

    model_type = ConditionTable

    async def active_for_patient(self, patient_id: str) -> builtins.list[ConditionTable]:
        """A patient's active conditions, earliest onset first.

        Active: clinical status in ``ACTIVE_CLINICAL_STATUSES``, and not refuted or entered in
        error.
        """
        table = self.model_type
        verification: Any = table.verification_status
        onset: Any = table.onset_at
        clinical: Any = table.clinical_status
        statement = (
            select(table)
            .where(
                table.patient_id == patient_id,
                clinical.in_(ACTIVE_CLINICAL_STATUSES),
                or_(verification.is_(None), verification.not_in(_DISCARDED_VERIFICATION)),
                *self._live(False),
            )
            .order_by(onset.asc().nulls_last(), table.id)
        )
        return await self._scalars(statement)


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
        return await self._patient_timeline(
            patient_id, "period_start", since, until, [], newest_first, limit, after
        )


_SPECIALISED: dict[str, type[Repository[Any]]] = {
    "Patient": PatientRepository,
    "Observation": ObservationRepository,
    "Condition": ConditionRepository,
    "Encounter": EncounterRepository,
}


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Patient"]
) -> PatientRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Observation"]
) -> ObservationRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Condition"]
) -> ConditionRepository: ...


@overload
def repository_for(
    session: AsyncSession, resource_type: Literal["Encounter"]
) -> EncounterRepository: ...


@overload
def repository_for(session: AsyncSession, resource_type: str) -> Repository[TypedResourceTable]: ...


def repository_for(session: AsyncSession, resource_type: str) -> Repository[Any]:
    """The repository of a resource type with a typed table: ``repository_for(s, "Patient")``."""
    specialised = _SPECIALISED.get(resource_type)
    if specialised is not None:
        return specialised(session)
    table = TYPED_TABLES.get(resource_type)
    if table is None:
        raise InvalidQueryError(
            f"{resource_type!r} has no typed table (types without one live in "
            "public.hacs_resources; use the adapter's search). Typed: "
            f"{', '.join(sorted(TYPED_TABLES))}."
        )
    return Repository(session, table)


@asynccontextmanager
async def session_scope(
    database_url: str | None = None, **settings: Any
) -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` on the library's engine: commits on success, rolls back on error.

    The database is resolved like the adapter's (argument, environment, .env, else the embedded
    server); ``settings`` are ``DatabaseSettings`` fields. ``expire_on_commit=False`` keeps rows
    readable after the block; ORM writes to hacs tables are refused (use the adapter). A session
    of your own for repositories should be bound to ``engine.transactional(engine)`` likewise.
    """
    resolved = await resolve_database(database_url, load_settings(**settings))
    # The library's engine autocommits (the adapters manage their own transactions); the
    # session uses the same pool with SQLAlchemy's usual transactions.
    engine = transactional(await get_engine(resolved))
    session = AsyncSession(engine, expire_on_commit=False)
    _guard(session)
    try:
        try:
            yield session
        except BaseException:
            await _rollback_quietly(session)
            raise
        try:
            await session.commit()
        except (DBAPIError, OSError) as exc:
            await _rollback_quietly(session)
            raise translate_database_error(exc, during_commit=True) from exc
        except BaseException:
            await _rollback_quietly(session)
            raise
    finally:
        await session.close()


async def _rollback_quietly(session: AsyncSession) -> None:
    # A lost connection cannot roll back; the server rolls the transaction back itself.
    with contextlib.suppress(DBAPIError, OSError):
        await session.rollback()
