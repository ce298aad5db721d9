"""The row codec: values land in their columns by name, and a failed write leaves the model alone.

The first tests rebuild the statements and the codecs from reversed column tuples (envelope,
version and audit columns) and check, column by column in SQL, every row that save, update and
save_many (COPY for new resources, one set-based statement for stored ones) write, and that reads
load the same model back. Had a value been placed by position, reversing a tuple would put
``created_by`` into ``created_at`` (or fail the COPY).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from hacs_models import Actor, BaseResource, Observation, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.db.executor import compiled
from hacs_persistence.errors import (
    ReferentialIntegrityError,
    StoredDocumentError,
    VersionConflictError,
)
from hacs_persistence.storage import columns
from hacs_persistence.storage.codec import Envelopes, codec_for, stamp
from hacs_persistence.storage.mapping import ResourceMapping, mapping_for
from hacs_persistence.storage.statements import batch_update_for, statements_for
from tests.factories import make_observation, make_patient

WRITER = Actor(
    name="codec-writer", role="system", permissions=["patient:write", "observation:write"]
)
REQUEST = "request-codec-1"
PURPOSE = "TREAT"
TUPLES = ("ENVELOPE_COLUMNS", "VERSION_COLUMNS", "AUDIT_COLUMNS")


def _rebuild() -> None:
    statements_for.cache_clear()
    batch_update_for.cache_clear()
    codec_for.cache_clear()


@pytest.fixture
def reversed_columns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every column tuple reversed, and the statements and codecs rebuilt from them."""
    for name in TUPLES:
        monkeypatch.setattr(columns, name, tuple(reversed(getattr(columns, name))))
    _rebuild()
    yield
    monkeypatch.undo()
    _rebuild()


@pytest.fixture(params=["granular", "jsonb"])
async def adapter(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Any]:
    created = await create_postgres_adapter(
        database_url, kind=request.param, request_id=REQUEST, purpose_of_use=PURPOSE
    )
    try:
        yield created
    finally:
        await created.close()


def _plain(value: Any) -> Any:
    """A value as asyncpg returns it (lists for arrays, Decimal for numerics)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    return value


async def _check_row(
    db: asyncpg.Connection, mapping: ResourceMapping, resource: BaseResource, created_at: datetime
) -> None:
    """The resource's row holds every value in its own column."""
    table = mapping.table
    row = await db.fetchrow(f"SELECT * FROM {table.schema}.{table.name} WHERE id = $1", resource.id)
    assert row is not None
    expected: dict[str, Any] = {
        "id": resource.id,
        "resource_type": mapping.resource_type,
        "version": resource.version,
        "created_at": created_at,
        "updated_at": resource.updated_at,
        "created_by": WRITER.id,
        "updated_by": WRITER.id,
        "deleted_at": None,
    }
    assert resource.created_at == created_at
    for column in mapping.key_columns:
        expected[column.name] = _plain(mapping.key_values(resource)[column.key])
    if not mapping.typed:
        assert type(resource).model_validate_json(row["document"]) == resource
    for name, value in expected.items():
        stored = row[name]
        if isinstance(stored, Decimal) and value is not None:
            value = Decimal(str(value))
        assert stored == value, f"{table.name}.{name}: {stored!r} != {value!r}"


async def _check_version(db: asyncpg.Connection, resource: BaseResource, operation: str) -> None:
    """The resource's newest version row: every column, and the stamp in its document."""
    row = await db.fetchrow(
        "SELECT * FROM hacs_core.resource_versions WHERE id = $1 AND version = $2",
        resource.id,
        resource.version,
    )
    assert row is not None
    expected = {
        "resource_type": resource.resource_type,
        "id": resource.id,
        "version": resource.version,
        "operation": operation,
        "changed_at": resource.updated_at,
        "changed_by": WRITER.id,
    }
    for name, value in expected.items():
        assert row[name] == value, f"resource_versions.{name}: {row[name]!r} != {value!r}"
    assert type(resource).model_validate_json(row["document"]) == resource


async def _check_audit(db: asyncpg.Connection, resource: BaseResource, action: str) -> None:
    """The write's audit row: who, what, why, each in its own column."""
    rows = await db.fetch(
        "SELECT * FROM hacs_audit.audit_events WHERE resource_id = $1 AND action = $2",
        resource.id,
        action,
    )
    assert len(rows) == 1
    expected = {
        "actor_id": WRITER.id,
        "actor_name": WRITER.name,
        "actor_role": str(WRITER.role.value),
        "action": action,
        "resource_type": resource.resource_type,
        "resource_id": resource.id,
        "outcome": "success",
        "result_count": None,
        "request_id": REQUEST,
        "purpose_of_use": PURPOSE,
    }
    for name, value in expected.items():
        assert rows[0][name] == value, f"audit_events.{name}: {rows[0][name]!r} != {value!r}"


async def _check_stored(
    db: asyncpg.Connection,
    adapter: PostgreSQLAdapter,
    resource: BaseResource,
    operation: str,
    created_at: datetime,
) -> None:
    mapping = adapter.mapping(type(resource))
    await _check_row(db, mapping, resource, created_at)
    await _check_version(db, resource, operation)
    await _check_audit(db, resource, operation)
    # And back: the stored document loads into the same model, by read and by search.
    loaded = await adapter.read(type(resource), resource.id, WRITER)
    assert loaded == resource
    page = await adapter.search(type(resource), WRITER, filters={"id": resource.id})
    assert page.items == [resource]


def test_the_reversed_tuples_reach_the_statements_and_the_records(
    reversed_columns: None,
) -> None:
    """Guards the tests below: the rebuilt SQL and COPY layouts follow the reversed tuples."""
    mapping = mapping_for(Patient)
    statements = statements_for(mapping)
    sql = compiled(statements.insert).sql
    assert "(updated_by, created_by, updated_at, created_at, version, resource_type, id, " in sql
    assert "(purpose_of_use, request_id, result_count, outcome, resource_id," in sql
    sql = compiled(statements.update).sql
    assert "(changed_by, changed_at, document, operation, version, id, resource_type)" in sql
    codec = codec_for(mapping)
    assert codec.rows.columns[:2] == ("updated_by", "created_by")
    assert codec.versions.columns == (
        "changed_by",
        "changed_at",
        "operation",
        "version",
        "resource_type",
        "id",
        "document",
    )


async def test_save_and_update_put_every_value_in_its_column(
    reversed_columns: None, adapter: Any, db: asyncpg.Connection
) -> None:
    patient = await adapter.save(make_patient(), WRITER)
    assert patient.version == 1
    await _check_stored(db, adapter, patient, "create", patient.created_at)
    created = patient.created_at
    observation = await adapter.save(make_observation(patient.id), WRITER)
    await _check_stored(db, adapter, observation, "create", observation.created_at)

    patient.full_name = "Carla Fernandez"
    await adapter.update(patient, WRITER)
    assert patient.version == 2 and patient.created_at == created
    await _check_stored(db, adapter, patient, "update", created)


async def test_save_many_puts_every_value_in_its_column_by_copy_and_by_statement(
    reversed_columns: None, adapter: Any, db: asyncpg.Connection
) -> None:
    patients = [make_patient(full_name=f"Bulk {i}") for i in range(3)]
    observations = [make_observation(p.id, 110 + i) for i, p in enumerate(patients)]
    # New resources: COPY into the versions, typed (or JSONB) and audit tables.
    await adapter.save_many([*observations, *patients], WRITER)
    for resource in [*patients, *observations]:
        assert resource.version == 1
        await _check_stored(db, adapter, resource, "create", resource.created_at)

    # Stored resources: the set-based update statement.
    created = {r.id: r.created_at for r in [*patients, *observations]}
    for patient in patients:
        patient.gender = "female"
    for observation in observations:
        observation.status = "amended"
    await adapter.save_many([*patients, *observations], WRITER)
    for resource in [*patients, *observations]:
        assert resource.version == 2
        await _check_stored(db, adapter, resource, "update", created[resource.id])


# -- a failed write leaves the model as it was ------------------------------------------------


def _envelope(resource: BaseResource) -> tuple[Any, ...]:
    return (
        resource.id,
        resource.version,
        resource.created_at,
        resource.updated_at,
        set(resource.model_fields_set),
    )


def _generated_clash(resource: BaseResource, stored_id: str) -> BaseResource:
    """``resource`` with a generated id that happens to be taken (the save draws another)."""
    resource.__dict__["id"] = stored_id
    resource.__pydantic_fields_set__.discard("id")
    return resource


async def test_a_failed_save_leaves_the_model_as_it_was(database_url: str) -> None:
    adapter = await create_postgres_adapter(database_url, kind="granular")
    try:
        patient = await adapter.save(make_patient(), WRITER)
        stored = await adapter.save(make_observation(patient.id), WRITER)
        # Its generated id is taken (drawn again), then its patient does not exist.
        orphan = _generated_clash(make_observation("patient-missing"), stored.id)
        before = _envelope(orphan)
        with pytest.raises(ReferentialIntegrityError):
            await adapter.save(orphan, WRITER)
        assert _envelope(orphan) == before

        stale = await adapter.read(Patient, patient.id, WRITER)
        patient.full_name = "Moved On"
        await adapter.update(patient, WRITER)
        before = _envelope(stale)
        with pytest.raises(VersionConflictError):
            await adapter.update(stale, WRITER)
        assert _envelope(stale) == before
    finally:
        await adapter.close()


async def test_a_failed_save_many_leaves_every_model_as_it_was(database_url: str) -> None:
    adapter = await create_postgres_adapter(database_url, kind="granular")
    try:
        stored = await adapter.save(make_patient(), WRITER)
        kept = await adapter.save(make_patient(full_name="Kept"), WRITER)
        clash = _generated_clash(make_patient(), stored.id)
        fine = make_patient(full_name="Fine")
        orphan = make_observation("patient-missing")  # fails the batch at commit
        kept.gender = "other"  # an update in the same batch
        batch: list[BaseResource] = [clash, fine, kept, orphan]
        before = [_envelope(r) for r in batch]
        with pytest.raises(ReferentialIntegrityError):
            await adapter.save_many(batch, WRITER)
        assert [_envelope(r) for r in batch] == before
        assert (await adapter.read(Patient, kept.id, WRITER)).version == 1
    finally:
        await adapter.close()


def test_envelopes_restore_on_an_exception_only() -> None:
    patient = make_patient()
    before = _envelope(patient)
    with pytest.raises(RuntimeError), Envelopes([patient]):
        stamp(patient, {"version": 3, "created_at": datetime.now(), "updated_at": None})
        patient.__dict__["id"] = "patient-redrawn"
        raise RuntimeError("the write failed")
    assert _envelope(patient) == before
    with Envelopes([patient]):
        stamp(patient, {"version": 1, "created_at": None, "updated_at": None})
    assert patient.version == 1 and "version" in patient.model_fields_set


def test_load_validates_into_the_model_and_hides_the_values() -> None:
    codec = codec_for(mapping_for(Patient))
    patient = make_patient()
    assert codec.load(patient.model_dump_json(), Patient) == patient
    assert codec.load(patient.model_dump(mode="json"), Patient) == patient
    with pytest.raises(StoredDocumentError) as caught:
        codec.load('{"gender": "Maria Garcia"}', Patient, position=4, page=True)
    assert caught.value.position == 4 and "document #4 of this page" in str(caught.value)
    assert "Maria" not in str(caught.value)
    assert codec.load(make_observation("p1").model_dump_json(), Observation).subject
