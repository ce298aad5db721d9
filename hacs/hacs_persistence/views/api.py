"""create_view / view_rows / drop_view, and the FHIR-shaped documents views read.

Stored documents are hacs models (snake_case, typed fields, extras), not FHIR JSON, and a
ViewDefinition is written against FHIR names. ``sync_fhir_resources`` writes each resource's
``to_fhir`` JSON (the exporter's conversion) into ``hacs_views.fhir_resources``; views select
from there. The adapter's writes keep it in step (``adapters.fhir_snapshot``); a sync rebuilds a
type's rows as a whole, for data written before that (or by SQL outside the adapter).

Access: given a :class:`PostgreSQLAdapter`, every call goes through its gate as the actor
(argument, else the current one). ``view_rows`` needs read permission on the view's resource
type, restricts a patient-scoped actor to its patients' rows in the SQL, and writes one audit
row (action ``view``: count, resource and patient ids) before the first row is handed out.
``create_view``/``drop_view``/``sync_fhir_resources`` are schema changes: ``admin:*``, and
their audit row is written in the change's own transaction. There is no way around the gate:
every call takes the adapter (an operator who wants SQL without it connects with psql, as
whatever database role grants).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text

from hacs_auth import Actor
from hacs_models import BaseResource
from hacs_persistence.adapters.fhir_snapshot import SYNC_UPSERT, snapshot_rows
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.db.roles import ANALYST_ROLE
from hacs_persistence.errors import (
    SchemaNotMigratedError,
    sqlstate_of,
    translating,
)
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import audit_insert
from hacs_persistence.views.compiler import (
    FHIR_RESOURCES,
    PATIENT_ID,
    RESOURCE_ID,
    CompiledView,
    compile_view,
    quote,
    typed_table,
)
from hacs_persistence.views.definition import NAME, ViewDefinition
from hacs_persistence.views.errors import ViewDefinitionError
from hacs_persistence.views.typed import backfill_statement

__all__ = [
    "VIEW_ACTION",
    "create_view",
    "drop_view",
    "sync_fhir_resources",
    "view_name",
    "view_rows",
]

VIEW_ACTION = "view"
_VIEWS_SCHEMA = "hacs_views"
# Documents a sync converts and writes at a time (and the exporter's page it reads them in).
SYNC_PAGE = 1000
_RESERVED = frozenset({"fhir_resources"})
DUPLICATE_TABLE = "42P07"
UNDEFINED_TABLE = "42P01"
INVALID_SCHEMA = "3F000"
_DEFINITION_ERROR = re.compile(r"hacs_views: (.*)")


def _adapter(target: Any) -> PostgreSQLAdapter:
    if not isinstance(target, PostgreSQLAdapter):
        raise TypeError(
            f"Pass the PostgreSQLAdapter (create_postgres_adapter()), not {type(target).__name__}:"
            " views run through its access gate and audit."
        )
    return target


def _view_error(exc: BaseException) -> Exception | None:
    """What a database error means for a view (``errors.translating(specific=...)``)."""
    # The server's own message, not the statement SQLAlchemy appends to it.
    server_text = str(getattr(exc, "orig", exc))
    if sqlstate_of(exc) in (UNDEFINED_TABLE, INVALID_SCHEMA) and "hacs_views" in server_text:
        return SchemaNotMigratedError(
            "The database has no hacs_views schema (or no fhir_resources table): run "
            "`hacs db upgrade` (revision 0008 adds them)."
        )
    found = _DEFINITION_ERROR.search(server_text)
    if found is not None:
        message = found.group(1).splitlines()[0]
        return ViewDefinitionError(f"The view's data breaks its definition: {message}.")
    return None


def _creating(name: str) -> Callable[[BaseException], Exception | None]:
    def specific(exc: BaseException) -> Exception | None:
        if sqlstate_of(exc) == DUPLICATE_TABLE:
            return ViewDefinitionError(
                f"The view hacs_views.{name} exists: drop it, or pass replace=True (`--replace`)."
            )
        return _view_error(exc)

    return specific


def _dropping(name: str) -> Callable[[BaseException], Exception | None]:
    def specific(exc: BaseException) -> Exception | None:
        if sqlstate_of(exc) == UNDEFINED_TABLE:
            return ViewDefinitionError(
                f"There is no view hacs_views.{name}; `hacs views create` makes one."
            )
        return _view_error(exc)

    return specific


def view_name(definition: ViewDefinition, name: str | None = None) -> str:
    """The view's SQL name: ``name``, else the definition's ``name``."""
    chosen = name if name is not None else definition.name
    if chosen is None:
        raise ViewDefinitionError(
            "The ViewDefinition has no name; give it a `name` or pass one explicitly."
        )
    if not NAME.match(chosen) or chosen in _RESERVED or len(chosen) > 63:
        raise ViewDefinitionError(
            f"View name {chosen!r} must start with a letter, hold only letters, digits and '_', "
            "be at most 63 characters and not be fhir_resources."
        )
    return chosen


async def _admin(adapter: PostgreSQLAdapter, actor: Actor | None, rt: str | None) -> Actor:
    acting = adapter.gate.actor(actor)
    await adapter.gate.require_admin(acting, VIEW_ACTION, rt or "ViewDefinition", None)
    return acting


async def _change(
    adapter: PostgreSQLAdapter,
    acting: Actor,
    specific: Callable[[BaseException], Exception | None],
    statement: str,
    resource_type: str | None,
    detail: str,
    *,
    analyst_grant: str | None = None,
) -> None:
    """Run a view's DDL and write its audit row in one transaction: both or neither.

    ``analyst_grant``: the view whose ``SELECT`` goes to ``hacs_analyst`` (when the role exists),
    in the same transaction, so a created view is never readable by the wrong role or missing
    its grant.
    """
    audit = adapter.gate.audit_params(acting, VIEW_ACTION, resource_type, None, "success", detail)
    async with translating(specific=specific), adapter.engine.begin() as conn:
        await conn.execute(text(statement))
        if analyst_grant is not None:
            exists = await conn.scalar(
                text("SELECT to_regrole(:role) IS NOT NULL"), {"role": ANALYST_ROLE}
            )
            if exists:
                await conn.execute(text(f"GRANT SELECT ON {analyst_grant} TO {ANALYST_ROLE}"))
        await conn.execute(audit_insert(), audit)


async def create_view(
    target: PostgreSQLAdapter,
    definition: ViewDefinition | Mapping[str, Any] | str,
    *,
    name: str | None = None,
    replace: bool = False,
    actor: Actor | None = None,
    typed: bool = True,
) -> str:
    """Compile ``definition`` into ``hacs_views.<name>``; returns the name. Needs ``admin:*``.

    ``typed`` (the default) reads the columns that map onto typed columns from the typed table
    (``compile_view``); ``False``: every column from the FHIR JSON.
    """
    adapter = _adapter(target)
    parsed = ViewDefinition.parse(definition)
    chosen = view_name(parsed, name)
    acting = await _admin(adapter, actor, parsed.resource)
    await _typed_ready(adapter, parsed, typed)
    compiled = compile_view(parsed, typed=typed)
    verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
    qualified = f"{quote(_VIEWS_SCHEMA)}.{quote(chosen)}"
    # security_barrier: a reader's own WHERE conditions (and the errors they raise) run only on
    # the view's rows, never on the other documents of fhir_resources the view reads as its
    # owner (docs/operations.md, Step 4).
    ddl = f"{verb} {qualified} WITH (security_barrier = true) AS {compiled.literal_sql()}"
    await _change(
        adapter,
        acting,
        _creating(chosen),
        ddl,
        parsed.resource,
        f"create view={chosen}",
        analyst_grant=qualified,
    )
    return chosen


async def drop_view(target: PostgreSQLAdapter, name: str, *, actor: Actor | None = None) -> None:
    """Drop ``hacs_views.<name>`` (an unknown name is an error). Needs ``admin:*``."""
    adapter = _adapter(target)
    if not NAME.match(name) or name in _RESERVED:
        raise ViewDefinitionError(f"{name!r} is not a view name.")
    acting = await _admin(adapter, actor, None)
    ddl = f"DROP VIEW {quote(_VIEWS_SCHEMA)}.{quote(name)}"
    await _change(adapter, acting, _dropping(name), ddl, None, f"drop view={name}")


async def _typed_ready(adapter: PostgreSQLAdapter, parsed: ViewDefinition, typed: bool) -> None:
    """Refuse a typed view while some typed rows have no FHIR JSON (stored before 0008).

    Every write since keeps the two in step; those rows would show in a typed view but not in
    one over the JSON, so the two compilations would disagree.
    """
    table = typed_table(parsed) if typed else None
    if table is None:
        return
    missing = text(
        f"SELECT count(*) FROM {table} AS t WHERE t.deleted_at IS NULL AND t.resource_type = :rt "
        f"AND NOT EXISTS (SELECT 1 FROM {FHIR_RESOURCES} AS r "
        "WHERE r.resource_type = :rt AND r.id = t.id AND r.stored_typed)"
    )
    async with translating(specific=_view_error), adapter.engine.connect() as conn:
        count = (await conn.execute(missing, {"rt": parsed.resource})).scalar_one()
    if count:
        raise ViewDefinitionError(
            f"{count} {parsed.resource} resources have no FHIR JSON in {FHIR_RESOURCES} yet "
            f"(stored before revision 0008): run `hacs views sync {parsed.resource}` first, "
            "or compile the view with typed=False to read the FHIR JSON only."
        )


async def _rows(conn: AsyncConnection, compiled: CompiledView, allowed: list[str] | None) -> Any:
    statement = compiled.statement()
    if allowed is not None:
        statement = statement.bindparams(bindparam("allowed", allowed, type_=ARRAY(Text)))
    result = await conn.execute(statement)
    return result.mappings().all()


async def view_rows(
    target: PostgreSQLAdapter,
    definition: ViewDefinition | Mapping[str, Any] | str,
    *,
    actor: Actor | None = None,
    typed: bool = True,
) -> AsyncIterator[dict[str, Any]]:
    """The rows of ``definition`` (keys: its column names), computed by one SQL SELECT.

    Values are as PostgreSQL gives them: ``decimal`` columns are exact ``Decimal``s, integer
    columns ``int``, text columns (strings, codes, dates and times as written) ``str``, and
    ``jsonb`` columns (no type, or ``"collection": true``) decoded JSON. The rows are read and
    their audit row written before the first is yielded.
    """
    adapter = _adapter(target)
    parsed = ViewDefinition.parse(definition)
    acting = adapter.gate.actor(actor)
    resource_type = parsed.resource
    await adapter.gate.authorize(acting, "read", resource_type, None, VIEW_ACTION)
    allowed = await adapter.gate.scope(acting, adapter.mapping(resource_type), VIEW_ACTION, None)
    await _typed_ready(adapter, parsed, typed)
    compiled = compile_view(parsed, audit_columns=True, scoped=allowed is not None, typed=typed)
    async with translating(specific=_view_error), adapter.engine.connect() as conn:
        rows = await _rows(conn, compiled, allowed)
    await adapter.gate.record(
        acting,
        VIEW_ACTION,
        parsed.resource,
        None,
        "success",
        f"view={parsed.name or '(unnamed)'};columns={len(compiled.columns)}",
        count=len(rows),
        resource_ids=[row[RESOURCE_ID] for row in rows],
        patient_ids=[row[PATIENT_ID] for row in rows],
    )
    for row in rows:
        yield {n: row[n] for n in compiled.columns}


async def sync_fhir_resources(
    adapter: PostgreSQLAdapter, resource_type: str, *, actor: Actor | None = None
) -> int:
    """Rewrite ``hacs_views.fhir_resources`` for one type from the stored documents.

    Reads through the exporter (read permission, audited pages) and needs ``admin:*``: the
    rows serve every actor. One transaction: the type's rows are replaced as a whole, and the
    typed columns a view reads that a row lacks while its document has them (a row written by SQL
    outside the adapter) are filled from the documents (``views.typed.backfill_statement``), so
    views read those rows from the typed table again. The documents are read and their rows
    written ``SYNC_PAGE`` at a time, in that transaction: memory holds a page, not the type.
    """
    from hacs_persistence.interchange import iter_resources

    acting = adapter.gate.actor(actor)
    await adapter.gate.require_admin(acting, VIEW_ACTION, resource_type, None)
    mapping = adapter.mapping(resource_type)
    count = 0
    async with translating(specific=_view_error), adapter.transaction() as conn:
        await conn.execute(
            text("DELETE FROM hacs_views.fhir_resources WHERE resource_type = :rt"),
            {"rt": resource_type},
        )
        page: list[tuple[ResourceMapping, BaseResource]] = []
        async for resource in iter_resources(adapter, resource_type, acting, page_size=SYNC_PAGE):
            page.append((mapping, resource))
            if len(page) == SYNC_PAGE:
                await conn.execute(SYNC_UPSERT, snapshot_rows(page))
                count += len(page)
                page = []
        if page:
            await conn.execute(SYNC_UPSERT, snapshot_rows(page))
            count += len(page)
        backfill = backfill_statement(resource_type)
        if count and backfill is not None:
            await conn.execute(text(backfill))
        audit = adapter.gate.audit_params(
            acting, VIEW_ACTION, resource_type, None, "success", "sync", count=count
        )
        await conn.execute(audit_insert(), audit)
    return count
