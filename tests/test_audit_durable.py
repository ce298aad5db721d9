"""An audit row for data that was returned survives a rollback of the caller's transaction.

Regression tests: reads inside ``adapter.transaction()`` used to write their audit rows in that
transaction, so a failed write later in the block rolled back the record of what was read.
Also: the audit row of a search says what was asked (field names and operators, never values).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_models import Actor, MemoryBlock, Observation, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import ResourceNotFoundError
from tests.docs_blocks import _fenced as fenced
from tests.factories import ADMIN, make_observation, make_patient

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


class Boom(Exception):
    """The caller's failure that rolls its transaction back."""


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[PostgreSQLAdapter, dict[str, str]]]:
    adapter = await create_postgres_adapter(database_url)
    patient = make_patient()
    observation = make_observation(patient.id)
    dim = adapter.vector_dim or 1536
    memory = MemoryBlock(
        content="note", subject=f"Patient/{patient.id}", embedding=[1.0] + [0.0] * (dim - 1)
    )
    await adapter.save_many([patient, observation, memory], ADMIN)
    try:
        yield adapter, {"patient": patient.id, "obs": observation.id, "memory": memory.id}
    finally:
        await adapter.close()


def _reader() -> Actor:
    return Actor(name="reader", role="physician", permissions=["*:read"])


Call = Callable[[PostgreSQLAdapter, dict[str, str], Actor], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "read": lambda a, ids, who: a.read(Patient, ids["patient"], who),
    "search": lambda a, ids, who: a.search(
        Observation, who, filters={"patient_id": ids["patient"]}
    ),
    "search_similar": lambda a, ids, who: a.search_similar(
        MemoryBlock, [1.0] + [0.0] * ((a.vector_dim or 1536) - 1), who, k=3
    ),
    "history": lambda a, ids, who: a.history(Observation, ids["obs"], who),
    "read_version": lambda a, ids, who: a.read_version(Observation, ids["obs"], 1, who),
}


@pytest.mark.parametrize("action", sorted(CALLS))
async def test_read_audit_survives_the_callers_rollback(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection, action: str
) -> None:
    adapter, ids = world
    reader = _reader()
    returned: list[Any] = []
    with pytest.raises(Boom):
        async with adapter.transaction():
            returned.append(await CALLS[action](adapter, ids, reader))
            raise Boom
    assert returned and returned[0]  # data left the library...
    rows = await db.fetch(
        "SELECT outcome, result_count, resource_id, detail FROM hacs_audit.audit_events "
        "WHERE actor_id = $1 AND action = $2",
        reader.id,
        action,
    )
    # ...so its audit row is there, once, after the rollback.
    assert [r["outcome"] for r in rows] == ["success"]


@pytest.mark.parametrize("in_transaction", [False, True])
async def test_search_audit_records_the_shape_never_the_values(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection, in_transaction: bool
) -> None:
    adapter, _ids = world
    reader = _reader()
    filters = {"family_name__prefix": "Zed", "gender": "female"}
    if in_transaction:
        async with adapter.transaction():
            await adapter.search(Patient, reader, filters=filters, order_by="-birth_date")
    else:
        await adapter.search(Patient, reader, filters=filters, order_by="-birth_date")
    detail = await db.fetchval(
        "SELECT detail FROM hacs_audit.audit_events WHERE actor_id = $1 AND action = 'search'",
        reader.id,
    )
    assert "family_name:prefix" in detail and "gender:eq" in detail
    assert "order_by=-birth_date" in detail
    assert "Zed" not in detail and "female" not in detail


@pytest.mark.parametrize("in_transaction", [False, True])
@pytest.mark.parametrize("action", sorted(CALLS))
async def test_read_audit_lists_what_it_returned(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
    db: asyncpg.Connection,
    action: str,
    in_transaction: bool,
) -> None:
    adapter, ids = world
    reader = _reader()
    if in_transaction:
        async with adapter.transaction():
            await CALLS[action](adapter, ids, reader)
    else:
        await CALLS[action](adapter, ids, reader)
    row = await db.fetchrow(
        "SELECT resource_ids, patient_ids, result_count FROM hacs_audit.audit_events "
        "WHERE actor_id = $1 AND action = $2",
        reader.id,
        action,
    )
    expected = {
        "read": ids["patient"],
        "search": ids["obs"],
        "search_similar": ids["memory"],
        "history": ids["obs"],
        "read_version": ids["obs"],
    }[action]
    assert row["resource_ids"] == [expected]
    assert row["patient_ids"] == [ids["patient"]]


async def test_the_auditors_query_of_the_operations_page(
    database_url: str, db: asyncpg.Connection
) -> None:
    """docs/operations.md "Access model": who saw patient X's record, run as written."""
    blocks = [
        body
        for lang, body, _ in fenced(OPERATIONS.read_text())
        if lang == "postgresql" and "ANY (patient_ids)" in body
    ]
    assert len(blocks) == 1
    adapter = await create_postgres_adapter(database_url)
    try:
        patient = Patient(id="patient-704ac73d", full_name="Ana Auditee")
        await adapter.save(patient, ADMIN)
        await adapter.save(make_observation(patient.id), ADMIN)
        other = make_patient()
        await adapter.save(other, ADMIN)
        reader = _reader()
        await adapter.read(Patient, patient.id, reader)
        await adapter.search(Observation, reader, filters={"patient_id": patient.id})
        await adapter.read(Patient, other.id, reader)  # someone else's record: not listed
        with pytest.raises(ResourceNotFoundError):
            await adapter.read(Patient, "patient-absent", reader)
    finally:
        await adapter.close()
    rows = await db.fetch(blocks[0])
    seen = [(r["actor_id"], r["action"], r["resource_type"]) for r in rows]
    assert (reader.id, "read", "Patient") in seen
    assert (reader.id, "search", "Observation") in seen
    assert len([s for s in seen if s[0] == reader.id]) == 2
