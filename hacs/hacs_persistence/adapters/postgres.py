"""The adapters: save, read, update, delete, search and history of resources, for an actor.

``PostgreSQLAdapter`` keeps every resource type as JSONB in ``public.hacs_resources``.
``GranularPostgreSQLAdapter`` (``adapters.granular``) keeps types that have a typed table there
(key columns) with their documents in ``hacs_core.resource_versions``, and every other type in the
JSONB table. Both check the actor before touching data, write the audit row in the same
transaction as the change, translate database errors once, and never leave half-written data.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, NoReturn, TypeVar
from typing import cast as typing_cast

from sqlalchemy import Integer, Text, bindparam, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hacs_auth import Actor, get_current_actor
from hacs_models import BaseResource, new_resource_id
from hacs_persistence.access.audit import AuditContext
from hacs_persistence.access.gate import AccessGate
from hacs_persistence.adapters.fhir_snapshot import (
    forget_patient,
    snapshot_params,
    write_snapshot,
)
from hacs_persistence.db.engine import (
    ResolvedDatabase,
    release_engine,
)
from hacs_persistence.db.replicas import CallerKey, ReadRouter, caller_key
from hacs_persistence.db.unit import Unit, open_unit
from hacs_persistence.errors import (
    DatabaseUnavailableError,
    InvalidQueryError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ResourceNotFoundError,
    ResourceValidationError,
    ServerEndpoint,
    StoredDocumentError,
    TransientDatabaseError,
    VersionConflictError,
    translating,
)
from hacs_persistence.ids import checked_id
from hacs_persistence.limits import DEFAULT_MAX_DOCUMENT_BYTES, check_document
from hacs_persistence.ops.observability import observed
from hacs_persistence.query.search import Page, build_search, next_cursor
from hacs_persistence.query.similarity import build_similarity, run_similarity
from hacs_persistence.schema import ResourceVersionTable
from hacs_persistence.storage.bulk import (
    KeyResolver,
    OutOfScopeError,
    bulk_insert,
    bulk_update,
    group_by_mapping,
)
from hacs_persistence.storage.codec import Envelopes, codec_for, stamp
from hacs_persistence.storage.erasure import PurgeReport, apply_retention, purge_compartment
from hacs_persistence.storage.mapping import (
    ResourceMapping,
    document_mapping,
    mapping_for,
    model_for,
)
from hacs_persistence.storage.statements import statements_for

__all__ = [
    "ActingAdapter",
    "HistoryEntry",
    "PostgreSQLAdapter",
    "SavedBatch",
]

R = TypeVar("R", bound=BaseResource)
T = TypeVar("T")
# Serialization failures and deadlocks are retried this many times in all (then raised).
TRANSIENT_ATTEMPTS = 3
VERSIONS = ResourceVersionTable.__table__
# An auto-generated id that collides with a stored one is regenerated this many times.
_ID_ATTEMPTS = 5


@dataclass(frozen=True)
class _Refusal:
    """A write the database refused: its audit outcome and the error the caller gets."""

    outcome: str
    error: Exception


class SavedBatch(list[R]):
    """The resources ``save_many`` stored, plus the dangling references it set to NULL."""

    def __init__(self, items: Iterable[R], dangling_references: dict[str, int]) -> None:
        super().__init__(items)
        self.dangling_references = dangling_references


@dataclass(frozen=True)
class HistoryEntry(Generic[R]):
    """One stored version of a resource: what it was and who changed it how and when."""

    version: int
    operation: str
    changed_at: datetime
    changed_by: str | None
    resource: R


class PostgreSQLAdapter:
    """Async persistence of hacs resources as JSONB documents (every resource type)."""

    typed_storage: ClassVar[bool] = False

    def __init__(
        self,
        engine: AsyncEngine,
        database: ResolvedDatabase | None = None,
        *,
        vector_dim: int | None = None,
        request_id: str | None = None,
        purpose_of_use: str | None = None,
        embedder: Callable[[str], Sequence[float]] | None = None,
        replicas: ReadRouter | None = None,
    ) -> None:
        self.engine = engine
        # Read replicas (db/replicas.py): reads outside a transaction() may be served there.
        self.replicas = replicas
        # Turns text into an embedding: fills missing embeddings of memory blocks and knowledge
        # items from their content on save, and lets search_similar take a text query.
        self.embedder = embedder
        self.database = database
        self.vector_dim = vector_dim
        # Every write refuses larger documents (check_document in _check_resource).
        self.max_document_bytes = (
            database.settings.max_document_bytes
            if database is not None
            else DEFAULT_MAX_DOCUMENT_BYTES
        )
        self.audit_defaults = AuditContext(request_id, purpose_of_use)
        # Every call passes this gate: actor, permission, patient scope, durable audit rows.
        self.gate = AccessGate(engine, self.audit_defaults)
        self._tx: ContextVar[Unit | None] = ContextVar(f"hacs_tx_{id(self)}", default=None)
        # The callers that wrote in the open transaction (their reads must see it after commit).
        self._tx_writers: ContextVar[set[CallerKey] | None] = ContextVar(
            f"hacs_tx_writers_{id(self)}", default=None
        )
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Release the adapter's engine (disposed when no other adapter uses it)."""
        if not self._closed:
            self._closed = True
            if self.replicas is not None:
                await self.replicas.close()
            await release_engine(self.engine)

    async def __aenter__(self) -> PostgreSQLAdapter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def mapping(self, model_cls: type[BaseResource] | str) -> ResourceMapping:
        """Where this adapter stores a model class (or a resource type name)."""
        if isinstance(model_cls, str):
            cls = model_for(model_cls)
            if cls is BaseResource:
                return document_mapping(model_cls)
            return mapping_for(cls, typed=self.typed_storage)
        return mapping_for(model_cls, typed=self.typed_storage)

    def _mapping_of(self, resource: BaseResource) -> ResourceMapping:
        # A plain BaseResource carries an unmodelled type (e.g. imported FHIR): JSONB storage.
        if type(resource).model_fields["resource_type"].default is None or (
            type(resource) is BaseResource
        ):
            return document_mapping(resource.resource_type)
        return self.mapping(type(resource))

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Run several calls (and your own SQL on the yielded connection) in one transaction.

        Everything inside commits together when the block ends, or rolls back on an exception.
        Nested blocks join the outer transaction. Errors of the SQL you run on the connection
        leave the block translated, as the adapter's own (``UniqueViolationError``...).
        """
        current = self._tx.get()
        if current is not None:
            with translating():
                yield current.conn
            return
        writers: set[CallerKey] = set()
        current_actor = get_current_actor()
        if current_actor is not None:
            writers.add(caller_key(current_actor))  # its raw SQL in the block, if any
        after = self.replicas.after_write(writers) if self.replicas is not None else None
        async with open_unit(
            self.engine, transactional=True, endpoint=self._endpoint, after_commit=after
        ) as unit:
            token = self._tx.set(unit)
            writers_token = self._tx_writers.set(writers)
            try:
                with translating():
                    yield unit.conn
            finally:
                self._tx_writers.reset(writers_token)
                self._tx.reset(token)

    @property
    def _endpoint(self) -> ServerEndpoint | None:
        return self.database.endpoint if self.database is not None else None

    @asynccontextmanager
    async def _unit(
        self,
        *,
        transactional: bool = False,
        reader: Actor | None = None,
        writer: Actor | None = None,
    ) -> AsyncIterator[Unit]:
        """The caller's transaction if one is open, else a connection of our own.

        The one place a connection is chosen. ``reader``: a read for this actor, which may be
        served by a read replica (``unit.replica`` says so; its audit row then goes to the
        primary apart, see ``_audits_apart``). ``writer``: a write for this actor, whose WAL
        position is noted after commit so its next reads see it (read your writes).
        """
        current = self._tx.get()
        if current is not None:
            writers = self._tx_writers.get()
            if writer is not None and writers is not None:
                writers.add(caller_key(writer))
            yield current
            return
        if reader is not None and self.replicas is not None:
            async with self.replicas.reading(
                caller_key(reader),
                transactional=transactional,
                primary=lambda: open_unit(
                    self.engine, transactional=False, endpoint=self._endpoint
                ),
            ) as replica_unit:
                if replica_unit is not None:
                    yield replica_unit
                    return
        after = (
            self.replicas.after_write([caller_key(writer)])
            if writer is not None and self.replicas is not None
            else None
        )
        async with open_unit(
            self.engine, transactional=transactional, endpoint=self._endpoint, after_commit=after
        ) as unit:
            yield unit

    def _audits_apart(self, unit: Unit) -> bool:
        """Whether a read on ``unit`` writes its audit row apart, on the primary: inside a
        caller's transaction (the row must outlive a rollback) and on a read-only replica."""
        return self._in_caller_transaction() or unit.replica is not None

    async def _retrying(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a unit of work, again (a bounded number of times) after a serialization failure
        or deadlock. Inside a caller's transaction nothing is replayed: the caller decides."""
        if self._tx.get() is not None:
            return await work()
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return await work()
            except TransientDatabaseError:
                if attempt == TRANSIENT_ATTEMPTS:
                    raise
                # Jittered backoff so two deadlocked writers do not collide again in step.
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    async def _write(self, unit: Unit, statement: Any, params: Mapping[str, Any]) -> Any:
        """A write statement; in autocommit a lost connection leaves its outcome unknown."""
        try:
            return await unit.fetchrow(statement, params)
        except OutcomeUnknownError:
            raise
        except DatabaseUnavailableError as exc:
            if self._tx.get() is not None:
                raise
            raise OutcomeUnknownError(
                "The connection was lost while the write was running; it may or may not have "
                "been saved. Read the resource to find out before retrying."
            ) from exc

    # -- permissions and audit -------------------------------------------------------------

    def acting_as(self, actor: Actor | None = None) -> ActingAdapter:
        """This adapter bound to one actor (resolved now: the argument, else the current one).

        ``clinic = adapter.acting_as(dr_smith)`` then ``await clinic.read(Patient, pid)``: every
        call passes the same gate (permission, patient scope, audit) as the actor argument.
        """
        return ActingAdapter(self, self.gate.actor(actor))

    def _actor(self, actor: Actor | None) -> Actor:
        return self.gate.actor(actor)

    def _in_caller_transaction(self) -> bool:
        return self._tx.get() is not None

    async def _models(
        self,
        acting: Actor,
        action: str,
        mapping: ResourceMapping,
        model: type[R],
        rows: Sequence[tuple[str, str]],
        *,
        page: bool = False,
        next_page: str | None = None,
    ) -> list[R]:
        """The (id, document) rows as models; a stored document that does not validate fails
        this call only, audited with its id (never in the message), so an operator finds it."""
        codec = codec_for(mapping)
        models: list[R] = []
        failures: list[tuple[int, str, StoredDocumentError]] = []
        for position, (resource_id, document) in enumerate(rows, start=1):
            try:
                models.append(codec.load(document, model))
            except StoredDocumentError as exc:
                failures.append((position, resource_id, exc))
        if not failures:
            return models
        position, resource_id, first = failures[0]
        fields = ",".join(sorted({e["field"] for _, _, f in failures for e in f.errors}))
        await self.gate.record(
            acting,
            action,
            mapping.resource_type,
            resource_id if not page else None,
            "error",
            f"stored document invalid;positions={','.join(str(p) for p, _, _ in failures)};"
            f"fields={fields}",
            count=len(failures),
            resource_ids=[rid for _, rid, _ in failures],
        )
        raise StoredDocumentError(
            mapping.resource_type,
            first.errors,
            position=position,
            page=page,
            next_cursor=next_page,
        )

    # -- writes ----------------------------------------------------------------------------

    def _check_resource(self, resource: Any) -> BaseResource:
        """Every write path (save, update, save_many) passes here before any statement is sent."""
        if not isinstance(resource, BaseResource):
            raise ResourceValidationError(
                f"Expected a hacs resource (BaseResource), got {type(resource).__name__}."
            )
        # Models validate their id; model_construct and __dict__ writes do not.
        checked_id(resource.__dict__.get("id"), f"{resource.resource_type}.id")
        check_document(resource, self.max_document_bytes)
        if "embedding" not in type(resource).model_fields:
            return resource  # most types: nothing to embed or check
        embedding = resource.__dict__.get("embedding")
        content = resource.__dict__.get("content")
        if self.embedder is not None and embedding is None and isinstance(content, str):
            embedding = [float(v) for v in self.embedder(content)]
            resource.__dict__["embedding"] = embedding
        if (
            self.vector_dim is not None
            and embedding is not None
            and len(embedding) != self.vector_dim
        ):
            raise ResourceValidationError(
                f"{resource.resource_type}.embedding has {len(embedding)} dimensions; this "
                f"database stores {self.vector_dim}."
            )
        return resource

    @observed("save")
    async def save(self, resource: R, actor: Actor | None = None) -> R:
        """Insert a new resource, or update a stored one (which must carry its stored version).

        The resource is returned with the database's version and timestamps set on it.
        """
        acting = self._actor(actor)
        resource = self._check_resource(resource)  # type: ignore[assignment]
        mapping = self._mapping_of(resource)
        if resource.version is not None:
            return await self._update_resource(resource, acting, resource.version)
        await self.gate.authorize(acting, "write", mapping.resource_type, resource.id, "create")
        allowed = await self.gate.scope(acting, mapping, "create", resource.id)
        await self.gate.check_new_row(acting, mapping, resource, "create", allowed)

        async def work() -> _Refusal | None:
            # No transaction: the insert statement writes the row, its version, its FHIR JSON
            # for the views and its audit row at once; what runs before it only reads.
            async with self._unit(writer=acting) as unit:
                return await self._insert(unit, mapping, resource, acting, allowed)

        # A failed save leaves the object as it was (a colliding generated id may be redrawn).
        with Envelopes([resource]):
            refused = await self._retrying(work)
            if refused is not None:
                await self._refuse(acting, "create", mapping, resource.id, refused)
        return resource

    async def _insert(
        self,
        unit: Unit,
        mapping: ResourceMapping,
        resource: BaseResource,
        actor: Actor,
        allowed: list[str] | None,
    ) -> _Refusal | None:
        """Insert the resource; a taken id is returned as a refusal for the caller to audit."""
        statements = statements_for(mapping)
        await _check_references(unit, mapping, resource, allowed)
        generated = "id" not in resource.model_fields_set
        for _attempt in range(_ID_ATTEMPTS):
            params = codec_for(mapping).write_params(resource, self.gate.params(actor, "create"))
            params.update(snapshot_params(mapping, resource), p_patients=allowed)
            row = await self._write(unit, statements.insert, params)
            if row is not None:
                stamp(resource, row)
                return None
            stored = await unit.fetchrow(statements.current_version, params)
            if not generated:
                # Ids are unique, so a taken id cannot be hidden; another patient's row at
                # least never tells a scoped actor its version.
                visible = stored is not None and stored["in_scope"]
                return _Refusal(
                    "conflict" if visible or stored is None else "denied",
                    VersionConflictError(
                        mapping.resource_type,
                        resource.id,
                        None,
                        stored["version"] if visible else None,
                    ),
                )
            # A collision of a generated id: draw a new one and try again.
            resource.__dict__["id"] = new_resource_id(mapping.resource_type)
        raise ResourceValidationError(
            f"Could not find a free id for a new {mapping.resource_type} after {_ID_ATTEMPTS} "
            "attempts; pass an explicit id."
        )

    @observed("update")
    async def update(
        self, resource: R, actor: Actor | None = None, expected_version: int | None = None
    ) -> R:
        """Store a new version of a resource; the stored version must be ``expected_version``.

        ``expected_version`` defaults to the resource's own ``version``. A stale or missing
        version raises ``VersionConflictError``. Updating a deleted resource restores it.
        """
        return await self._update_resource(resource, self._actor(actor), expected_version)

    async def _update_resource(self, resource: R, acting: Actor, expected_version: int | None) -> R:
        resource = self._check_resource(resource)  # type: ignore[assignment]
        mapping = self._mapping_of(resource)
        expected = expected_version if expected_version is not None else resource.version
        await self.gate.authorize(acting, "write", mapping.resource_type, resource.id, "update")
        allowed = await self.gate.scope(acting, mapping, "update", resource.id)
        # The new version must stay in the actor's patients; the stored row is checked by the
        # update statement itself.
        await self.gate.check_new_row(acting, mapping, resource, "update", allowed)
        if expected is None:
            await self.gate.record(acting, "update", mapping.resource_type, resource.id, "conflict")
            raise VersionConflictError(mapping.resource_type, resource.id, None, None)

        async def work() -> _Refusal | None:
            # One statement, as a save's (no transaction).
            async with self._unit(writer=acting) as unit:
                return await self._update(unit, mapping, resource, acting, expected, allowed)

        refused = await self._retrying(work)
        if refused is not None:
            await self._refuse(acting, "update", mapping, resource.id, refused)
        return resource

    async def _refuse(
        self,
        actor: Actor,
        action: str,
        mapping: ResourceMapping,
        resource_id: str | None,
        refused: _Refusal,
    ) -> NoReturn:
        """Audit a refused write, then raise its error: only once its transaction has ended.

        A refused update may still hold the row's lock (READ COMMITTED locks the newest
        version before it rechecks the expected one) and its pool connection; writing the
        audit row on a second connection while holding both let 50 racing writers starve the
        pool and queue behind each other's locks until statement_timeout.
        """
        await self.gate.record(actor, action, mapping.resource_type, resource_id, refused.outcome)
        raise refused.error

    async def _update(
        self,
        unit: Unit,
        mapping: ResourceMapping,
        resource: BaseResource,
        actor: Actor,
        expected: int,
        allowed: list[str] | None,
    ) -> _Refusal | None:
        """Write the new version; a missing, hidden or stale row is returned as a refusal."""
        statements = statements_for(mapping)
        await _check_references(unit, mapping, resource, allowed)
        params = codec_for(mapping).write_params(resource, self.gate.params(actor, "update"))
        params.update(snapshot_params(mapping, resource), p_expected=expected, p_patients=allowed)
        row = await self._write(unit, statements.update, params)
        if row is not None:
            stamp(resource, row)
            return None
        stored = await unit.fetchrow(statements.current_version, params)
        if stored is None or not stored["in_scope"]:
            # Another patient's row is reported exactly as a missing one.
            return _Refusal(
                "not_found" if stored is None else "denied",
                ResourceNotFoundError(mapping.resource_type, resource.id),
            )
        return _Refusal(
            "conflict",
            VersionConflictError(mapping.resource_type, resource.id, expected, stored["version"]),
        )

    @observed("delete")
    async def delete(
        self, model_cls: type[BaseResource] | str, resource_id: str, actor: Actor | None = None
    ) -> int:
        """Soft-delete: add a tombstone version and hide the resource. Returns that version."""
        resource_id = checked_id(resource_id)
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        await self.gate.authorize(acting, "delete", mapping.resource_type, resource_id, "delete")
        allowed = await self.gate.scope(acting, mapping, "delete", resource_id)
        statements = statements_for(mapping)
        params = self.gate.params(acting, "delete")
        # The delete statement only touches a stored row in the actor's patients.
        params.update(p_rt=mapping.resource_type, p_id=resource_id, p_patients=allowed)

        async def work() -> tuple[Any, Any]:
            # One statement: the tombstone, its audit row and the views' row removed.
            async with self._unit(writer=acting) as unit:
                row = await self._write(unit, statements.delete, params)
                if row is not None:
                    return row, None
                return None, await unit.fetchrow(statements.current_version, params)

        row, stored = await self._retrying(work)
        if row is None:
            hidden = stored is not None and not stored["in_scope"]
            await self.gate.record(
                acting,
                "delete",
                mapping.resource_type,
                resource_id,
                "denied" if hidden else "not_found",
            )
            raise ResourceNotFoundError(
                mapping.resource_type, resource_id, deleted=stored is not None and not hidden
            )
        return int(row["version"])

    @observed("save_many")
    async def save_many(
        self,
        resources: Iterable[R],
        actor: Actor | None = None,
        *,
        dangling: Literal["error", "null"] = "error",
        pending: Mapping[str, Collection[str]] | None = None,
    ) -> SavedBatch[R]:
        """Save many resources in one transaction, in any order (references checked at commit).

        Needs write permission for every type involved; nothing is written if any part fails.
        With ``dangling="null"`` (imports), a reference to a patient or encounter that exists
        neither in the batch nor in the database is kept in the document with a NULL foreign
        key and counted in the result's ``dangling_references``, instead of failing the batch.
        ``pending`` (resource type -> ids) names resources a later ``save_many`` of the same
        ``transaction()`` saves (an import written in batches): references to them are kept.
        """
        acting = self._actor(actor)
        items = [self._check_resource(r) for r in resources]
        for resource_type in sorted({r.resource_type for r in items}):
            await self.gate.authorize(acting, "write", resource_type, None, "save_many")
        allowed: list[str] | None = None
        if acting.patient_ids is not None:
            for resource in items:
                mapping = self._mapping_of(resource)
                allowed = await self.gate.scope(acting, mapping, "save_many", resource.id)
                await self.gate.check_new_row(acting, mapping, resource, "save_many", allowed)
        new, stored = group_by_mapping(items, self._mapping_of)
        audit = self.gate.params(acting, "create")
        snapshot = Envelopes(items)
        if dangling not in ("error", "null"):
            raise ResourceValidationError("dangling must be 'error' or 'null'.")
        pending_rows: dict[str, Collection[str]] = {}
        for resource_type, ids in (pending or {}).items():
            target = self.mapping(resource_type)
            if target.typed:
                name = target.table.fullname
                # Two types in one table (rare): their ids together.
                pending_rows[name] = {*pending_rows[name], *ids} if name in pending_rows else ids
        resolver = KeyResolver(
            dangling_to_null=dangling == "null", patients=allowed, pending=pending_rows
        )

        async def work() -> None:
            resolver.dangling.clear()
            try:
                # Refusals are audited once the transaction has ended (see _refuse).
                try:
                    # The driver's errors (COPY, deferred checks) leave translated.
                    async with (
                        self._unit(transactional=True, writer=acting) as unit,
                        translating(),
                    ):
                        # Foreign keys are checked at commit: an observation may come before
                        # its patient.
                        await unit.driver.execute("SET CONSTRAINTS ALL DEFERRED")
                        await resolver.prepare(unit, [new, stored])
                        if new:
                            await bulk_insert(unit, new, acting, audit, resolver, allowed)
                        if stored:
                            await bulk_update(
                                unit, stored, {**audit, "a_action": "update"}, resolver, allowed
                            )
                        # The views' FHIR JSON of every saved resource, in the same transaction.
                        await write_snapshot(unit, [(self._mapping_of(r), r) for r in items])
                except OutOfScopeError as exc:
                    # Audited as denied; the caller sees what a missing row gives.
                    await self.gate.record(
                        acting, "save_many", exc.resource_type, exc.resource_id, "denied"
                    )
                    raise VersionConflictError(
                        exc.resource_type, exc.resource_id, exc.expected, None
                    ) from None
                except VersionConflictError as exc:
                    await self.gate.record(
                        acting, "save_many", exc.resource_type, exc.resource_id, "conflict"
                    )
                    raise
            except BaseException:
                # Nothing was stored, so the objects must not look stored either.
                snapshot.restore()
                raise

        await self._retrying(work)
        return SavedBatch(items, dict(resolver.dangling))  # type: ignore[arg-type]

    # -- erasure and retention -----------------------------------------------------------

    @observed("purge_patient", resource_type="Patient")
    async def purge_patient(self, patient_id: str, actor: Actor | None = None) -> PurgeReport:
        """Erase a patient's compartment (the patient, what references it, every version).

        Needs ``admin:*``. Irreversible: unlike ``delete`` it leaves no tombstone, only one
        audit row (ids and counts, no content).
        """
        patient_id = checked_id(patient_id, "patient_id")
        acting = self._actor(actor)
        await self.gate.require_admin(acting, "purge", "Patient", patient_id)
        if acting.patient_ids is not None and patient_id not in acting.patient_ids:
            # A patient-scoped administrator erases only its own patients; others look absent.
            await self.gate.record(acting, "purge", "Patient", patient_id, "denied")
            raise ResourceNotFoundError("Patient", patient_id)
        # The database function writes the purge's audit row, in the purge's transaction.
        audit = self.gate.params(acting, "purge")
        async with self._unit(transactional=True, writer=acting) as unit, translating():
            report = await purge_compartment(unit, patient_id, audit)
            await forget_patient(unit, patient_id)
        if not report.total:
            raise ResourceNotFoundError("Patient", patient_id)
        return report

    @observed("apply_audit_retention", resource_type="AuditEvent")
    async def apply_audit_retention(self, max_age: timedelta, actor: Actor | None = None) -> int:
        """Remove audit rows older than ``max_age`` (at least one day); itself audited.

        Needs ``admin:*`` here, and the database role must be allowed to run
        ``hacs_audit.apply_retention`` (the schema owner, or a role it granted it to).
        """
        acting = self._actor(actor)
        await self.gate.require_admin(acting, "audit_retention", "AuditEvent", None)
        if acting.patient_ids is not None:
            # Retention removes every patient's rows: not for an actor limited to some.
            await self.gate.record(acting, "audit_retention", "AuditEvent", None, "denied")
            raise PermissionDeniedError(
                "The actor is limited to its patients; audit retention spans all.",
                actor_id=acting.id,
                permission="admin:*",
            )
        async with self._unit(transactional=True, writer=acting) as unit, translating():
            return await apply_retention(unit, max_age, acting.id)

    # -- reads -----------------------------------------------------------------------------

    @observed("read")
    async def read(
        self, model_cls: type[R] | str, resource_id: str, actor: Actor | None = None
    ) -> R:
        """The current version of a resource; ``ResourceNotFoundError`` if absent or deleted."""
        resource_id = checked_id(resource_id)
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        model = _model(model_cls)
        await self.gate.authorize(acting, "read", mapping.resource_type, resource_id, "read")
        allowed = await self.gate.scope(acting, mapping, "read", resource_id)
        params = self.gate.params(acting, "read")
        params.update(p_rt=mapping.resource_type, p_id=resource_id, p_patients=allowed)
        statements = statements_for(mapping)
        # Out-of-scope rows are never fetched; the caller sees "not found", audited as denied.
        scoped = allowed is not None
        async with self._unit(reader=acting) as unit:
            durable = self._audits_apart(unit)
            if not durable:
                # One round trip: the row and its audit row, written by the same statement.
                statement = statements.read_scoped if scoped else statements.read
                row = await unit.fetchrow(statement, params)
            else:
                # Inside the caller's transaction (or on a read-only replica) the audit row is
                # written on the primary, on a connection of its own, before the data is
                # returned, so a later rollback cannot take it away.
                statement = statements.read_scoped_plain if scoped else statements.read_plain
                row = await unit.fetchrow(statement, params)
                stored = None
                if row is None:
                    stored = await unit.fetchrow(statements.current_version, params)
        if durable:
            if row is not None and row["deleted_at"] is None:
                outcome = "success"
            else:
                outcome = "denied" if stored is not None and not stored["in_scope"] else "not_found"
            await self.gate.record(
                acting,
                "read",
                mapping.resource_type,
                resource_id,
                outcome,
                resource_ids=[resource_id] if outcome == "success" else None,
                patient_ids=[row["patient_ref"]] if outcome == "success" else None,
            )
        if row is None:
            raise ResourceNotFoundError(mapping.resource_type, resource_id)
        if row["deleted_at"] is not None:
            raise ResourceNotFoundError(mapping.resource_type, resource_id, deleted=True)
        (resource,) = await self._models(
            acting, "read", mapping, model, [(resource_id, row["document"])]
        )
        return resource

    @observed("search")
    async def search(
        self,
        model_cls: type[R] | str,
        actor: Actor | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[R]:
        """One page of live resources matching ``filters`` (see ``query.search``)."""
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        model = _model(model_cls)
        await self.gate.authorize(acting, "read", mapping.resource_type, None, "search")
        durable = self._in_caller_transaction()
        try:
            allowed = await self.gate.scope(acting, mapping, "search", None)
            plan = build_search(
                mapping, filters, order_by, limit, cursor, allowed, audited=not durable
            )
        except ResourceValidationError:
            await self.gate.record(acting, "search", mapping.resource_type, None, "invalid")
            raise
        params = {**plan.params, **self.gate.params(acting, "search")}
        async with self._unit(reader=acting) as unit:
            if not durable and self._audits_apart(unit):
                # A read-only replica: the page alone; its audit row goes to the primary below.
                durable = True
                plan = build_search(
                    mapping, filters, order_by, limit, cursor, allowed, audited=False
                )
                params = {**plan.params, **self.gate.params(acting, "search")}
            # Outside a caller's transaction, one statement: the page and its audit row (the
            # filter shape, the count and the ids returned).
            rows = await unit.fetch(plan.statement, params)
        page_rows = rows[: plan.limit]
        if durable:
            await self.gate.record(
                acting,
                "search",
                mapping.resource_type,
                None,
                "success",
                plan.params["p_detail"],
                count=len(page_rows),
                resource_ids=[row["id"] for row in page_rows],
                patient_ids=[row["patient_ref"] for row in page_rows],
            )
        following = next_cursor(plan, rows)
        items = await self._models(
            acting,
            "search",
            mapping,
            model,
            [(row["id"], row["document"]) for row in page_rows],
            page=True,
            next_page=following,
        )
        return Page(items, following, plan.order_by, dict(filters or {}))

    @observed("search_similar")
    async def search_similar(
        self,
        model_cls: type[R] | str,
        vector: Sequence[float] | str,
        actor: Actor | None = None,
        k: int = 10,
        *,
        filters: Mapping[str, Any] | None = None,
        ef_search: int = 100,
    ) -> list[tuple[R, float]]:
        """The ``k`` resources nearest to ``vector`` by cosine distance, with their distances.

        Ordinary ``filters`` (same grammar as ``search``: agent, type, tags, patient...) are
        applied in the same SQL. Per query, an exact scan of the matching rows or the HNSW index
        with an iterative scan is chosen from the filters' selectivity
        (:mod:`hacs_persistence.query.similarity`); the audit detail names the strategy.
        """
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        model = _model(model_cls)
        await self.gate.authorize(acting, "read", mapping.resource_type, None, "search_similar")
        if isinstance(vector, str):
            if self.embedder is None:
                raise InvalidQueryError(
                    "A text query needs an embedder: create_postgres_adapter(embedder=...)."
                )
            vector = list(self.embedder(vector))
        durable = self._in_caller_transaction()
        try:
            allowed = await self.gate.scope(acting, mapping, "search_similar", None)
            plan = build_similarity(
                mapping,
                vector,
                k,
                filters,
                self.vector_dim,
                allowed,
                ef_search=ef_search,
                audited=not durable,
            )
        except ResourceValidationError:
            await self.gate.record(acting, "search_similar", mapping.resource_type, None, "invalid")
            raise
        async with self._unit(reader=acting) as unit:
            if not durable and self._audits_apart(unit):
                # A read-only replica: the rows alone; their audit row goes to the primary.
                durable = True
                plan = replace(plan, audited=False)
            plan.params.update(self.gate.params(acting, "search_similar"))
            rows, strategy = await run_similarity(unit, plan)
        if durable:
            await self.gate.record(
                acting,
                "search_similar",
                mapping.resource_type,
                None,
                "success",
                plan.detail(strategy),
                count=len(rows),
                resource_ids=[row["id"] for row in rows],
                patient_ids=[row["patient_ref"] for row in rows],
            )
        models = await self._models(
            acting,
            "search_similar",
            mapping,
            model,
            [(row["id"], row["document"]) for row in rows],
            page=True,
        )
        return list(zip(models, (float(row["distance"]) for row in rows), strict=True))

    @observed("history")
    async def history(
        self, model_cls: type[R] | str, resource_id: str, actor: Actor | None = None
    ) -> list[HistoryEntry[R]]:
        """Every stored version, newest first (deletes appear as ``operation == "delete"``).

        A patient-scoped actor gets only the versions that belonged to its patients: a resource
        moved between patients shows each patient only its own part of the history.
        """
        resource_id = checked_id(resource_id)
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        model = _model(model_cls)
        await self.gate.authorize(acting, "read", mapping.resource_type, resource_id, "history")
        allowed = await self.gate.scope(acting, mapping, "history", resource_id)
        params = {"p_rt": mapping.resource_type, "p_id": resource_id}
        async with self._unit(reader=acting) as unit:
            # A prepared statement on the driver: no SQLAlchemy row logging of the documents.
            rows = await unit.fetch(_HISTORY, params)
        versions = await self._models(
            acting, "history", mapping, model, [(resource_id, row["document"]) for row in rows]
        )
        entries = [
            HistoryEntry(
                row["version"], row["operation"], row["changed_at"], row["changed_by"], resource
            )
            for row, resource in zip(rows, versions, strict=True)
        ]
        visible = [e for e in entries if _in_patients(mapping, e.resource, allowed)]
        if not visible:
            outcome = "denied" if entries else "not_found"
            await self.gate.record(acting, "history", mapping.resource_type, resource_id, outcome)
            raise ResourceNotFoundError(mapping.resource_type, resource_id)
        # Written on a connection of its own before anything is returned: the row outlives a
        # rollback of the caller's transaction.
        await self.gate.record(
            acting,
            "history",
            mapping.resource_type,
            resource_id,
            "success",
            detail="versions=" + ",".join(str(e.version) for e in visible),
            count=len(visible),
            resource_ids=[resource_id],
            patient_ids=[mapping.scope_value(e.resource) for e in visible],
        )
        return visible

    @observed("read_version")
    async def read_version(
        self, model_cls: type[R] | str, resource_id: str, version: int, actor: Actor | None = None
    ) -> R:
        """Any stored version of a resource (a tombstone reads as the last document).

        A patient-scoped actor reads only versions that belonged to its patients.
        """
        resource_id = checked_id(resource_id)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ResourceValidationError("version must be a positive integer.")
        acting = self._actor(actor)
        mapping = self.mapping(model_cls)
        model = _model(model_cls)
        await self.gate.authorize(
            acting, "read", mapping.resource_type, resource_id, "read_version"
        )
        allowed = await self.gate.scope(acting, mapping, "read_version", resource_id)
        params = {"p_rt": mapping.resource_type, "p_id": resource_id, "p_version": version}
        async with self._unit(reader=acting) as unit:
            row = await unit.fetchrow(_VERSION, params)
        resource = None
        if row is not None:
            (resource,) = await self._models(
                acting, "read_version", mapping, model, [(resource_id, row["document"])]
            )
        detail = f"version={version}"
        if resource is None or not _in_patients(mapping, resource, allowed):
            outcome = "not_found" if resource is None else "denied"
            await self.gate.record(
                acting, "read_version", mapping.resource_type, resource_id, outcome, detail
            )
            raise ResourceNotFoundError(mapping.resource_type, f"{resource_id}/_history/{version}")
        await self.gate.record(
            acting,
            "read_version",
            mapping.resource_type,
            resource_id,
            "success",
            detail,
            count=1,
            resource_ids=[resource_id],
            patient_ids=[mapping.scope_value(resource)],
        )
        return resource


class ActingAdapter:
    """An adapter bound to one actor: the adapter's calls without the actor argument."""

    def __init__(self, adapter: PostgreSQLAdapter, actor: Actor) -> None:
        self.adapter = adapter
        self.actor = actor

    async def save(self, resource: R) -> R:
        """``adapter.save(resource, actor)``."""
        return await self.adapter.save(resource, self.actor)

    async def update(self, resource: R, expected_version: int | None = None) -> R:
        """``adapter.update(resource, actor, expected_version)``."""
        return await self.adapter.update(resource, self.actor, expected_version)

    async def delete(self, model_cls: type[BaseResource] | str, resource_id: str) -> int:
        """``adapter.delete(model_cls, resource_id, actor)``."""
        return await self.adapter.delete(model_cls, resource_id, self.actor)

    async def save_many(
        self, resources: Iterable[R], *, dangling: Literal["error", "null"] = "error"
    ) -> SavedBatch[R]:
        """``adapter.save_many(resources, actor, dangling=...)``."""
        return await self.adapter.save_many(resources, self.actor, dangling=dangling)

    async def read(self, model_cls: type[R] | str, resource_id: str) -> R:
        """``adapter.read(model_cls, resource_id, actor)``."""
        return await self.adapter.read(model_cls, resource_id, self.actor)

    async def search(self, model_cls: type[R] | str, **options: Any) -> Page[R]:
        """``adapter.search(model_cls, actor, filters=..., order_by=..., limit=..., ...)``."""
        return await self.adapter.search(model_cls, self.actor, **options)

    async def search_similar(
        self, model_cls: type[R] | str, vector: Sequence[float] | str, k: int = 10, **options: Any
    ) -> list[tuple[R, float]]:
        """``adapter.search_similar(model_cls, vector, actor, k, filters=..., ef_search=...)``."""
        return await self.adapter.search_similar(model_cls, vector, self.actor, k, **options)

    async def history(self, model_cls: type[R] | str, resource_id: str) -> list[HistoryEntry[R]]:
        """``adapter.history(model_cls, resource_id, actor)``."""
        return await self.adapter.history(model_cls, resource_id, self.actor)

    async def read_version(self, model_cls: type[R] | str, resource_id: str, version: int) -> R:
        """``adapter.read_version(model_cls, resource_id, version, actor)``."""
        return await self.adapter.read_version(model_cls, resource_id, version, self.actor)

    async def purge_patient(self, patient_id: str) -> PurgeReport:
        """``adapter.purge_patient(patient_id, actor)``."""
        return await self.adapter.purge_patient(patient_id, self.actor)

    def transaction(self) -> Any:
        """``adapter.transaction()``: the calls inside commit or roll back together."""
        return self.adapter.transaction()


async def _check_references(
    unit: Unit, mapping: ResourceMapping, resource: BaseResource, allowed: list[str] | None
) -> None:
    """A patient-scoped actor's references must point inside its patients (else: missing)."""
    if allowed is None or not mapping.typed:
        return
    resolver = KeyResolver(patients=allowed)
    await resolver.prepare(unit, [{mapping: [resource]}])
    resolver.values(mapping, resource)


def _in_patients(
    mapping: ResourceMapping, resource: BaseResource, allowed: Sequence[str] | None
) -> bool:
    """Whether a (stored version of a) resource belonged to one of the allowed patients."""
    return allowed is None or mapping.scope_value(resource) in allowed


_HISTORY = (
    select(
        VERSIONS.c.version,
        VERSIONS.c.operation,
        VERSIONS.c.changed_at,
        VERSIONS.c.changed_by,
        cast(VERSIONS.c.document, Text).label("document"),
    )
    .where(
        VERSIONS.c.resource_type == bindparam("p_rt", type_=Text),
        VERSIONS.c.id == bindparam("p_id", type_=Text),
    )
    .order_by(VERSIONS.c.version.desc())
)
_VERSION = select(cast(VERSIONS.c.document, Text).label("document")).where(
    VERSIONS.c.resource_type == bindparam("p_rt", type_=Text),
    VERSIONS.c.id == bindparam("p_id", type_=Text),
    VERSIONS.c.version == bindparam("p_version", type_=Integer),
)


def _model(model_cls: type[R] | str) -> type[R]:
    # A type name gives its registered class, or BaseResource for an unmodelled type.
    return typing_cast("type[R]", model_for(model_cls))
