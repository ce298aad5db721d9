"""Patient scope on the *stored* row of every write, and on each version of the history.

Regression tests for the critical finding of the access review: an actor scoped to patient A
with ``observation:write`` could update an Observation of patient B it knew the id of (by
``update``, ``save`` of a stored resource, ``save_many`` and the ``update_resource`` tool),
moving it into A's compartment, and then read B's original versions through ``history`` and
``read_version``; a version conflict on B's row told it the stored version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hacs_auth import acting_as
from hacs_models import Actor, Encounter, Observation
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import (
    ReferentialIntegrityError,
    ResourceNotFoundError,
    VersionConflictError,
)
from hacs_tools import configure_tools
from hacs_tools.domains.database import aupdate_resource
from tests.factories import ADMIN, make_observation, make_patient


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[PostgreSQLAdapter, dict[str, str]]]:
    adapter = await create_postgres_adapter(database_url)
    mine, theirs = make_patient(), make_patient()
    obs_theirs = make_observation(theirs.id)
    await adapter.save_many([mine, theirs, obs_theirs], ADMIN)
    try:
        yield adapter, {"mine": mine.id, "theirs": theirs.id, "obs_theirs": obs_theirs.id}
    finally:
        await adapter.close()


def writer(patient_id: str) -> Actor:
    return Actor(
        name="scoped-writer",
        role="patient",
        permissions=["observation:read", "observation:write", "observation:delete"],
        patient_ids=[patient_id],
    )


def hijacked(ids: dict[str, str], version: int = 1) -> Observation:
    """B's observation, re-pointed at A: what an attacker scoped to A would send."""
    observation = make_observation(ids["mine"])
    return observation.model_copy(update={"id": ids["obs_theirs"], "version": version})


async def _unchanged(adapter: PostgreSQLAdapter, ids: dict[str, str]) -> None:
    stored = await adapter.read(Observation, ids["obs_theirs"], ADMIN)
    assert stored.version == 1
    assert stored.subject is not None
    assert stored.subject.reference == f"Patient/{ids['theirs']}"
    assert len(await adapter.history(Observation, ids["obs_theirs"], ADMIN)) == 1


async def _denied_rows(db: asyncpg.Connection, actor: Actor, action: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = $1 AND action = $2 "
            "AND outcome = 'denied'",
            actor.id,
            action,
        )
    )


async def test_update_of_another_patients_row_is_not_found(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    adapter, ids = world
    actor = writer(ids["mine"])
    with pytest.raises(ResourceNotFoundError) as caught:
        await adapter.update(hijacked(ids), actor)
    # Exactly what a missing id gives: same type and message, nothing about the version.
    with pytest.raises(ResourceNotFoundError) as missing:
        await adapter.update(hijacked(ids).model_copy(update={"id": "no-such-obs"}), actor)
    assert str(caught.value) == str(missing.value).replace("no-such-obs", ids["obs_theirs"])
    await _unchanged(adapter, ids)
    assert await _denied_rows(db, actor, "update") == 1


async def test_a_wrong_version_on_another_patients_row_tells_nothing(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    with pytest.raises(ResourceNotFoundError) as caught:
        await adapter.update(hijacked(ids, version=7), writer(ids["mine"]))
    assert not isinstance(caught.value, VersionConflictError)
    assert "version" not in str(caught.value)
    await _unchanged(adapter, ids)


async def test_save_of_a_stored_resource_is_scoped(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    with pytest.raises(ResourceNotFoundError):
        await adapter.save(hijacked(ids), writer(ids["mine"]))
    await _unchanged(adapter, ids)


async def test_save_many_update_is_scoped(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    adapter, ids = world
    actor = writer(ids["mine"])
    with pytest.raises(VersionConflictError) as caught:
        await adapter.save_many([hijacked(ids)], actor)
    assert caught.value.actual is None  # the stored version is not revealed
    await _unchanged(adapter, ids)
    assert await _denied_rows(db, actor, "save_many") == 1


async def test_a_taken_id_does_not_reveal_the_version_to_a_scoped_actor(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    fresh = make_observation(ids["mine"]).model_copy(update={"id": ids["obs_theirs"]})
    fresh.__pydantic_fields_set__.add("id")
    with pytest.raises(VersionConflictError) as caught:
        await adapter.save(fresh, writer(ids["mine"]))
    assert caught.value.actual is None
    with pytest.raises(VersionConflictError) as in_batch:
        await adapter.save_many([fresh], writer(ids["mine"]))
    assert in_batch.value.actual is None
    await _unchanged(adapter, ids)


async def test_update_resource_tool_is_scoped(
    world: tuple[PostgreSQLAdapter, dict[str, str]], database_url: str
) -> None:
    adapter, ids = world
    with configure_tools(database_url), acting_as(writer(ids["mine"])):
        result = await aupdate_resource(hijacked(ids), expected_version=1)
    assert not result.success
    assert "version" not in (result.message or "")
    await _unchanged(adapter, ids)


async def test_delete_of_another_patients_row_is_not_found(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    adapter, ids = world
    actor = writer(ids["mine"])
    with pytest.raises(ResourceNotFoundError) as caught:
        await adapter.delete(Observation, ids["obs_theirs"], actor)
    assert not caught.value.deleted
    await _unchanged(adapter, ids)
    assert await _denied_rows(db, actor, "delete") == 1


async def test_history_shows_each_patient_only_its_own_versions(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    adapter, ids = world
    # An authorised move (by an admin) of B's observation into A's compartment.
    moved = await adapter.read(Observation, ids["obs_theirs"], ADMIN)
    moved = moved.model_copy(update={"subject": make_observation(ids["mine"]).subject})
    await adapter.update(moved, ADMIN)
    reader_a = writer(ids["mine"])
    history = await adapter.history(Observation, ids["obs_theirs"], reader_a)
    assert [entry.version for entry in history] == [2]
    assert (await adapter.read_version(Observation, ids["obs_theirs"], 2, reader_a)).version == 2
    with pytest.raises(ResourceNotFoundError):
        await adapter.read_version(Observation, ids["obs_theirs"], 1, reader_a)
    reader_b = writer(ids["theirs"])
    assert [e.version for e in await adapter.history(Observation, ids["obs_theirs"], reader_b)] == [
        1
    ]
    with pytest.raises(ResourceNotFoundError):
        await adapter.read_version(Observation, ids["obs_theirs"], 2, reader_b)
    assert await _denied_rows(db, reader_a, "read_version") == 1


async def test_a_scoped_actor_cannot_link_to_another_patients_rows(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    """A reference to B's encounter fails as one to no encounter at all (no existence oracle)."""
    adapter, ids = world
    visit = Encounter(
        status="finished", subject=f"Patient/{ids['theirs']}", encounter_class={"code": "AMB"}
    )
    await adapter.save(visit, ADMIN)
    actor = writer(ids["mine"])
    messages = []
    for target in (visit.id, "encounter-nowhere"):
        for save in (adapter.save, lambda r, a: adapter.save_many([r], a)):
            with pytest.raises(ReferentialIntegrityError) as caught:
                await save(make_observation(ids["mine"], encounter=f"Encounter/{target}"), actor)
            messages.append(str(caught.value).replace(target, "<id>"))
    assert len(set(messages)) == 1, messages
    # An import (dangling="null") keeps the reference in the document, with no foreign key.
    linked = make_observation(ids["mine"], encounter=f"Encounter/{visit.id}")
    saved = await adapter.save_many([linked], actor, dangling="null")
    assert saved.dangling_references == {f"encounters:{visit.id}": 1}
    stored = await db.fetchval(
        "SELECT encounter_id FROM hacs_core.observations WHERE id = $1", linked.id
    )
    assert stored is None
