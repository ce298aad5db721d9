"""The set-based update of ``save_many`` writes what the single-row update writes, or nothing.

``save_many`` of stored resources runs one statement per mapping and chunk
(``statements.batch_update_for``) instead of the single-row update per resource. These tests
hold it to the single-row path: the same typed (or JSONB) row, version row and audit row for
the same change, column by column; a stale version or another patient's row anywhere in the
batch refuses the whole batch and leaves no trace of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from hacs_models import Actor, BaseResource, HumanName, MemoryBlock, Observation, Patient
from hacs_persistence.adapters.factory import create_postgres_adapter
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import VersionConflictError
from hacs_persistence.migrations import upgrade
from hacs_persistence.storage.codec import codec_for
from hacs_persistence.storage.mapping import mapping_for
from tests.conftest import db_connect
from tests.factories import ADMIN, make_observation, make_patient

REQUEST = "request-bulk-update"
PURPOSE = "TREAT"
# What differs between two writes of the same change: when, and which resource.
STAMPS = {"id", "created_at", "updated_at", "changed_at", "deleted_at", "occurred_at"}
# Names that test the array literal of an array column: quotes, separators, braces, NULL.
TRICKY_GIVEN = ['Ann "Nan"', "a,b", "back\\slash", "{brace}", "NULL", "", "Émile"]


@pytest.fixture(params=["granular", "jsonb"])
async def adapter(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[PostgreSQLAdapter]:
    created = await create_postgres_adapter(
        database_url, kind=request.param, request_id=REQUEST, purpose_of_use=PURPOSE
    )
    try:
        yield created
    finally:
        await created.close()


def _table_of(adapter: PostgreSQLAdapter, resource: BaseResource) -> str:
    table = adapter.mapping(type(resource)).table
    return f"{table.schema}.{table.name}"


def _document(value: Any) -> dict[str, Any]:
    document = dict(json.loads(value))
    for name in ("id", "created_at", "updated_at"):
        document.pop(name, None)
    return document


def _comparable(row: asyncpg.Record | None) -> dict[str, Any]:
    assert row is not None
    values = {k: v for k, v in dict(row).items() if k not in STAMPS and k != "resource_id"}
    if "document" in values:
        values["document"] = _document(values["document"])
    return values


async def _written(
    db: asyncpg.Connection, adapter: PostgreSQLAdapter, resource: BaseResource
) -> dict[str, Any]:
    """Everything the resource's last write left: its row, its version rows and audit rows."""
    table = _table_of(adapter, resource)
    row = await db.fetchrow(f"SELECT * FROM {table} WHERE id = $1", resource.id)
    versions = await db.fetch(
        "SELECT * FROM hacs_core.resource_versions WHERE id = $1 ORDER BY version", resource.id
    )
    audits = await db.fetch(
        "SELECT * FROM hacs_audit.audit_events WHERE resource_id = $1 AND action = 'update' "
        "ORDER BY id",
        resource.id,
    )
    assert row is not None
    # The stored document carries the row's stamp (version and timestamps).
    stamped = json.loads(versions[-1]["document"])
    assert stamped["version"] == row["version"] == resource.version
    assert versions[-1]["changed_at"] == row["updated_at"] == resource.updated_at
    return {
        "row": _comparable(row),
        "deleted": row["deleted_at"] is not None,
        "versions": [_comparable(v) for v in versions],
        "audit": [_comparable(a) for a in audits],
    }


def _changed(resource: Patient) -> None:
    resource.name = [HumanName(family="Brontë", given=TRICKY_GIVEN)]
    resource.full_name = "Ann Brontë"
    resource.active = not resource.active
    resource.birth_date = None


async def test_a_batch_update_writes_what_the_single_row_update_writes(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    singles = [make_patient(full_name=f"Single {i}") for i in range(4)]
    batch = [s.model_copy(update={"id": f"{s.id}-b"}, deep=True) for s in singles]
    await adapter.save_many([*singles, *batch], ADMIN)
    # A deleted resource updated at its version is restored, by both paths.
    for deleted in (singles[1], batch[1]):
        deleted.version = await adapter.delete(Patient, deleted.id, ADMIN)
    for resource in [*singles, *batch]:
        _changed(resource)

    for resource in singles:
        await adapter.update(resource, ADMIN)
    await adapter.save_many(batch, ADMIN)

    for single, batched in zip(singles, batch, strict=True):
        assert batched.version == single.version
        expected = await _written(db, adapter, single)
        assert await _written(db, adapter, batched) == expected
        assert not expected["deleted"]
        assert expected["audit"] and expected["audit"][0]["outcome"] == "success"
        assert expected["audit"][0]["request_id"] == REQUEST
    if adapter.mapping(Patient).typed:
        row = await db.fetchrow(
            "SELECT given_names FROM hacs_core.patients WHERE id = $1", batch[0].id
        )
        assert row is not None and row["given_names"] == TRICKY_GIVEN
    # The batch's audit rows follow its order.
    ids = await db.fetch(
        "SELECT resource_id FROM hacs_audit.audit_events WHERE resource_id = ANY($1) "
        "AND action = 'update' ORDER BY id",
        [b.id for b in batch],
    )
    assert [r["resource_id"] for r in ids] == [b.id for b in batch]


async def _trace(db: asyncpg.Connection, ids: list[str]) -> tuple[Any, ...]:
    """What the batch could have left: row versions, version rows, update audit rows."""
    versions = await db.fetch(
        "SELECT id, max(version) AS v, count(*) AS n FROM hacs_core.resource_versions "
        "WHERE id = ANY($1) GROUP BY id ORDER BY id",
        ids,
    )
    audits = await db.fetchval(
        "SELECT count(*) FROM hacs_audit.audit_events WHERE resource_id = ANY($1) "
        "AND action = 'update' AND outcome = 'success'",
        ids,
    )
    return tuple(map(tuple, versions)), audits


async def test_a_stale_version_in_the_middle_refuses_the_whole_batch(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patients = [make_patient(full_name=f"Stale {i}") for i in range(5)]
    await adapter.save_many(patients, ADMIN)
    moved_on = patients[2].model_copy(deep=True)
    moved_on.gender = "female"
    await adapter.update(moved_on, ADMIN)  # stored: version 2; patients[2] still says 1
    ids = [p.id for p in patients]
    before = await _trace(db, ids)
    for patient in patients:
        patient.active = False

    with pytest.raises(VersionConflictError) as raised:
        await adapter.save_many(patients, ADMIN)
    assert (raised.value.resource_id, raised.value.expected, raised.value.actual) == (
        patients[2].id,
        1,
        2,
    )
    assert await _trace(db, ids) == before
    assert [p.version for p in patients] == [1] * 5
    conflicts = await db.fetchval(
        "SELECT count(*) FROM hacs_audit.audit_events WHERE resource_id = $1 "
        "AND action = 'save_many' AND outcome = 'conflict'",
        patients[2].id,
    )
    assert conflicts == 1


async def test_a_missing_row_in_a_batch_is_a_conflict_without_a_stored_version(
    adapter: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patients = [make_patient(full_name=f"Gone {i}") for i in range(3)]
    await adapter.save_many(patients[:2], ADMIN)
    patients[2].__dict__["version"] = 1  # claims to be stored, is not
    ids = [p.id for p in patients]
    before = await _trace(db, ids)
    with pytest.raises(VersionConflictError) as raised:
        await adapter.save_many(patients, ADMIN)
    assert (raised.value.resource_id, raised.value.actual) == (patients[2].id, None)
    assert await _trace(db, ids) == before


async def test_a_scoped_batch_with_another_patients_row_is_refused_and_writes_nothing(
    database_url: str, db: asyncpg.Connection
) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        mine, theirs = make_patient(), make_patient()
        obs_mine = make_observation(mine.id)
        obs_theirs = make_observation(theirs.id)
        await adapter.save_many([mine, theirs, obs_mine, obs_theirs], ADMIN)
        actor = Actor(
            name="scoped-writer",
            role="patient",
            permissions=["observation:read", "observation:write"],
            patient_ids=[mine.id],
        )
        # Their observation re-pointed at my patient: what an attacker scoped to me would send.
        hijacked = make_observation(mine.id).model_copy(update={"id": obs_theirs.id, "version": 1})
        obs_mine.status = "amended"
        ids = [obs_mine.id, obs_theirs.id]
        before = await _trace(db, ids)
        with pytest.raises(VersionConflictError) as raised:
            await adapter.save_many([obs_mine, hijacked], actor)
        # Told what a missing row gives: no stored version of another patient's row.
        assert (raised.value.resource_id, raised.value.actual) == (obs_theirs.id, None)
        assert await _trace(db, ids) == before
        assert obs_mine.version == 1
        stored = await adapter.read(Observation, obs_theirs.id, ADMIN)
        assert stored.version == 1 and stored.subject == obs_theirs.subject
        denied = await db.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = $1 "
            "AND action = 'save_many' AND outcome = 'denied' AND resource_id = $2",
            actor.id,
            obs_theirs.id,
        )
        assert denied == 1
    finally:
        await adapter.close()


def test_the_batch_binds_one_array_per_write_parameter_of_the_codec() -> None:
    """The per-resource parameters are the codec's write parameters, not a second list."""
    from hacs_persistence.storage.statements import batch_update_for

    mapping = mapping_for(Patient)
    codec = codec_for(mapping)
    params = codec.write_params(make_patient(), {"a_actor_id": "x"})
    assert set(params) - {"a_actor_id", "p_rt"} == set(codec.row_params)
    assert batch_update_for(mapping).row_params == (*codec.row_params, "p_expected")


DIM = 8


async def test_a_batch_update_of_vector_and_array_columns(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACS_VECTOR_DIM", str(DIM))
    await upgrade(empty_database_url)
    monkeypatch.delenv("HACS_VECTOR_DIM")
    adapter = await create_postgres_adapter(empty_database_url)
    agent = Actor(name="agent", role="agent", permissions=["memoryblock:write"])
    try:
        blocks = [
            MemoryBlock(content=f"m{i}", embedding=[0.5] * DIM, tags=["a", 'b"c']) for i in range(3)
        ]
        await adapter.save_many(blocks, agent)
        for i, block in enumerate(blocks):
            block.embedding = [float(i)] + [0.25] * (DIM - 1)
            block.tags = ["x,y", "{z}"]
        blocks[1].embedding = None
        await adapter.save_many(blocks, agent)
        table = mapping_for(MemoryBlock).table
        conn = await db_connect(empty_database_url)
        try:
            rows = await conn.fetch(
                f"SELECT id, version, embedding::text AS e, tags FROM {table.schema}.{table.name}"
            )
        finally:
            await conn.close()
        stored = {r["id"]: r for r in rows}
        for i, block in enumerate(blocks):
            row = stored[block.id]
            assert row["version"] == block.version == 2
            assert row["tags"] == ["x,y", "{z}"]
            expected = None if i == 1 else "[" + ",".join([str(i)] + ["0.25"] * (DIM - 1)) + "]"
            assert row["e"] == expected
    finally:
        await adapter.close()
