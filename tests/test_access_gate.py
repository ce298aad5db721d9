"""Every public entry point passes the access gate: permission, patient scope, audit row.

The tables below name every public coroutine of the adapter and every database tool; a test
fails when one is added without a case here. For each: an actor without the permission is
refused and the refusal is audited; an actor scoped to patient A never reaches patient B's
rows (whatever the call, B's ids never come back and B's rows are not changed); a permitted
call writes its audit row.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

import hacs_tools.domains.database as tools
from hacs_auth import acting_as, get_auth_manager, set_auth_manager
from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_models import Actor, MemoryBlock, Observation, Patient
from hacs_models.fhir import to_fhir
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import HacsPersistenceError, PermissionDeniedError
from hacs_tools import configure_tools
from tests.factories import ADMIN, make_observation, make_patient


@dataclass
class World:
    adapter: PostgreSQLAdapter
    url: str
    a: str  # patient A (the scoped actor's)
    b: str  # patient B (someone else's)
    obs_b: str
    memory_b: str

    def vector(self) -> list[float]:
        return [1.0] + [0.0] * ((self.adapter.vector_dim or 1536) - 1)

    async def observation_b(self) -> Observation:
        return await self.adapter.read(Observation, self.obs_b, ADMIN)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    adapter = await create_postgres_adapter(database_url)
    a, b = make_patient(), make_patient()
    obs_b = make_observation(b.id)
    memory = MemoryBlock(
        content="b's note",
        subject=f"Patient/{b.id}",
        embedding=[1.0] + [0.0] * ((adapter.vector_dim or 1536) - 1),
    )
    await adapter.save_many([a, b, obs_b, memory], ADMIN)
    try:
        with configure_tools(database_url):  # the tools' database, as an application sets it
            yield World(adapter, database_url, a.id, b.id, obs_b.id, memory.id)
    finally:
        await adapter.close()


def _hijack(world: World, observation: Observation) -> Observation:
    """B's observation re-pointed at A (what a scoped attacker sends)."""
    return observation.model_copy(update={"subject": make_observation(world.a).subject})


Call = Callable[[World, Actor], Awaitable[Any]]


async def _update(w: World, who: Actor) -> Any:
    return await w.adapter.update(_hijack(w, await w.observation_b()), who)


async def _save_stored(w: World, who: Actor) -> Any:
    return await w.adapter.save(_hijack(w, await w.observation_b()), who)


async def _save_many(w: World, who: Actor) -> Any:
    return await w.adapter.save_many([_hijack(w, await w.observation_b())], who)


# name -> (call on B's data, the audit action it writes)
ADAPTER: dict[str, tuple[Call, str]] = {
    "save": (_save_stored, "update"),
    "update": (_update, "update"),
    "save_many": (_save_many, "save_many"),
    "delete": (lambda w, who: w.adapter.delete(Observation, w.obs_b, who), "delete"),
    "read": (lambda w, who: w.adapter.read(Observation, w.obs_b, who), "read"),
    "search": (
        lambda w, who: w.adapter.search(Observation, who, filters={"patient_id": w.b}),
        "search",
    ),
    "search_similar": (
        lambda w, who: w.adapter.search_similar(MemoryBlock, w.vector(), who, k=5),
        "search_similar",
    ),
    "history": (lambda w, who: w.adapter.history(Observation, w.obs_b, who), "history"),
    "read_version": (
        lambda w, who: w.adapter.read_version(Observation, w.obs_b, 1, who),
        "read_version",
    ),
    "purge_patient": (lambda w, who: w.adapter.purge_patient(w.b, who), "purge"),
    "apply_audit_retention": (
        lambda w, who: w.adapter.apply_audit_retention(timedelta(days=3650), who),
        "audit_retention",
    ),
}
# Not data access: lifecycle and the transaction/binding helpers (their calls are the above).
NOT_ENTRY_POINTS = {"close", "transaction", "acting_as"}


async def _tool_save(w: World) -> Any:
    return await tools.asave_resource(_hijack(w, await w.observation_b()))


async def _tool_update(w: World) -> Any:
    return await tools.aupdate_resource(_hijack(w, await w.observation_b()), expected_version=1)


TOOLS: dict[str, tuple[Callable[[World], Awaitable[Any]], str]] = {
    "asave_resource": (_tool_save, "update"),
    "aupdate_resource": (_tool_update, "update"),
    "adelete_resource": (
        lambda w: tools.adelete_resource(w.obs_b, "Observation"),
        "delete",
    ),
    "aread_resource": (
        lambda w: tools.aread_resource(w.obs_b, "Observation"),
        "read",
    ),
    "asearch_resources": (
        lambda w: tools.asearch_resources("Observation", {"patient_id": w.b}),
        "search",
    ),
    "asearch_similar_resources": (
        lambda w: tools.asearch_similar_resources("MemoryBlock", w.vector(), k=5),
        "search_similar",
    ),
    "aresource_history": (
        lambda w: tools.aresource_history(w.obs_b, "Observation"),
        "history",
    ),
}


def _nobody() -> Actor:
    return Actor(name="nobody", role="guest", permissions=[])


def _scoped(world: World) -> Actor:
    return Actor(
        name="scoped",
        role="patient",
        permissions=["admin:*"],
        patient_ids=[world.a],
    )


async def _audit(db: asyncpg.Connection, actor: Actor) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT action, outcome, resource_id, detail FROM hacs_audit.audit_events "
            "WHERE actor_id = $1 ORDER BY id",
            actor.id,
        )
    )


def test_every_public_entry_point_has_a_case() -> None:
    public = {
        name
        for name, member in inspect.getmembers(PostgreSQLAdapter)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }
    assert public - NOT_ENTRY_POINTS == set(ADAPTER)
    tool_coroutines = {name for name in tools.__all__ if name.startswith("a")}
    assert tool_coroutines == set(TOOLS)


@pytest.mark.parametrize("name", sorted(ADAPTER))
async def test_adapter_refuses_an_actor_without_permission(
    world: World, db: asyncpg.Connection, name: str
) -> None:
    call, action = ADAPTER[name]
    actor = _nobody()
    with pytest.raises(PermissionDeniedError):
        await call(world, actor)
    assert [(r["action"], r["outcome"]) for r in await _audit(db, actor)] == [(action, "denied")]
    assert (await world.observation_b()).version == 1


@pytest.mark.parametrize("name", sorted(ADAPTER))
async def test_adapter_keeps_a_scoped_actor_inside_its_patients(
    world: World, db: asyncpg.Connection, name: str
) -> None:
    call, _action = ADAPTER[name]
    actor = _scoped(world)
    try:
        result = await call(world, actor)
    except HacsPersistenceError:
        result = None
    # Nothing of B's came back (a page echoes the filters it was asked: look at its items)...
    returned = repr(getattr(result, "items", result))
    assert world.b not in returned and world.obs_b not in returned
    assert world.memory_b not in returned
    # ...nothing of B's changed, and the attempt is on record.
    observation = await world.observation_b()
    assert observation.version == 1 and world.b in repr(observation.subject)
    assert await _audit(db, actor), f"{name} left no audit row"


@pytest.mark.parametrize("name", sorted(ADAPTER))
async def test_adapter_audits_a_permitted_call(
    world: World, db: asyncpg.Connection, name: str
) -> None:
    call, action = ADAPTER[name]
    actor = Actor(name="root", role="admin", permissions=["admin:*"])
    # e.g. retention may lack its database permission; the row must be there all the same
    with contextlib.suppress(HacsPersistenceError):
        await call(world, actor)
    # A batch's rows are audited per resource, as the change each one was.
    expected = "update" if name == "save_many" else action
    assert expected in [r["action"] for r in await _audit(db, actor)]


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_tools_refuse_and_scope_through_the_gate(
    world: World, db: asyncpg.Connection, name: str
) -> None:
    call, action = TOOLS[name]
    nobody = _nobody()
    with acting_as(nobody):
        refused = await call(world)
    assert not refused.success and refused.error == "permission_denied"
    assert (action, "denied") in [(r["action"], r["outcome"]) for r in await _audit(db, nobody)]
    scoped = _scoped(world)
    with acting_as(scoped):
        result = await call(world)
    # The result may echo the id the caller sent, never B's data.
    assert world.b not in repr(result.data)
    assert (await world.observation_b()).version == 1
    assert await _audit(db, scoped)


async def test_acting_as_binds_one_actor(world: World) -> None:
    clinic = world.adapter.acting_as(_scoped(world))
    assert [p.id for p in await clinic.search(Patient)] == [world.a]
    with acting_as(ADMIN):
        bound = world.adapter.acting_as()
    assert bound.actor is ADMIN  # resolved when bound, not at each call


def _token(actor_permissions: list[str], patient_ids: list[str] | None = None) -> str:
    set_auth_manager(None)  # the secret of this test's environment
    return get_auth_manager().create_access_token(
        "cli-user", "physician", actor_permissions, patient_ids=patient_ids
    )


async def test_cli_import_and_export_act_as_the_token_actor(
    world: World, db: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hacs import` / `hacs export` with HACS_TOKEN: refused, scoped and audited as that actor."""
    bundle = tmp_path / "one.json"
    bundle.write_text(json.dumps(to_fhir(make_patient(id="patient-cli-import"))))

    def cli(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--database-url", world.url])

    monkeypatch.setenv("HACS_TOKEN", _token([]))
    refused = await asyncio.to_thread(cli, "export", "--type", "Observation")
    assert refused.exit_code == ExitCode.FAILED and world.obs_b not in refused.stdout
    refused_import = await asyncio.to_thread(cli, "import", str(bundle))
    assert refused_import.exit_code == ExitCode.FAILED
    outcomes = await db.fetch(
        "SELECT action, outcome FROM hacs_audit.audit_events WHERE actor_id = 'cli-user'"
    )
    assert ("export", "denied") in [(r["action"], r["outcome"]) for r in outcomes]
    assert ("import", "denied") in [(r["action"], r["outcome"]) for r in outcomes]
    assert (
        await db.fetchval("SELECT count(*) FROM hacs_core.patients WHERE id = 'patient-cli-import'")
        == 0
    )

    monkeypatch.setenv("HACS_TOKEN", _token(["*:read"], patient_ids=[world.a]))
    scoped = await asyncio.to_thread(cli, "export", "--type", "Observation")
    assert scoped.exit_code == ExitCode.OK
    assert world.obs_b not in scoped.stdout and world.b not in scoped.stdout

    monkeypatch.setenv("HACS_TOKEN", "not-a-token")
    bad = await asyncio.to_thread(cli, "export", "--type", "Observation")
    assert bad.exit_code == ExitCode.USAGE
