"""Repositories: data written through the adapter, read back with each finder on an AsyncSession."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from hacs_models import (
    Actor,
    Condition,
    Encounter,
    Observation,
    Patient,
    Period,
)
from hacs_persistence import (
    InvalidQueryError,
    PostgreSQLAdapter,
    SchemaNotMigratedError,
    create_postgres_adapter,
)
from hacs_persistence.query.repositories import (
    ConditionRepository,
    EncounterRepository,
    Keyset,
    ObservationRepository,
    PatientRepository,
    ReadOnlyViolationError,
    Repository,
    repository_for,
    session_scope,
)
from hacs_persistence.schema.clinical import ConditionTable, GoalTable
from hacs_persistence.schema.core import EncounterTable, ObservationTable, PatientTable
from tests.factories import LOINC, condition, observation

ACTOR = Actor(name="t", role="system", permissions=["admin:*"])
# Repositories are actor-bound: this one may read everything (tests/test_repositories_access.py
# covers refusals, patient scopes and audit rows).
READER = Actor(name="repository-reader", role="system", permissions=["*:read"])
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class World:
    """What the seed stored: resources by role, the ids of deleted ones."""

    patients: dict[str, Patient]
    observations: dict[str, Observation]
    conditions: dict[str, Condition]
    encounters: dict[str, Encounter]
    deleted: set[str]


async def seed(adapter: PostgreSQLAdapter) -> World:
    p = {
        "ana": Patient(full_name="Ana Fernandes", gender="female", birth_date=date(1980, 3, 15)),
        "bob": Patient(full_name="Bob Smith", gender="male", birth_date=date(1975, 7, 1)),
        "carla": Patient(full_name="Carla Mendes", gender="female", birth_date=date(1990, 12, 31)),
        "dan": Patient(full_name="Dan Fernhill", gender="male", birth_date=date(2001, 1, 1)),
        "eve": Patient(full_name="Eve Fernandes", gender="female", birth_date=date(1985, 5, 5)),
        "zed": Patient(full_name="Zed Nobirth", gender="unknown"),
    }
    ana, bob = p["ana"], p["bob"]
    e = {
        "ana_1": Encounter(
            status="finished",
            subject=f"Patient/{ana.id}",
            period=Period(start=T0, end=T0 + timedelta(hours=1)),
        ),
        "ana_2": Encounter(
            status="finished",
            subject=f"Patient/{ana.id}",
            period=Period(start=T0 + timedelta(days=30)),
        ),
        "ana_gone": Encounter(
            status="cancelled",
            subject=f"Patient/{ana.id}",
            period=Period(start=T0 + timedelta(days=40)),
        ),
        "bob_1": Encounter(
            status="finished",
            subject=f"Patient/{bob.id}",
            period=Period(start=T0 + timedelta(days=5)),
        ),
    }
    d = timedelta(days=1)
    o = {
        # Stored out of chronological order on purpose.
        "ana_sys_mid": observation(ana, SYSTOLIC, 128, T0 + 10 * d, encounter=e["ana_1"]),
        "ana_sys_new": observation(ana, SYSTOLIC, 141, T0 + 20 * d, interpretation="H"),
        "ana_sys_old": observation(ana, SYSTOLIC, 120, T0, encounter=e["ana_1"]),
        "ana_sys_error": observation(ana, SYSTOLIC, 300, T0 + 25 * d, status="entered-in-error"),
        "ana_sys_gone": observation(ana, SYSTOLIC, 99, T0 + 26 * d),
        "ana_dia_new": observation(ana, DIASTOLIC, 85, T0 + 10 * d),
        "ana_dia_old": observation(ana, DIASTOLIC, 80, T0 + 1 * d),
        "ana_local_new": observation(ana, SYSTOLIC, 118, T0 + 2 * d, system="urn:local"),
        "ana_local_old": observation(ana, SYSTOLIC, 117, T0 + 1 * d, system="urn:local"),
        "bob_sys": observation(bob, SYSTOLIC, 150, T0 + 3 * d, encounter=e["bob_1"]),
    }
    c = {
        "ana_htn": condition(ana, "38341003", "active", T0 - 300 * d),
        "ana_asthma": condition(ana, "195967001", "resolved", T0 - 900 * d),
        "ana_relapse": condition(ana, "35489007", "relapse", T0 - 100 * d),
        "ana_refuted": condition(ana, "73211009", "active", T0 - 50 * d, verification="refuted"),
        "ana_gone": condition(ana, "44054006", "active", T0 - 10 * d),
        "bob_dm": condition(bob, "44054006", "active", T0 - 20 * d),
    }
    await adapter.save_many([*p.values(), *e.values(), *o.values(), *c.values()], ACTOR)
    await adapter.delete(Patient, p["eve"].id, ACTOR)
    await adapter.delete(Observation, o["ana_sys_gone"].id, ACTOR)
    await adapter.delete(Condition, c["ana_gone"].id, ACTOR)
    await adapter.delete(Encounter, e["ana_gone"].id, ACTOR)
    deleted = {p["eve"].id, o["ana_sys_gone"].id, c["ana_gone"].id, e["ana_gone"].id}
    return World(p, o, c, e, deleted)


@pytest.fixture
def adapter(granular: PostgreSQLAdapter) -> PostgreSQLAdapter:
    """Every test here is about the typed-table adapter (tests/conftest.py opens it)."""
    return granular


@pytest.fixture
async def world(adapter: PostgreSQLAdapter) -> World:
    return await seed(adapter)


@pytest.fixture
async def session(database_url: str, world: World) -> AsyncIterator[AsyncSession]:
    async with session_scope(database_url) as session:
        yield session


@contextmanager
def captured_sql(session: AsyncSession) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) the session sends while the block runs."""
    statements: list[tuple[str, Any]] = []
    engine = session.bind.sync_engine  # type: ignore[union-attr]

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def ids(rows: Any) -> list[str]:
    return [row.id for row in rows]


# -- the generic base ------------------------------------------------------------------------


async def test_get_returns_live_rows_only_unless_deleted_are_asked_for(
    session: AsyncSession, world: World
) -> None:
    patients = PatientRepository(session, READER)
    ana = await patients.get(world.patients["ana"].id)
    assert ana is not None
    assert (ana.full_name, ana.family_name, ana.gender) == ("Ana Fernandes", "Fernandes", "female")
    assert ana.birth_date == date(1980, 3, 15)
    eve_id = world.patients["eve"].id
    assert await patients.get(eve_id) is None
    eve = await patients.get(eve_id, include_deleted=True)
    assert eve is not None and eve.deleted_at is not None
    assert await patients.get("patient-missing") is None


async def test_exists(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    assert await patients.exists(world.patients["ana"].id) is True
    assert await patients.exists(world.patients["eve"].id) is False
    assert await patients.exists(world.patients["eve"].id, include_deleted=True) is True
    assert await patients.exists("patient-missing") is False
    # A row of another table with that id is not this table's.
    assert await patients.exists(world.observations["bob_sys"].id) is False


async def test_document_is_the_current_version(
    adapter: PostgreSQLAdapter, database_url: str, world: World
) -> None:
    ana = world.patients["ana"]
    ana.full_name = "Ana Fernandes Costa"
    ana.name = []
    await adapter.save(ana, ACTOR)  # version 2
    async with session_scope(database_url) as session:
        patients = PatientRepository(session, READER)
        document = await patients.document(ana.id)
        assert document is not None
        assert (document["id"], document["version"]) == (ana.id, 2)
        assert document["full_name"] == "Ana Fernandes Costa"
        model = patients.to_model(document)
        assert isinstance(model, Patient)
        assert (model.id, model.version, model.full_name) == (ana.id, 2, "Ana Fernandes Costa")
        assert await patients.get_model(ana.id) == model
        # A deleted resource has no current document, except its tombstone when asked for.
        eve_id = world.patients["eve"].id
        assert await patients.document(eve_id) is None
        assert await patients.get_model(eve_id) is None
        tombstone = await patients.document(eve_id, include_deleted=True)
        assert tombstone is not None
        assert (tombstone["full_name"], tombstone["version"]) == ("Eve Fernandes", 2)
        assert await patients.document("patient-missing") is None


async def test_to_model_uses_the_documents_type(session: AsyncSession, world: World) -> None:
    observations = ObservationRepository(session, READER)
    document = await observations.document(world.observations["bob_sys"].id)
    assert document is not None
    model = observations.to_model(document)
    assert isinstance(model, Observation)
    assert model.value_quantity is not None and model.value_quantity.value == 150
    with pytest.raises(ValueError, match="No model class"):
        observations.to_model({**document, "resource_type": "NoSuchType"})


async def test_count_runs_count_star_and_loads_no_rows(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    with captured_sql(session) as statements:
        assert await patients.count() == 5
        assert await patients.count(PatientTable.gender == "female") == 2  # eve is deleted
        assert await patients.count(include_deleted=True) == 6
    assert len(statements) == 3
    for sql, _params in statements:
        assert "count(*)" in sql.lower()
        assert "full_name" not in sql  # no row columns selected
    assert len(session.identity_map) == 0


async def test_keyset_pages_cover_every_row_once_in_order(database_url: str) -> None:
    births = [date(1970 + i % 7, 1 + i % 3, 1) if i % 5 else None for i in range(23)]
    stored = [
        Patient(id=f"pg-{i:03d}", full_name=f"Person {i}", birth_date=b)
        for i, b in enumerate(births)
    ]
    adapter = await create_postgres_adapter(database_url)
    try:
        await adapter.save_many(stored, ACTOR)
        await adapter.delete(Patient, "pg-007", ACTOR)
    finally:
        await adapter.close()
    live = [p for p in stored if p.id != "pg-007"]

    def expected(descending: bool) -> list[str]:
        dated = sorted((p for p in live if p.birth_date), key=lambda p: p.id)
        dated.sort(key=lambda p: p.birth_date, reverse=descending)  # type: ignore[arg-type,return-value]
        undated = sorted((p for p in live if p.birth_date is None), key=lambda p: p.id)
        return [p.id for p in dated + undated]

    async with session_scope(database_url) as session:
        patients = PatientRepository(session, READER)
        orders: list[tuple[Any, bool, list[str]]] = [
            ("birth_date", False, expected(False)),
            ("birth_date", True, expected(True)),
            ("-birth_date", False, expected(True)),
            (PatientTable.birth_date, True, expected(True)),
            (None, False, sorted(p.id for p in live)),
            ("-id", False, sorted((p.id for p in live), reverse=True)),
        ]
        for order_by, descending, want in orders:
            seen: list[str] = []
            after: Any = None
            pages = 0
            while True:
                page = await patients.list(
                    order_by=order_by, descending=descending, limit=4, after=after
                )
                assert 1 <= len(page) <= 4
                seen += ids(page)
                pages += 1
                if page.next_after is None:
                    break
                after = page.next_after
            assert seen == want, (order_by, descending)
            assert pages == -(-len(live) // 4)

        # The last row of a page works as `after` too, and conditions combine with paging.
        first = await patients.list(
            PatientTable.birth_date.is_not(None), order_by="birth_date", limit=3
        )
        by_row = await patients.list(
            PatientTable.birth_date.is_not(None), order_by="birth_date", limit=3, after=first[-1]
        )
        assert ids(by_row) == expected(False)[3:6]
        assert first.next_after == Keyset("birth_date", first[-1].birth_date, first[-1].id)
        with pytest.raises(InvalidQueryError, match="ordered by 'birth_date'"):
            await patients.list(order_by="id", after=first.next_after)


async def test_list_rejects_unsortable_columns_and_bad_limits(
    session: AsyncSession, world: World
) -> None:
    patients = PatientRepository(session, READER)
    for bad in ("given_names", "no_such_column", EncounterTable.period_start):
        with pytest.raises(InvalidQueryError):
            await patients.list(order_by=bad)
    for limit in (0, 1001, True):
        with pytest.raises(InvalidQueryError, match="limit"):
            await patients.list(limit=limit)
    assert "given_names" not in patients.sortable_columns()
    assert {"birth_date", "full_name", "id"} <= set(patients.sortable_columns())


async def test_generic_repository_on_any_typed_table(session: AsyncSession, world: World) -> None:
    conditions = Repository(session, READER, ConditionTable)
    assert conditions.resource_type == "Condition"
    page = await conditions.list(
        ConditionTable.patient_id == world.patients["ana"].id, order_by=ConditionTable.onset_at
    )
    want = sorted(
        (c for k, c in world.conditions.items() if k.startswith("ana") and k != "ana_gone"),
        key=lambda c: c.onset_date_time,  # type: ignore[arg-type,return-value]
    )
    assert ids(page) == [c.id for c in want]
    assert await Repository(session, READER, GoalTable).count() == 0
    with pytest.raises(TypeError):
        Repository(session, READER)
    with pytest.raises(TypeError, match="actor"):
        Repository(session, GoalTable)  # type: ignore[arg-type]


async def test_repository_for(session: AsyncSession) -> None:
    assert type(repository_for(session, "Patient", READER)) is PatientRepository
    assert type(repository_for(session, "Observation", READER)) is ObservationRepository
    assert type(repository_for(session, "Condition", READER)) is ConditionRepository
    assert type(repository_for(session, "Encounter", READER)) is EncounterRepository
    goals = repository_for(session, "Goal", READER)
    assert type(goals) is Repository and goals.model_type is GoalTable
    with pytest.raises(InvalidQueryError, match="no typed table"):
        repository_for(session, "NoSuchType", READER)


# -- patients --------------------------------------------------------------------------------


async def test_find_by_name_is_fuzzy_and_ranked(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    found = await patients.find_by_name("Fernandez")
    # "Fernandes" matches a misspelt "Fernandez"; the deleted Eve Fernandes does not come back.
    assert ids(found) == [world.patients["ana"].id]
    ranked = await patients.find_by_name("Fernhil")
    assert ids(ranked)[0] == world.patients["dan"].id
    assert ids(await patients.find_by_name("Carla Mendez")) == [world.patients["carla"].id]
    assert await patients.find_by_name("Xylophone") == []
    assert await patients.find_by_name("   ") == []
    assert len(await patients.find_by_name("Fern", limit=1)) == 1
    assert await patients.find_by_name("Fernandez", min_similarity=0.99) == []


async def test_find_by_name_can_use_the_trigram_index(
    session: AsyncSession, world: World, db: asyncpg.Connection
) -> None:
    with captured_sql(session) as statements:
        await PatientRepository(session, READER).find_by_name("Fernandez")
    [(sql, params)] = statements
    await db.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + sql, *params))
    assert "ix_patients_full_name_trgm" in plan


async def test_find_by_family_name_prefix(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    page = await patients.find_by_family_name_prefix("Fern")
    assert ids(page) == [world.patients["ana"].id, world.patients["dan"].id]  # by family name
    assert ids(await patients.find_by_family_name_prefix("fern")) == []
    insensitive = await patients.find_by_family_name_prefix("fern", case_sensitive=False)
    assert ids(insensitive) == ids(page)
    assert ids(await patients.find_by_family_name_prefix("_ern")) == []  # "_" is literal
    assert ids(await patients.find_by_family_name_prefix("%")) == []
    first = await patients.find_by_family_name_prefix("Fern", limit=1)
    second = await patients.find_by_family_name_prefix("Fern", limit=1, after=first.next_after)
    assert ids(first) + ids(second) == ids(page) and second.next_after is None


async def test_born_between_includes_both_ends(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    p = world.patients
    page = await patients.born_between(date(1975, 7, 1), date(1990, 12, 31))
    # Oldest first; Eve (1985) is deleted; both boundary dates are included.
    assert ids(page) == [p["bob"].id, p["ana"].id, p["carla"].id]
    narrow = await patients.born_between(date(1975, 7, 2), date(1990, 12, 30))
    assert ids(narrow) == [p["ana"].id]
    with pytest.raises(InvalidQueryError, match="after end"):
        await patients.born_between(date(2000, 1, 1), date(1999, 1, 1))


async def test_by_gender(session: AsyncSession, world: World) -> None:
    patients = PatientRepository(session, READER)
    p = world.patients
    assert set(ids(await patients.by_gender("female"))) == {p["ana"].id, p["carla"].id}
    assert set(ids(await patients.by_gender("male"))) == {p["bob"].id, p["dan"].id}
    assert ids(await patients.by_gender("other")) == []


# -- observations ----------------------------------------------------------------------------


async def test_observations_for_patient(session: AsyncSession, world: World) -> None:
    observations = ObservationRepository(session, READER)
    o = world.observations
    ana_id = world.patients["ana"].id
    ana_live = [v for k, v in o.items() if k.startswith("ana") and v.id not in world.deleted]

    def by_time(items: list[Observation], newest_first: bool) -> list[str]:
        # Ties (two at T0 + 1 day) break on id ascending in both directions.
        ordered = sorted(items, key=lambda x: x.id)
        ordered.sort(key=lambda x: x.effective_date_time, reverse=newest_first)  # type: ignore[arg-type,return-value]
        return [x.id for x in ordered]

    everything = await observations.for_patient(ana_id)
    assert ids(everything) == by_time(ana_live, newest_first=True)
    oldest = await observations.for_patient(ana_id, newest_first=False)
    assert ids(oldest) == by_time(ana_live, newest_first=False)

    diastolic = await observations.for_patient(ana_id, code=DIASTOLIC)
    assert ids(diastolic) == [o["ana_dia_new"].id, o["ana_dia_old"].id]
    # [since, until): since is included, until is not.
    window = await observations.for_patient(
        ana_id, code=SYSTOLIC, since=T0 + timedelta(days=10), until=T0 + timedelta(days=25)
    )
    assert ids(window) == [o["ana_sys_new"].id, o["ana_sys_mid"].id]
    row = window[0]
    assert (row.code_system, row.code, row.value_unit, row.interpretation_code) == (
        LOINC,
        SYSTOLIC,
        "mmHg",
        "H",
    )
    assert row.value_numeric == 141 and row.effective_at == T0 + timedelta(days=20)
    with pytest.raises(InvalidQueryError):
        await observations.for_patient(ana_id, since="2024-01-01")  # type: ignore[arg-type]

    paged: list[str] = []
    after = None
    while True:
        page = await observations.for_patient(ana_id, limit=2, after=after)
        paged += ids(page)
        if page.next_after is None:
            break
        after = page.next_after
    assert paged == ids(everything)


async def test_count_for_patient(session: AsyncSession, world: World) -> None:
    observations = ObservationRepository(session, READER)
    ana_id = world.patients["ana"].id
    # 9 stored for Ana, one deleted; the entered-in-error one still counts as a row.
    assert await observations.count_for_patient(ana_id) == 8
    assert await observations.count_for_patient(ana_id, code=DIASTOLIC) == 2
    assert await observations.count_for_patient(world.patients["carla"].id) == 0


async def test_by_code(session: AsyncSession, world: World) -> None:
    observations = ObservationRepository(session, READER)
    o = world.observations
    loinc = await observations.by_code(LOINC, SYSTOLIC)
    assert set(ids(loinc)) == {
        o[k].id for k in ("ana_sys_mid", "ana_sys_new", "ana_sys_old", "ana_sys_error", "bob_sys")
    }
    assert ids(loinc)[0] == o["ana_sys_error"].id  # newest first
    any_system = await observations.by_code(None, SYSTOLIC)
    assert set(ids(any_system)) == set(ids(loinc)) | {o["ana_local_new"].id, o["ana_local_old"].id}
    assert ids(await observations.by_code("urn:other", SYSTOLIC)) == []


async def test_latest_per_code_returns_the_newest_result_of_each_code(
    session: AsyncSession, world: World
) -> None:
    observations = ObservationRepository(session, READER)
    o = world.observations
    latest = await observations.latest_per_code(world.patients["ana"].id)
    # Ordered by (code system, code); the newer entered-in-error and deleted ones are skipped.
    assert ids(latest) == [o["ana_dia_new"].id, o["ana_sys_new"].id, o["ana_local_new"].id]
    assert [r.value_numeric for r in latest] == [85, 141, 118]
    with_errors = await observations.latest_per_code(world.patients["ana"].id, exclude_statuses=())
    assert o["ana_sys_error"].id in ids(with_errors)
    assert ids(await observations.latest_per_code(world.patients["bob"].id)) == [o["bob_sys"].id]


# -- conditions and encounters --------------------------------------------------------------


async def test_active_conditions_for_patient(session: AsyncSession, world: World) -> None:
    conditions = ConditionRepository(session, READER)
    c = world.conditions
    active = await conditions.active_for_patient(world.patients["ana"].id)
    # Earliest onset first; resolved, refuted and deleted conditions are left out.
    assert ids(active) == [c["ana_htn"].id, c["ana_relapse"].id]
    assert [r.clinical_status for r in active] == ["active", "relapse"]
    assert ids(await conditions.active_for_patient(world.patients["bob"].id)) == [c["bob_dm"].id]


async def test_encounters_for_patient(session: AsyncSession, world: World) -> None:
    encounters = EncounterRepository(session, READER)
    e = world.encounters
    ana_id = world.patients["ana"].id
    assert ids(await encounters.for_patient(ana_id)) == [e["ana_2"].id, e["ana_1"].id]
    assert ids(await encounters.for_patient(ana_id, newest_first=False)) == [
        e["ana_1"].id,
        e["ana_2"].id,
    ]
    assert ids(await encounters.for_patient(ana_id, since=T0 + timedelta(days=1))) == [
        e["ana_2"].id
    ]
    assert ids(await encounters.for_patient(ana_id, until=T0 + timedelta(days=30))) == [
        e["ana_1"].id
    ]


# -- sessions --------------------------------------------------------------------------------


async def test_session_scope_commits_on_success_and_rolls_back_on_error(
    database_url: str, db: asyncpg.Connection
) -> None:
    async with session_scope(database_url) as session:
        await session.execute(text("CREATE TABLE public.scope_probe (x int)"))
    assert await db.fetchval("SELECT to_regclass('public.scope_probe')") is not None

    with pytest.raises(RuntimeError, match="boom"):
        async with session_scope(database_url) as session:
            await session.execute(text("INSERT INTO public.scope_probe VALUES (1)"))
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT count(*) FROM public.scope_probe") == 0


async def test_rows_stay_readable_after_the_scope(database_url: str, world: World) -> None:
    async with session_scope(database_url) as session:
        row = await PatientRepository(session, READER).get(world.patients["ana"].id)
    assert row is not None
    assert row.full_name == "Ana Fernandes"  # expire_on_commit=False: no reload needed


async def test_orm_writes_to_hacs_tables_are_refused(
    database_url: str, world: World, db: asyncpg.Connection
) -> None:
    ana_id = world.patients["ana"].id
    with pytest.raises(ReadOnlyViolationError, match="through the adapter"):
        async with session_scope(database_url) as session:
            row = await PatientRepository(session, READER).get(ana_id)
            assert row is not None
            row.full_name = "Changed Behind The Adapter"
    with pytest.raises(ReadOnlyViolationError):
        async with session_scope(database_url) as session:
            session.add(ObservationTable(id="obs-x", resource_type="Observation", version=1))
            await session.flush()
    # A session the caller made gets the same guard once a repository uses it.
    async with AsyncSession(session.bind) as own:
        row = await PatientRepository(own, READER).get(ana_id)
        assert row is not None
        await own.delete(row)
        with pytest.raises(ReadOnlyViolationError):
            await own.flush()
        await own.rollback()
    assert (
        await db.fetchval("SELECT full_name FROM hacs_core.patients WHERE id = $1", ana_id)
        == "Ana Fernandes"
    )


async def test_database_errors_are_translated(empty_database_url: str) -> None:
    with pytest.raises(SchemaNotMigratedError):
        async with session_scope(empty_database_url) as session:
            await PatientRepository(session, READER).count()
