"""The bulk path of ``save_many``: COPY for new resources, one set-based statement for updates.

New resources are streamed with ``COPY ... FROM STDIN (binary)`` into the versions table, their
typed (or JSONB) table and the audit table, all inside the caller's single transaction, with the
foreign keys deferred to commit. Records are generated lazily, so memory does not grow with the
batch beyond the input itself. Updates are set-based: one statement per mapping and chunk takes
the batch as arrays and changes, versions and audits every row (the single-row update's version
check and patient scope), returning what each changed row is stamped with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Select, Table, Text, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from hacs_auth import Actor
from hacs_models import BaseResource, new_resource_id
from hacs_persistence.db.executor import compiled
from hacs_persistence.db.unit import Unit
from hacs_persistence.errors import (
    ReferentialIntegrityError,
    ResourceValidationError,
    VersionConflictError,
)
from hacs_persistence.limits import BULK_UPDATE_CHUNK, MAPPING_CACHE_SIZE
from hacs_persistence.schema import TYPED_TABLES, AuditEventTable, ResourceVersionTable
from hacs_persistence.schema.vectors import vector_columns
from hacs_persistence.storage.codec import codec_for, stamp, stamp_new
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import (
    batch_update_for,
    stamp_columns,
    statements_for,
    stored_in_scope,
)

__all__ = ["KeyResolver", "OutOfScopeError", "bulk_insert", "bulk_update", "group_by_mapping"]


class OutOfScopeError(VersionConflictError):
    """An update in a batch targets a stored row outside the actor's patients.

    Raised to ``save_many`` only, which audits it as denied and re-raises what a missing row
    gives (a plain ``VersionConflictError`` with no stored version).
    """


VERSIONS: Table = ResourceVersionTable.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEventTable.__table__  # type: ignore[assignment]
_TYPE_OF_TABLE = {cls.__tablename__: name for name, cls in TYPED_TABLES.items()}


def _qualified(table: Table) -> tuple[str, str]:
    return table.name, table.schema or "public"


@cache  # one entry per table: bounded by the schema
def _ids_present(table: Table, by_type: bool) -> Select[Any]:
    """Which of the ids in ``p_ids`` a table holds (for one resource type in the JSONB table)."""
    statement = select(table.c.id).where(table.c.id == any_(bindparam("p_ids", type_=ARRAY(Text))))
    if by_type:
        statement = statement.where(table.c.resource_type == bindparam("p_rt", type_=Text))
    return statement


async def _existing_ids(unit: Unit, mapping: ResourceMapping, ids: list[str]) -> set[str]:
    statement = _ids_present(mapping.table, not mapping.typed)
    rows = await unit.fetch(statement, {"p_ids": ids, "p_rt": mapping.resource_type})
    return {row["id"] for row in rows}


async def _assign_free_ids(
    unit: Unit, mapping: ResourceMapping, resources: list[BaseResource], scoped: bool
) -> None:
    """Explicit ids that exist are conflicts; generated ids that collide are drawn again."""
    for _attempt in range(5):
        taken = await _existing_ids(unit, mapping, [r.id for r in resources])
        seen: set[str] = set()
        redrawn = False
        for resource in resources:
            clash = resource.id in taken or resource.id in seen
            if clash and "id" in resource.model_fields_set:
                # A patient-scoped actor is never told a stored row's version.
                stored = None if resource.id in seen or scoped else 1
                raise VersionConflictError(mapping.resource_type, resource.id, None, stored)
            if clash:
                resource.__dict__["id"] = new_resource_id(mapping.resource_type)
                redrawn = True
            seen.add(resource.id)
        if not redrawn:
            return
    raise ResourceValidationError(
        f"Could not find free ids for new {mapping.resource_type} resources; pass explicit ids."
    )


@cache  # one entry per table: bounded by the schema
def _ids_visible(table: Table) -> Select[Any]:
    """Which of the ids in ``p_ids`` a referenced table holds in the actor's patients."""
    scope = table.c.id if table.name == "patients" else table.c.get("patient_id")
    statement = select(table.c.id).where(table.c.id == any_(bindparam("p_ids", type_=ARRAY(Text))))
    if scope is not None:
        patients = bindparam("p_patients", type_=ARRAY(Text))
        statement = statement.where(or_(patients.is_(None), scope == any_(patients)))
    return statement


class KeyResolver:
    """Key column values of a batch; optionally NULLs references whose target does not exist.

    With ``dangling_to_null`` (imports), a reference to a patient or encounter that is neither in
    the batch nor in the database keeps its place in the document but gets a NULL foreign key,
    and is counted, instead of failing the batch.

    With ``patients`` (a patient-scoped actor), a target outside those patients counts as
    missing: the actor can neither link to another patient's rows nor learn that they exist
    (without ``dangling_to_null`` it gets the error a missing target gives).
    """

    def __init__(
        self,
        dangling_to_null: bool = False,
        patients: Sequence[str] | None = None,
        pending: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.dangling_to_null = dangling_to_null
        self.patients = list(patients) if patients is not None else None
        # table fullname -> ids that a later save_many of the same transaction writes (a batch
        # of a streamed import): references to them are kept, the deferred key checks at commit.
        self.pending: Mapping[str, Collection[str]] = pending or {}
        self.known: dict[str, set[str]] = {}
        self.dangling: dict[str, int] = defaultdict(int)

    @staticmethod
    def _references(mapping: ResourceMapping) -> list[tuple[str, Table]]:
        found = []
        for column in mapping.key_columns:
            for fk in column.foreign_keys:
                found.append((column.key, fk.column.table))
        return found

    async def prepare(
        self, unit: Unit, groups: Sequence[dict[ResourceMapping, list[BaseResource]]]
    ) -> None:
        """Learn which referenced ids exist (in the batch or the database, in scope)."""
        if not self.dangling_to_null and self.patients is None:
            return
        in_batch: dict[str, set[str]] = defaultdict(set)
        wanted: dict[str, set[str]] = defaultdict(set)
        tables: dict[str, Table] = {}
        for group in groups:
            for mapping, resources in group.items():
                if mapping.typed:
                    in_batch[mapping.table.fullname].update(r.id for r in resources)
                for key, target in self._references(mapping):
                    tables[target.fullname] = target
                    for resource in resources:
                        value = mapping.key_value(resource, key)
                        if value is not None:
                            wanted[target.fullname].add(value)
        for fullname, ids in wanted.items():
            rows = await unit.fetch(
                _ids_visible(tables[fullname]), {"p_ids": list(ids), "p_patients": self.patients}
            )
            self.known[fullname] = {r["id"] for r in rows} | in_batch.get(fullname, set())

    def values(self, mapping: ResourceMapping, resource: BaseResource) -> dict[str, Any]:
        """The key columns of ``resource``, dangling references set to NULL when asked."""
        values = mapping.key_values(resource)
        if not self.dangling_to_null and self.patients is None:
            return values
        for key, target in self._references(mapping):
            value = values.get(key)
            if (
                value is not None
                and value not in self.known.get(target.fullname, set())
                and value not in self.pending.get(target.fullname, ())
            ):
                if not self.dangling_to_null:
                    # Worded as errors.py words a missing target: the id only as attribute.
                    target_type = _TYPE_OF_TABLE.get(target.name, target.name)
                    raise ReferentialIntegrityError(
                        f"A {target_type} reference (column {key}) points at a resource that "
                        "does not exist; save it first or fix the reference (see the error's "
                        "reference).",
                        reference=f"{target_type}/{value}",
                    )
                values[key] = None
                self.dangling[f"{target.name}:{value}"] += 1
        return values


async def bulk_insert(
    unit: Unit,
    groups: dict[ResourceMapping, list[BaseResource]],
    actor: Actor,
    audit: dict[str, Any],
    keys: KeyResolver,
    patients: Sequence[str] | None = None,
) -> None:
    """Insert new resources of several types with COPY, in the unit's transaction.

    ``patients``: the patient-scoped actor's patients (the caller checked every new row).
    """
    now: datetime = await unit.driver.fetchval("SELECT now()")
    for mapping, resources in groups.items():
        codec = codec_for(mapping)
        await _assign_free_ids(unit, mapping, resources, patients is not None)
        stamp_new(resources, now)
        if vector_columns_of(mapping):
            # asyncpg has no binary COPY codec for pgvector; these tables take the statement path
            # (the batch's FHIR JSON is written for all its types at once: p_fhir None).
            prepared = compiled(statements_for(mapping).insert)
            for resource in resources:
                params = codec.write_params(resource, audit, keys.values(mapping, resource))
                params.update(p_fhir=None, p_fhir_patient=None)
                await unit.driver.fetchrow(prepared.sql, *prepared.arguments(params))
            continue
        versions = codec.version_records(resources, now, actor.id)
        await _copy(unit, VERSIONS, codec.versions.columns, versions)
        rows = codec.row_records(resources, now, actor.id, keys.values)
        await _copy(unit, mapping.table, codec.rows.columns, rows)
        await _copy(unit, AUDIT, codec.audit.columns, codec.audit_records(resources, audit))


def vector_columns_of(mapping: ResourceMapping) -> bool:
    """Whether the mapping's table has a pgvector column."""
    return any(c.table is mapping.table for c in vector_columns(mapping.table.metadata))


async def _copy(unit: Unit, table: Table, columns: Sequence[str], records: Iterator[Any]) -> None:
    name, schema = _qualified(table)
    await unit.driver.copy_records_to_table(
        name, schema_name=schema, columns=list(columns), records=records
    )


async def bulk_update(
    unit: Unit,
    groups: dict[ResourceMapping, list[BaseResource]],
    audit: dict[str, Any],
    keys: KeyResolver,
    patients: Sequence[str] | None = None,
) -> None:
    """Update stored resources set-based: one statement per mapping and chunk of the batch.

    The statement (``batch_update_for``) has the single-row update's version check and patient
    scope for every row, and writes the same version and audit rows. ``patients``: a
    patient-scoped actor's patients; a row outside them raises ``OutOfScopeError``. On any
    refused row the caller's transaction rolls the whole batch back.
    """
    scope = list(patients) if patients is not None else None
    for mapping, resources in groups.items():
        if len({r.id for r in resources}) != len(resources):
            raise ResourceValidationError(
                f"The same {mapping.resource_type} appears twice in one save_many."
            )
        batch = batch_update_for(mapping)
        prepared = compiled(batch.statement)
        codec = codec_for(mapping)
        fixed = {**audit, "p_rt": mapping.resource_type, "p_patients": scope}
        for start in range(0, len(resources), BULK_UPDATE_CHUNK):
            chunk = resources[start : start + BULK_UPDATE_CHUNK]
            rows = []
            for resource in chunk:
                row = codec.row_values(resource, keys.values(mapping, resource))
                row["p_expected"] = resource.version
                rows.append(row)
            params = {**fixed, **batch.arrays(rows)}
            written = await unit.driver.fetch(prepared.sql, *prepared.arguments(params))
            stamped = {row["id"]: row for row in written}
            if len(stamped) != len(chunk):
                await _refuse(unit, mapping, chunk, stamped, scope)
            for resource in chunk:
                stamp(resource, stamped[resource.id])


async def _refuse(
    unit: Unit,
    mapping: ResourceMapping,
    chunk: list[BaseResource],
    written: Mapping[str, Any],
    scope: list[str] | None,
) -> None:
    """Raise for the first resource of ``chunk`` the batch statement did not change.

    Outside the actor's patients: ``OutOfScopeError``; else a ``VersionConflictError`` with
    the stored version (None when there is no row).
    """
    refused = [r for r in chunk if r.id not in written]
    rows = await unit.fetch(
        _stored_envelopes(mapping),
        {"p_rt": mapping.resource_type, "p_ids": [r.id for r in refused], "p_patients": scope},
    )
    stored = {row["id"]: row for row in rows}
    resource = refused[0]
    row = stored.get(resource.id)
    if row is not None and not row["in_scope"]:
        raise OutOfScopeError(mapping.resource_type, resource.id, resource.version, None)
    raise VersionConflictError(
        mapping.resource_type,
        resource.id,
        resource.version,
        None if row is None else row["version"],
    )


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def _stored_envelopes(mapping: ResourceMapping) -> Select[Any]:
    """Version and timestamps of the rows whose ids are in ``p_ids``, and if in ``p_patients``."""
    table = mapping.table
    return select(*stamp_columns(table), stored_in_scope(mapping).label("in_scope")).where(
        table.c.resource_type == bindparam("p_rt", type_=Text),
        table.c.id == any_(bindparam("p_ids", type_=ARRAY(Text))),
    )


def group_by_mapping(
    resources: Sequence[BaseResource], mapping_of: Any
) -> tuple[dict[ResourceMapping, list[BaseResource]], dict[ResourceMapping, list[BaseResource]]]:
    """Split resources into (new, stored) groups per storage mapping, keeping their order."""
    new: dict[ResourceMapping, list[BaseResource]] = defaultdict(list)
    stored: dict[ResourceMapping, list[BaseResource]] = defaultdict(list)
    for resource in resources:
        target = new if resource.version is None else stored
        target[mapping_of(resource)].append(resource)
    return dict(new), dict(stored)
