"""Patient-scoped actors (SMART `patient/*.read`): out-of-scope rows are never fetched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hacs_models import Actor, MemoryBlock, Observation, Organization, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceNotFoundError
from tests.factories import ADMIN, make_observation, make_patient


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[PostgreSQLAdapter, dict[str, str]]]:
    adapter = await create_postgres_adapter(database_url)
    mine, theirs = make_patient(), make_patient()
    obs_mine, obs_theirs = make_observation(mine.id), make_observation(theirs.id)
    dim = adapter.vector_dim or 1536
    memories = [
        MemoryBlock(
            content="mine", subject=f"Patient/{mine.id}", embedding=[1.0] + [0.0] * (dim - 1)
        ),
        MemoryBlock(
            content="theirs", subject=f"Patient/{theirs.id}", embedding=[1.0] + [0.0] * (dim - 1)
        ),
    ]
    await adapter.save_many([mine, theirs, obs_mine, obs_theirs, *memories], ADMIN)
    ids = {
        "mine": mine.id,
        "theirs": theirs.id,
        "obs_mine": obs_mine.id,
        "obs_theirs": obs_theirs.id,
    }
    try:
        yield adapter, ids
    finally:
        await adapter.close()


def scoped(patient_id: str, *permissions: str) -> Actor:
    return Actor(
        name="app",
        role="patient",
        permissions=list(permissions) or ["*:read"],
        patient_ids=[patient_id],
    )


async def test_read_only_reaches_the_actors_patients(
    world: tuple[PostgreSQLAdapter, dict[str, str]], db: asyncpg.Connection
) -> None:
    adapter, ids = world
    actor = scoped(ids["mine"])
    assert (await adapter.read(Patient, ids["mine"], actor)).id == ids["mine"]
    assert (await adapter.read(Observation, ids["obs_mine"], actor)).id == ids["obs_mine"]
    with pytest.raises(ResourceNotFoundError):
        await adapter.read(Patient, ids["theirs"], actor)
    with pytest.raises(ResourceNotFoundError):
        await adapter.read(Observation, ids["obs_theirs"], actor)
    outcomes = await db.fetch(
        "SELECT resource_id, outcome FROM hacs_audit.audit_events WHERE actor_id = $1 "
        "AND action = 'read' ORDER BY id",
        actor.id,
    )
    assert [(r["resource_id"], r["outcome"]) for r in outcomes] == [
        (ids["mine"], "success"),
        (ids["obs_mine"], "success"),
        (ids["theirs"], "denied"),
        (ids["obs_theirs"], "denied"),
    ]


async def test_search_history_and_versions_are_scoped(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    actor = scoped(ids["mine"])
    assert [o.id for o in await adapter.search(Observation, actor)] == [ids["obs_mine"]]
    assert [p.id for p in await adapter.search(Patient, actor)] == [ids["mine"]]
    assert len(await adapter.history(Observation, ids["obs_mine"], actor)) == 1
    with pytest.raises(ResourceNotFoundError):
        await adapter.history(Observation, ids["obs_theirs"], actor)
    with pytest.raises(ResourceNotFoundError):
        await adapter.read_version(Observation, ids["obs_theirs"], 1, actor)


async def test_vector_search_is_scoped(world: tuple[PostgreSQLAdapter, dict[str, str]]) -> None:
    adapter, ids = world
    dim = adapter.vector_dim or 1536
    hits = await adapter.search_similar(
        MemoryBlock, [1.0] + [0.0] * (dim - 1), scoped(ids["mine"]), k=10
    )
    assert [m.content for m, _ in hits] == ["mine"]


async def test_types_outside_patient_compartments_are_refused(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    org = await adapter.save(Organization(name="Acme Health"), ADMIN)
    with pytest.raises(PermissionDeniedError, match="patient compartment"):
        await adapter.read(Organization, org.id, scoped(ids["mine"]))


async def test_scoped_writes_stay_inside_the_compartment(
    world: tuple[PostgreSQLAdapter, dict[str, str]],
) -> None:
    adapter, ids = world
    writer = scoped(ids["mine"], "observation:write", "observation:delete")
    assert (await adapter.save(make_observation(ids["mine"]), writer)).version == 1
    with pytest.raises(PermissionDeniedError, match="outside"):
        await adapter.save(make_observation(ids["theirs"]), writer)
    with pytest.raises(PermissionDeniedError, match="outside"):
        await adapter.save_many([make_observation(ids["theirs"])], writer)
    with pytest.raises(ResourceNotFoundError):
        await adapter.delete(Observation, ids["obs_theirs"], writer)
    assert (await adapter.read(Observation, ids["obs_theirs"], ADMIN)).version == 1
