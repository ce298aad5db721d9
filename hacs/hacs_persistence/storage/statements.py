"""SQLAlchemy Core statements for the adapters' hot paths, built once per table.

Each write is one statement: data-modifying CTEs change the resource row, append its version
document, write (or remove) its FHIR JSON for the SQL on FHIR views and write the audit row
together, so a save, update, delete or read is one round trip and needs no transaction.
The audit CTE reads from the change's RETURNING, so a change that did not happen is never audited
as a success. Statements carry only bound parameters; identifiers come from the table metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeVar

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    CTE,
    ColumnElement,
    FromClause,
    Insert,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from hacs_persistence.limits import MAPPING_CACHE_SIZE
from hacs_persistence.schema import AuditEventTable, ResourceVersionTable
from hacs_persistence.schema.vectors import vector_columns
from hacs_persistence.storage import columns
from hacs_persistence.storage.codec import codec_for
from hacs_persistence.storage.columns import AUDIT_PARAM_OF, STAMP_FIELDS, by_name, key_param
from hacs_persistence.storage.mapping import ResourceMapping

__all__ = [
    "BatchUpdate",
    "Statements",
    "audit_insert",
    "batch_update_for",
    "counted_audit",
    "current_documents",
    "patient_ref",
    "stamp_columns",
    "statements_for",
    "stored_in_scope",
    "with_documents",
]

InsertT = TypeVar("InsertT", bound=Insert)
VERSIONS: Table = ResourceVersionTable.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEventTable.__table__  # type: ignore[assignment]
# The views' FHIR JSON (migration 0008; not part of the ORM metadata, see fhir_snapshot).
SNAPSHOT = table(
    "fhir_resources",
    column("resource_type", Text),
    column("id", Text),
    column("version"),
    column("patient_id", Text),
    column("resource", JSONB),
    column("stored_typed"),
    column("synced_at"),
    schema="hacs_views",
)


def _p(name: str, type_: Any = Text) -> Any:
    return bindparam(name, type_=type_)


def _actor_values() -> dict[str, Any]:
    """The audit columns taken from the caller's ``a_*`` parameters (who, why, which request)."""
    return {column: _p(param) for column, param in AUDIT_PARAM_OF.items()}


def _audit_values(resource_id: Any, outcome: Any, count: Any = None) -> dict[str, Any]:
    """An audit row's values by column, in the order of ``AUDIT_COLUMNS``."""
    values = _actor_values()
    values.update(
        resource_type=_p("p_rt"),
        resource_id=resource_id,
        outcome=outcome,
        result_count=count if count is not None else null(),
    )
    return by_name(columns.AUDIT_COLUMNS, values, "audit row")


def _insert_select(
    statement: InsertT, values: dict[str, Any], source: Any = None, order: Any = None
) -> InsertT:
    """``INSERT ... (names) SELECT values``: each column and its value come from one dict entry.

    ``order``: the order the rows are inserted in (a batch's audit rows follow its input).
    """
    selected = select(*values.values())
    if source is not None:
        selected = selected.select_from(source)
    if order is not None:
        selected = selected.order_by(order)
    return statement.from_select(list(values), selected)


@cache
def audit_insert() -> Insert:
    """A plain audit row insert (denied or failed attempts, searches)."""
    return insert(AUDIT).values(
        **_actor_values(),
        resource_type=_p("p_rt"),
        resource_id=_p("p_rid"),
        outcome=_p("p_outcome"),
        result_count=bindparam("p_count", type_=AUDIT.c.result_count.type),
        detail=_p("p_detail"),
        resource_ids=bindparam("p_rids", None, type_=ARRAY(Text), required=False),
        patient_ids=bindparam("p_pids", None, type_=ARRAY(Text), required=False),
    )


def _stamped(document: Any, version: Any, created_at: Any, updated_at: Any) -> Any:
    # The stored document carries the database's version and timestamps, so reading it back
    # needs no merging.
    stamp = {"version": version, "created_at": created_at, "updated_at": updated_at}
    stamp = by_name(STAMP_FIELDS, stamp, "document stamp")
    pairs = [part for key_and_value in stamp.items() for part in key_and_value]
    return document.op("||")(func.jsonb_build_object(*pairs))


@dataclass(frozen=True)
class Statements:
    """The hot-path statements of one storage route (typed table or JSONB fallback)."""

    insert: Any
    update: Any
    delete: Any
    read: Any
    read_scoped: Any
    current_version: Select[Any]
    # The same reads without their audit row, for a caller's transaction: the adapter writes
    # that row on a connection of its own so it survives the transaction's rollback.
    read_plain: Any
    read_scoped_plain: Any


def stamp_columns(source: Any) -> list[Any]:
    """What a write returns: the id and what the saved model is stamped with (``codec.stamp``)."""
    return [source.c.id, *(source.c[name] for name in STAMP_FIELDS)]


def current_documents(mapping: ResourceMapping) -> tuple[FromClause, ColumnElement[Any]]:
    """The current (live or deleted) rows of a mapping joined to their JSONB documents.

    A typed row's document is its version's in ``resource_versions``; the JSONB table holds
    its own. Every read of a current document (read, search, import comparison) starts here.
    """
    table = mapping.table
    if not mapping.typed:
        return table, table.c.document
    return with_documents(table)


def with_documents(rows: Any) -> tuple[FromClause, ColumnElement[Any]]:
    """``rows`` (with ``resource_type``, ``id`` and ``version``) joined to those versions."""
    joined = rows.join(
        VERSIONS,
        and_(
            VERSIONS.c.resource_type == rows.c.resource_type,
            VERSIONS.c.id == rows.c.id,
            VERSIONS.c.version == rows.c.version,
        ),
    )
    return joined, VERSIONS.c.document


def _this_row(table: Table) -> list[ColumnElement[bool]]:
    """The row a statement is about: ``p_id`` of type ``p_rt``."""
    return [table.c.id == _p("p_id"), table.c.resource_type == _p("p_rt")]


def _at_expected_version(table: Table) -> ColumnElement[bool]:
    """The optimistic lock of an update: the stored row is still at ``p_expected``."""
    return table.c.version == bindparam("p_expected", type_=table.c.version.type)


def _new_envelope(resource_id: Any, now: Any) -> dict[str, Any]:
    """The envelope of a new row by column, in the order of ``ENVELOPE_COLUMNS``."""
    envelope = {
        "id": resource_id,
        "resource_type": _p("p_rt"),
        "version": literal(1),
        "created_at": now,
        "updated_at": now,
        "created_by": _p("a_actor_id"),
        "updated_by": _p("a_actor_id"),
    }
    return by_name(columns.ENVELOPE_COLUMNS, envelope, "resource row")


def _next_version(table: Table, now: Any, *, deleted: bool) -> dict[str, Any]:
    """The envelope of a row's next version: a delete hides the row, an update restores it."""
    return {
        "version": table.c.version + 1,
        "updated_at": now,
        "updated_by": _p("a_actor_id"),
        "deleted_at": now if deleted else null(),
    }


def _current_row(mapping: ResourceMapping) -> Select[Any]:
    """The current document of ``p_id``, with what a read decides on (deleted, version, patient)."""
    table = mapping.table
    source, document = current_documents(mapping)
    return (
        select(
            cast(document, Text).label("document"),
            table.c.deleted_at,
            table.c.version,
            patient_ref(mapping),
        )
        .select_from(source)
        .where(*_this_row(table))
    )


def _doc_param() -> Any:
    return cast(_p("p_doc"), JSONB)


def _patients_param() -> Any:
    return bindparam("p_patients", type_=ARRAY(Text))


def stored_in_scope(mapping: ResourceMapping) -> Any:
    """True when the *stored* row is in the actor's patients (``p_patients``; NULL: unscoped).

    Part of the WHERE of every write on a stored row, so a patient-scoped actor can never
    change a row of another patient, even one it knows the id and version of; being in the
    same statement as the write, no other transaction can move the row in between.
    """
    scope = mapping.scope_column
    if scope is None:
        return literal(True)
    return or_(_patients_param().is_(None), scope == any_(_patients_param()))


def _typed_statements(mapping: ResourceMapping) -> Statements:
    table = mapping.table
    keys = {c.key: bindparam(key_param(c.key), type_=c.type) for c in mapping.key_columns}
    now = func.now()

    # -- insert: versions row, then the typed row selected from it, then the audit row.
    v_ins = (
        pg_insert(VERSIONS)
        .values(**_version_row(_p("p_id"), 1, "create", _stamped(_doc_param(), 1, now, now), now))
        .on_conflict_do_nothing()
        .returning(VERSIONS.c.id)
        .cte("v")
    )
    t_ins = (
        _insert_select(pg_insert(table), {**_new_envelope(v_ins.c.id, now), **keys}, v_ins)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(*stamp_columns(table))
        .cte("t")
    )
    insert_stmt = _returning_with_audit(t_ins, "success", _snapshot_write(t_ins, typed=True))

    # -- update with the version check; a deleted resource updated at its version is restored.
    t_upd = (
        update(table)
        .where(
            *_this_row(table),
            _at_expected_version(table),
            stored_in_scope(mapping),
        )
        .values(**_next_version(table, now, deleted=False), **keys)
        .returning(*stamp_columns(table))
        .cte("t")
    )
    update_stmt = _returning_with_audit(
        t_upd,
        "success",
        _version_from(t_upd, "update", _doc_param()),
        _snapshot_write(t_upd, typed=True),
    )

    # -- delete: a tombstone version carrying the last document.
    t_del = (
        update(table)
        .where(*_this_row(table), table.c.deleted_at.is_(None), stored_in_scope(mapping))
        .values(**_next_version(table, now, deleted=True))
        .returning(*stamp_columns(table))
        .cte("t")
    )
    prev = VERSIONS.alias("prev")
    last_doc = (
        select(prev.c.document)
        .where(
            prev.c.resource_type == _p("p_rt"),
            prev.c.id == t_del.c.id,
            prev.c.version == t_del.c.version - 1,
        )
        .scalar_subquery()
    )
    delete_stmt = _returning_with_audit(
        t_del, "success", _version_from(t_del, "delete", last_doc), _snapshot_forget(t_del)
    )

    # -- read: the current document, with the audit row written in the same round trip.
    r = _current_row(mapping)
    read_stmt = _read_with_audit(r.cte("r"))
    read_plain = _read_plain(r.cte("r"))
    read_scoped = read_scoped_plain = None
    scope = mapping.scope_column
    if scope is not None:
        # Patient-scoped actors: the row is fetched only if it is in one of their compartments;
        # an out-of-scope row is never read, and its attempt is audited as denied.
        in_scope = scope == any_(bindparam("p_patients", type_=ARRAY(Text)))
        exists_at_all = exists(select(1).where(*_this_row(table)))
        read_scoped = _read_with_audit(r.where(in_scope).cte("r"), exists_at_all)
        read_scoped_plain = _read_plain(r.where(in_scope).cte("r"))
    current = _current(mapping)
    return Statements(
        insert_stmt,
        update_stmt,
        delete_stmt,
        read_stmt,
        read_scoped,
        current,
        read_plain,
        read_scoped_plain,
    )


def _current(mapping: ResourceMapping) -> Select[Any]:
    """The stored version of a row, and whether it is in the actor's patients (``p_patients``).

    Read after a write changed nothing, to tell a conflict from a missing row; a row outside
    the actor's patients must then look exactly like a missing one.
    """
    table = mapping.table
    return select(
        table.c.version, table.c.deleted_at, stored_in_scope(mapping).label("in_scope")
    ).where(*_this_row(table))


def _version_row(
    resource_id: Any, version: Any, operation: str, document: Any, changed_at: Any
) -> dict[str, Any]:
    """A version row by column, in the order of ``VERSION_COLUMNS``."""
    values = {
        "resource_type": _p("p_rt"),
        "id": resource_id,
        "version": literal(version) if isinstance(version, int) else version,
        "operation": literal(operation),
        "document": document,
        "changed_at": changed_at,
        "changed_by": _p("a_actor_id"),
    }
    return by_name(columns.VERSION_COLUMNS, values, "version row")


def _version_from(changed: CTE, operation: str, document: Any, order: Any = None) -> Any:
    """Append the version row for a changed resource (one from the change's RETURNING)."""
    stamped = _stamped(document, changed.c.version, changed.c.created_at, changed.c.updated_at)
    row = _version_row(changed.c.id, changed.c.version, operation, stamped, changed.c.updated_at)
    return _insert_select(insert(VERSIONS), row, changed, order).cte("v")


def fhir_instant(value: Any) -> Any:
    """A timestamptz as ``format_datetime`` writes it: UTC, fraction without trailing zeros, Z."""
    utc = func.timezone("UTC", value)
    whole = func.to_char(utc, literal('YYYY-MM-DD"T"HH24:MI:SS'))
    fraction = func.rtrim(func.to_char(utc, literal(".US")), literal(".0"))
    return whole.op("||")(fraction).op("||")(literal("Z"))


def _snapshot_write(changed: CTE, typed: bool) -> CTE:
    """Write (or replace) the changed resource's FHIR JSON in ``hacs_views.fhir_resources``.

    ``p_fhir`` is ``to_fhir`` of the resource as written; its ``meta.versionId`` and
    ``meta.lastUpdated`` are the ones this statement stores, known only here. A caller that
    writes the FHIR JSON itself, for a whole batch (``save_many``), passes None.
    """
    fhir = cast(_p("p_fhir"), JSONB)
    meta = func.coalesce(fhir["meta"], literal_column("'{}'::jsonb")).op("||")(
        func.jsonb_build_object(
            literal("versionId"),
            cast(changed.c.version, Text),
            literal("lastUpdated"),
            fhir_instant(changed.c.updated_at),
        )
    )
    document = fhir.op("||")(func.jsonb_build_object(literal("meta"), meta))
    values = {
        "resource_type": _p("p_rt"),
        "id": changed.c.id,
        "version": changed.c.version,
        "patient_id": _p("p_fhir_patient"),
        "resource": document,
        "stored_typed": literal(typed),
    }
    selected = select(*values.values()).select_from(changed).where(fhir.is_not(None))
    statement = pg_insert(SNAPSHOT).from_select(list(values), selected)
    replaced = {
        name: statement.excluded[name] for name in values if name not in ("resource_type", "id")
    }
    return statement.on_conflict_do_update(
        index_elements=["resource_type", "id"], set_={**replaced, "synced_at": func.now()}
    ).cte("s")


def _snapshot_forget(changed: CTE) -> CTE:
    """A deleted resource leaves the views: they show current resources only."""
    return (
        SNAPSHOT.delete()
        .where(
            SNAPSHOT.c.resource_type == _p("p_rt"),
            SNAPSHOT.c.id.in_(select(changed.c.id)),
        )
        .cte("s")
    )


def _returning_with_audit(changed: CTE, outcome: str, *also: CTE, order: Any = None) -> Select[Any]:
    """What a change returns, with its audit row and the other CTEs it writes (``also``)."""
    row = _audit_values(changed.c.id, literal(outcome))
    audit = _insert_select(insert(AUDIT), row, changed, order).cte("a")
    stmt = select(*stamp_columns(changed))
    for cte in also:
        stmt = stmt.add_cte(cte)
    return stmt.add_cte(audit)


def patient_ref(mapping: ResourceMapping) -> Any:
    """The patient a row belongs to, labelled ``patient_ref`` (NULL outside compartments)."""
    scope = mapping.scope_column
    value = scope if scope is not None else null()
    return cast(value, Text).label("patient_ref")


def _id_array(values: Any) -> Any:
    """A query's distinct non-null values as a text[] (NULL when there are none)."""
    aggregated = func.array_agg(cast(values, Text).distinct(), type_=ARRAY(Text))
    return func.nullif(
        func.array_remove(aggregated, null(), type_=ARRAY(Text)),
        literal_column("'{}'::text[]"),
        type_=ARRAY(Text),
    )


def counted_audit(rows: Any, limit: Any = None, order: Sequence[Any] = ()) -> CTE:
    """An audit CTE for a query: one success row with what the query returns.

    It records the number of rows, their ids (``resource_ids``) and their patients
    (``patient_ids``; ``rows`` has ``id`` and ``patient_ref`` columns), and the query's shape
    (``p_detail``: fields and operators, never values). ``limit`` and ``order`` leave out the
    extra row a page fetches to know whether a next page exists.
    """
    returned: Any = rows
    if limit is not None:
        returned = (
            select(rows.c.id, rows.c.patient_ref).order_by(*order).limit(limit).subquery("ret")
        )
    summary = select(
        func.count(),
        _id_array(returned.c.id),
        _id_array(returned.c.patient_ref),
    ).select_from(returned)
    count, ids, patients = (
        summary.with_only_columns(c).scalar_subquery() for c in summary.selected_columns
    )
    row = _audit_values(null(), literal("success"), count)
    row.update(detail=_p("p_detail"), resource_ids=ids, patient_ids=patients)
    return _insert_select(insert(AUDIT), row).cte("a")


def _read_with_audit(r: CTE, exists_unscoped: Any = None) -> Select[Any]:
    found = exists(select(1).select_from(r).where(r.c.deleted_at.is_(None)))
    whens: list[Any] = [(found, literal("success"))]
    if exists_unscoped is not None:
        whens.append((exists_unscoped, literal("denied")))
    live = select(r.c.patient_ref).where(r.c.deleted_at.is_(None))
    returned_ids = (
        select(_id_array(_p("p_id"))).select_from(live.subquery("live")).scalar_subquery()
    )
    patients = select(_id_array(live.subquery("live_p").c.patient_ref)).scalar_subquery()
    row = _audit_values(_p("p_id"), case(*whens, else_=literal("not_found")))
    row.update(resource_ids=returned_ids, patient_ids=patients)
    audit = _insert_select(insert(AUDIT), row).cte("a")
    return select(r.c.document, r.c.deleted_at, r.c.version, r.c.patient_ref).add_cte(audit)


def _read_plain(r: CTE) -> Select[Any]:
    return select(r.c.document, r.c.deleted_at, r.c.version, r.c.patient_ref)


def _document_change(change: Any, operation: str) -> Select[Any]:
    """A JSONB-table change with its version row (the document it stored), its FHIR JSON for
    the views (removed by a delete) and its audit row."""
    table = change.table
    changed = change.returning(*stamp_columns(table), table.c.document).cte("t")
    snapshot = (
        _snapshot_forget(changed)
        if operation == "delete"
        else _snapshot_write(changed, typed=False)
    )
    return _returning_with_audit(
        changed, "success", _version_from(changed, operation, changed.c.document), snapshot
    )


def _document_statements(mapping: ResourceMapping) -> Statements:
    table = mapping.table
    now = func.now()
    t_ins = (
        pg_insert(table)
        .values(**_new_envelope(_p("p_id"), now), document=_stamped(_doc_param(), 1, now, now))
        .on_conflict_do_nothing()
    )
    insert_stmt = _document_change(t_ins, "create")
    t_upd = (
        update(table)
        .where(
            *_this_row(table),
            _at_expected_version(table),
        )
        .values(
            **_next_version(table, now, deleted=False),
            document=_stamped(_doc_param(), table.c.version + 1, table.c.created_at, now),
        )
    )
    update_stmt = _document_change(t_upd, "update")
    t_del = (
        update(table)
        .where(*_this_row(table), table.c.deleted_at.is_(None))
        .values(
            **_next_version(table, now, deleted=True),
            document=_stamped(table.c.document, table.c.version + 1, table.c.created_at, now),
        )
    )
    delete_stmt = _document_change(t_del, "delete")
    r = _current_row(mapping).cte("r")
    current = _current(mapping)
    return Statements(
        insert_stmt,
        update_stmt,
        delete_stmt,
        _read_with_audit(r),
        None,
        current,
        _read_plain(r),
        None,
    )


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def statements_for(mapping: ResourceMapping) -> Statements:
    """The statements of a mapping, built once and reused (SQLAlchemy caches their compilation)."""
    if mapping.typed:
        return _typed_statements(mapping)
    return _document_statements(mapping)


# -- the set-based update of save_many ---------------------------------------------------------

# The driver's dialect, for the value a column type sends (``bind_processor``).
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def _array_literal(value: Sequence[Any] | None) -> str | None:
    """A text array as PostgreSQL's array literal, every element quoted (NULL stays NULL).

    An array column cannot travel inside the batch's arrays (``unnest`` of a two-dimensional
    array yields its elements), so each row's array is sent as one text and cast back.
    """
    if value is None:
        return None
    items = (
        "NULL" if item is None else '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for item in value
    )
    return "{" + ",".join(items) + "}"


@dataclass(frozen=True, eq=False)
class BatchUpdate:
    """The update of many stored rows of one mapping in one statement (``save_many``).

    Each of ``row_params`` (the codec's per-resource parameters and ``p_expected``) is bound as
    an array of the same name, element i belonging to the batch's i-th resource; the other
    parameters (``a_*``, ``p_rt``, ``p_patients``) are the single-row update's. The statement
    returns the stamped envelope of each row it changed; a row it did not change (another
    version, missing, outside ``p_patients``) is simply not returned.
    """

    statement: Select[Any]
    row_params: tuple[str, ...]
    # Per row parameter: how a value is sent when its type cannot be an array element.
    wire: tuple[Callable[[Any], Any] | None, ...]

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The batch's per-row parameters (one mapping per resource) as arrays by name."""
        arrays: dict[str, list[Any]] = {}
        for name, convert in zip(self.row_params, self.wire, strict=True):
            if convert is None:
                arrays[name] = [row[name] for row in rows]
            else:
                arrays[name] = [convert(row[name]) for row in rows]
        return arrays


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def batch_update_for(mapping: ResourceMapping) -> BatchUpdate:
    """The set-based twin of ``statements_for(mapping).update``: the same version check, patient
    scope, version rows and audit rows, for every row of a batch in one round trip."""
    table = mapping.table
    by_param = {key_param(c.key): c for c in mapping.key_columns}
    types: dict[str, Any] = {
        "p_id": Text(),
        "p_doc": Text(),
        "p_expected": table.c.version.type,
        **{param: column.type for param, column in by_param.items()},
    }
    vectors = set(vector_columns(table.metadata))
    row_params = (*codec_for(mapping).row_params, "p_expected")
    wire: list[Callable[[Any], Any] | None] = []
    element_types: list[Any] = []
    for name in row_params:
        if name not in types:
            raise RuntimeError(f"batch update: no type for parameter {name}; fix statements.py.")
        key = by_param.get(name)
        if key is not None and key in vectors:
            # asyncpg has no codec for vector[]: each vector goes as its text and is cast back,
            # to a vector of no fixed dimension: the column's own (the database's, which the
            # metadata need not know) is checked on assignment, as for the single-row write.
            wire.append(key.type.bind_processor(_DIALECT))
            element_types.append(Text())
            types[name] = Vector()
        elif isinstance(types[name], ARRAY):
            wire.append(_array_literal)
            element_types.append(Text())
        else:
            wire.append(None)
            element_types.append(types[name])
    u = (
        func.unnest(
            *(bindparam(n, type_=ARRAY(t)) for n, t in zip(row_params, element_types, strict=True))
        )
        .table_valued(
            *(column(n, t) for n, t in zip(row_params, element_types, strict=True)),
            with_ordinality="ord",
        )
        .render_derived(name="u")
    )

    def value(name: str) -> Any:
        sent = u.c[name]
        return sent if types[name] is sent.type else cast(sent, types[name])

    now = func.now()
    where = [
        table.c.id == u.c.p_id,
        table.c.resource_type == _p("p_rt"),
        table.c.version == u.c.p_expected,
        stored_in_scope(mapping),
    ]
    document = cast(u.c.p_doc, JSONB)
    if mapping.typed:
        keys = {key.key: value(param) for param, key in by_param.items()}
        changed = (
            update(table)
            .where(*where)
            .values(**_next_version(table, now, deleted=False), **keys)
            .returning(*stamp_columns(table), u.c.p_doc, u.c.ord)
            .cte("t")
        )
        versioned: Any = cast(changed.c.p_doc, JSONB)
    else:
        changed = (
            update(table)
            .where(*where)
            .values(
                **_next_version(table, now, deleted=False),
                document=_stamped(document, table.c.version + 1, table.c.created_at, now),
            )
            .returning(*stamp_columns(table), table.c.document, u.c.ord)
            .cte("t")
        )
        versioned = changed.c.document
    order = changed.c.ord
    versions = _version_from(changed, "update", versioned, order)
    statement = _returning_with_audit(changed, "success", versions, order=order)
    return BatchUpdate(statement, row_params, tuple(wire))
