"""Repositories pass the access gate: read permission, patient scope in SQL, one durable audit row.

The finders are enumerated from the classes: every public coroutine of every repository class
needs a case in ``CASES`` (a finder added without one fails ``test_every_finder_has_a_case``).
For each finder:

1. an actor without the read permission is refused (``PermissionDeniedError``) and the refusal
   is audited as denied;
2. an actor scoped to patient A only ever gets A's rows: aimed at B's rows it gets nothing (and
   loads none of them into the session), aimed at A's it gets them, while an unscoped reader
   aimed at B's does get B's (so each case really reaches for B);
3. a call writes exactly one audit row, with the action, the type, the id of a single-row read,
   the outcome, the number of rows returned and (passed to ``AccessGate.record``) their ids, and
   no value of the query in ``detail``;
4. that audit row survives a rollback of the caller's session.

The data is written once per module through the adapter; the calls only read, and every test
acts as actors of its own, so audit rows are told apart by actor id.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hacs_auth import acting_as
from hacs_models import (
    Actor,
    CodeableConcept,
    Encounter,
    Goal,
    HumanName,
    Organization,
    Patient,
    Period,
)
from hacs_persistence import create_postgres_adapter
from hacs_persistence.access.gate import AccessGate
from hacs_persistence.db.engine import get_engine, resolve_database, transactional
from hacs_persistence.errors import InvalidQueryError, PermissionDeniedError
from hacs_persistence.query.repositories import (
    ConditionRepository,
    EncounterRepository,
    KeysetPage,
    ObservationRepository,
    PatientRepository,
    Repository,
    repository_for,
    session_scope,
)
from hacs_persistence.schema import TypedResourceTable
from hacs_persistence.schema.clinical import ConditionTable, GoalTable
from hacs_persistence.schema.core import (
    EncounterTable,
    ObservationTable,
    OrganizationTable,
    PatientTable,
)
from tests.conftest import TEMPLATE, _fresh_database, db_connect
from tests.factories import ADMIN, LOINC, condition, make_patient, observation

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

# The base class is exercised on a table without a repository of its own.
TABLE_OF: dict[type[Repository[Any]], type[TypedResourceTable]] = {
    Repository: GoalTable,
    PatientRepository: PatientTable,
    ObservationRepository: ObservationTable,
    ConditionRepository: ConditionTable,
    EncounterRepository: EncounterTable,
}


def repository_classes() -> list[type[Repository[Any]]]:
    """The base and every repository subclass (so a new repository class is enumerated too)."""
    found: list[type[Repository[Any]]] = [Repository]
    pending = list(Repository.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def finders(cls: type) -> list[str]:
    """Every public coroutine method of ``cls`` (inherited ones included)."""
    return sorted(
        name
        for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
        if not name.startswith("_")
    )


# -- the stored data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One patient's data, as a finder is aimed at it."""

    patient: str
    full_name: str
    family: str
    gender: str
    birth_date: date
    code: str
    ids: dict[type[TypedResourceTable], list[str]]  # the patient's rows per table

    def rid(self, table: type[TypedResourceTable]) -> str:
        """One of the patient's resources in ``table`` (for single-row reads)."""
        return self.ids[table][0]

    def all_ids(self) -> set[str]:
        return {i for ids in self.ids.values() for i in ids}


@dataclass(frozen=True)
class World:
    url: str
    a: Target
    b: Target
    organization: str


def _person(full_name: str, gender: str, born: date) -> Patient:
    given, family = full_name.split()
    return make_patient(
        full_name=full_name,
        name=[HumanName(use="official", family=family, given=[given])],
        gender=gender,
        birth_date=born,
    )


async def _seed(url: str) -> World:
    alice = _person("Alice Aardvark", "female", date(1961, 2, 3))
    bruno = _person("Bruno Brightwater", "male", date(1972, 8, 9))
    codes = {alice.id: "8480-6", bruno.id: "8462-4"}  # one code each, so by_code aims at one
    resources: list[Any] = [alice, bruno]
    ids: dict[str, dict[type[TypedResourceTable], list[str]]] = {}
    for patient in (alice, bruno):
        observations = [
            observation(patient, codes[patient.id], 120 + i, T0.replace(day=1 + i))
            for i in range(2)
        ]
        conditions = [condition(patient, "38341003", "active", T0)]
        encounters = [
            Encounter(status="finished", subject=f"Patient/{patient.id}", period=Period(start=T0))
        ]
        goals = [
            Goal(description=CodeableConcept(text="walk daily"), subject=f"Patient/{patient.id}")
        ]
        resources += [*observations, *conditions, *encounters, *goals]
        ids[patient.id] = {
            PatientTable: [patient.id],
            ObservationTable: [o.id for o in observations],
            ConditionTable: [c.id for c in conditions],
            EncounterTable: [e.id for e in encounters],
            GoalTable: [g.id for g in goals],
        }
    organization = Organization(name="Acme Health")
    adapter = await create_postgres_adapter(url)
    try:
        await adapter.save_many([*resources, organization], ADMIN)
    finally:
        await adapter.close()

    def target(patient: Patient) -> Target:
        assert patient.full_name and patient.gender and patient.birth_date
        family = patient.full_name.split()[1]
        return Target(
            patient.id,
            patient.full_name,
            family,
            str(patient.gender),
            patient.birth_date,
            codes[patient.id],
            ids[patient.id],
        )

    return World(url, target(alice), target(bruno), organization.id)


@pytest.fixture(scope="module")
async def world(server_url: str, template_url: str) -> AsyncIterator[World]:
    # One database for the module: the cases only read, and each test acts as its own actors.
    async for url in _fresh_database(server_url, TEMPLATE):
        yield await _seed(url)


@pytest.fixture
async def db(world: World) -> AsyncIterator[asyncpg.Connection]:
    conn = await db_connect(world.url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def session(world: World) -> AsyncIterator[AsyncSession]:
    async with session_scope(world.url) as session:
        yield session


# -- the actors ------------------------------------------------------------------------------


def reader() -> Actor:
    return Actor(name="reader", role="system", permissions=["*:read"])


def scoped(patient_id: str) -> Actor:
    return Actor(name="app", role="patient", permissions=["*:read"], patient_ids=[patient_id])


def unpermitted() -> Actor:
    # May read organizations only: no read permission on any table the cases read.
    return Actor(name="nosy", role="system", permissions=["organization:read"])


# -- the cases: every finder, aimed at one target's rows -------------------------------------

Call = Callable[[Any, Target], Awaitable[Any]]


def _scope_attribute(repo: Repository[Any]) -> Any:
    return repo.model_type.id if repo.model_type is PatientTable else repo.model_type.patient_id


BASE: dict[str, Call] = {
    "get": lambda r, t: r.get(t.rid(r.model_type)),
    "exists": lambda r, t: r.exists(t.rid(r.model_type)),
    "document": lambda r, t: r.document(t.rid(r.model_type)),
    "get_model": lambda r, t: r.get_model(t.rid(r.model_type)),
    "list": lambda r, t: r.list(_scope_attribute(r) == t.patient),
    "count": lambda r, t: r.count(_scope_attribute(r) == t.patient),
}

SPECIALISED: dict[tuple[type[Repository[Any]], str], Call] = {
    (PatientRepository, "find_by_name"): lambda r, t: r.find_by_name(t.full_name),
    (PatientRepository, "find_by_family_name_prefix"): lambda r, t: r.find_by_family_name_prefix(
        t.family[:4]
    ),
    (PatientRepository, "born_between"): lambda r, t: r.born_between(t.birth_date, t.birth_date),
    (PatientRepository, "by_gender"): lambda r, t: r.by_gender(t.gender),
    (ObservationRepository, "for_patient"): lambda r, t: r.for_patient(t.patient),
    (ObservationRepository, "by_code"): lambda r, t: r.by_code(LOINC, t.code),
    (ObservationRepository, "latest_per_code"): lambda r, t: r.latest_per_code(t.patient),
    (ObservationRepository, "count_for_patient"): lambda r, t: r.count_for_patient(t.patient),
    (ConditionRepository, "active_for_patient"): lambda r, t: r.active_for_patient(t.patient),
    (EncounterRepository, "for_patient"): lambda r, t: r.for_patient(t.patient),
}

# Finders that read one row by id (their audit row names it).
SINGLE = {"get", "exists", "document", "get_model"}


def case_of(cls: type[Repository[Any]], name: str) -> Call:
    return SPECIALISED.get((cls, name)) or BASE[name]


CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}.{name}")
    for cls in repository_classes()
    for name in finders(cls)
    if (cls, name) in SPECIALISED or name in BASE
]


def test_every_finder_has_a_case() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls in repository_classes()
        for name in finders(cls)
        if (cls, name) not in SPECIALISED and name not in BASE
    ]
    assert not missing, f"add a case (and so the gate tests) for: {missing}"
    assert set(repository_classes()) == set(TABLE_OF), "add the new repository class to TABLE_OF"
    assert len(CASES) >= 40


def make(cls: type[Repository[Any]], session: AsyncSession, actor: Actor | None) -> Any:
    if cls is Repository:
        return Repository(session, actor, TABLE_OF[cls])
    return cls(session, actor)


@dataclass(frozen=True)
class Result:
    count: int
    ids: list[str]


def returned(result: Any, name: str, target: Target, table: type[TypedResourceTable]) -> Result:
    """What a finder handed back: how many rows (or the count) and which ids."""
    if result is None:
        return Result(0, [])
    if isinstance(result, bool):
        return Result(int(result), [target.rid(table)] if result else [])
    if isinstance(result, int):
        assert name.startswith("count")
        return Result(result, [])
    if isinstance(result, dict):
        return Result(1, [result["id"]])
    if isinstance(result, (list, KeysetPage)):
        return Result(len(result), [row.id for row in result])
    return Result(1, [result.id])


async def audit_rows(db: asyncpg.Connection, actor: Actor) -> list[asyncpg.Record]:
    return await db.fetch(  # type: ignore[no-any-return]
        "SELECT * FROM hacs_audit.audit_events WHERE actor_id = $1 ORDER BY id", actor.id
    )


def loaded_ids(session: AsyncSession) -> set[str]:
    return {str(obj.id) for obj in session.identity_map.values() if hasattr(obj, "id")}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every ``AccessGate.record`` call (its arguments), while the test runs."""
    calls: list[dict[str, Any]] = []
    original = AccessGate.record
    signature = inspect.signature(original)

    async def spy(self: AccessGate, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        calls.append({k: v for k, v in bound.arguments.items() if k != "self"})
        await original(self, *args, **kwargs)

    monkeypatch.setattr(AccessGate, "record", spy)
    yield calls


# -- 1. permission ---------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "name"), CASES)
async def test_an_actor_without_read_permission_is_refused_and_audited(
    cls: type[Repository[Any]],
    name: str,
    world: World,
    session: AsyncSession,
    db: asyncpg.Connection,
) -> None:
    actor = unpermitted()
    repo = make(cls, session, actor)
    with pytest.raises(PermissionDeniedError):
        await case_of(cls, name)(repo, world.a)
    assert loaded_ids(session) == set()
    [row] = await audit_rows(db, actor)
    assert (row["action"], row["resource_type"], row["outcome"]) == (
        f"repository.{name}",
        repo.resource_type,
        "denied",
    )


# -- 2. patient scope ------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "name"), CASES)
async def test_a_scoped_actor_only_ever_gets_its_patients_rows(
    cls: type[Repository[Any]], name: str, world: World, db: asyncpg.Connection
) -> None:
    call = case_of(cls, name)
    table = TABLE_OF[cls]
    actor = scoped(world.a.patient)
    async with session_scope(world.url) as session:
        aimed_at_b = returned(await call(make(cls, session, actor), world.b), name, world.b, table)
        # Nothing of B's came back, and none of B's rows was even loaded into the session.
        assert aimed_at_b == Result(0, [])
        assert not loaded_ids(session) & world.b.all_ids()
    async with session_scope(world.url) as session:
        aimed_at_a = returned(await call(make(cls, session, actor), world.a), name, world.a, table)
        assert aimed_at_a.count > 0
        assert set(aimed_at_a.ids) <= world.a.all_ids()
        assert not loaded_ids(session) & world.b.all_ids()
    # The case does reach for B's rows: a reader without a scope gets them.
    async with session_scope(world.url) as session:
        unscoped = returned(await call(make(cls, session, reader()), world.b), name, world.b, table)
        assert unscoped.count > 0 and set(unscoped.ids) <= world.b.all_ids()
    outcomes = [r["outcome"] for r in await audit_rows(db, actor)]
    assert outcomes == ["denied" if name in SINGLE else "success", "success"]


async def test_unfiltered_lists_and_counts_only_see_the_actors_patients(
    world: World, session: AsyncSession
) -> None:
    actor = scoped(world.a.patient)
    for cls, table in TABLE_OF.items():
        repo = make(cls, session, actor)
        page = await repo.list()
        assert {row.id for row in page} == set(world.a.ids[table]), cls
        assert await repo.count() == len(world.a.ids[table]), cls
    observations = ObservationRepository(session, actor)
    assert {r.id for r in await observations.by_code(None, world.b.code)} == set()
    assert {r.id for r in await observations.by_code(None, world.a.code)} == set(
        world.a.ids[ObservationTable]
    )
    assert not loaded_ids(session) & world.b.all_ids()


async def test_types_outside_patient_compartments_are_refused_to_scoped_actors(
    world: World, session: AsyncSession, db: asyncpg.Connection
) -> None:
    actor = scoped(world.a.patient)
    organizations = repository_for(session, "Organization", actor)
    with pytest.raises(PermissionDeniedError, match="patient compartment"):
        await organizations.get(world.organization)
    with pytest.raises(PermissionDeniedError, match="patient compartment"):
        await organizations.list()
    assert [(r["action"], r["outcome"]) for r in await audit_rows(db, actor)] == [
        ("repository.get", "denied"),
        ("repository.list", "denied"),
    ]
    # An unscoped reader reads them.
    assert await Repository(session, reader(), OrganizationTable).exists(world.organization)


# -- 3. one audit row per call ---------------------------------------------------------------


@pytest.mark.parametrize(("cls", "name"), CASES)
async def test_each_call_writes_one_audit_row_with_its_count_and_ids(
    cls: type[Repository[Any]],
    name: str,
    world: World,
    session: AsyncSession,
    db: asyncpg.Connection,
    recorded: list[dict[str, Any]],
) -> None:
    table = TABLE_OF[cls]
    actor = scoped(world.a.patient)
    repo = make(cls, session, actor)
    result = returned(await case_of(cls, name)(repo, world.a), name, world.a, table)
    assert result.count > 0
    [row] = await audit_rows(db, actor)
    assert row["action"] == f"repository.{name}"
    assert row["resource_type"] == repo.resource_type
    assert row["resource_id"] == (world.a.rid(table) if name in SINGLE else None)
    assert row["outcome"] == "success"
    assert row["result_count"] == result.count
    [call] = recorded
    assert call["actor"] is actor and call["action"] == f"repository.{name}"
    assert list(call["resource_ids"] or []) == result.ids
    if "resource_ids" in row:  # the column is being added by a migration
        assert list(row["resource_ids"] or []) == result.ids
    # The query's shape only: no value of it (ids, names, codes, dates) is in the detail.
    detail = row["detail"] or ""
    assert "scope=patients" in detail
    target = world.a
    for value in (
        target.patient,
        target.family[:4],
        target.full_name,
        target.code,
        str(target.birth_date),
        target.gender,
        *target.all_ids(),
    ):
        assert value not in detail, (value, detail)


async def test_conditions_are_audited_by_column_names_never_values(
    world: World, session: AsyncSession, db: asyncpg.Connection
) -> None:
    actor = reader()
    patients = PatientRepository(session, actor)
    page = await patients.list(
        PatientTable.full_name == world.a.full_name, PatientTable.gender != "unknown"
    )
    assert [p.id for p in page] == [world.a.patient]
    assert await patients.count(PatientTable.birth_date > date(1900, 1, 1)) == 2
    rows = await audit_rows(db, actor)
    assert [r["detail"] for r in rows] == [
        "filters=full_name,gender;order_by=id",
        "filters=birth_date",
    ]
    assert [r["result_count"] for r in rows] == [1, 2]


async def test_conditions_that_read_other_tables_are_refused(
    world: World, session: AsyncSession, db: asyncpg.Connection
) -> None:
    from sqlalchemy import exists, literal_column, select, text
    from sqlalchemy.orm import aliased

    actor = scoped(world.a.patient)
    patients = PatientRepository(session, actor)
    # Each would tell A's actor something about B's rows through a filter on A's.
    leaks: list[Any] = [
        PatientTable.id.in_(select(ObservationTable.patient_id)),
        exists().where(ObservationTable.patient_id == world.b.patient),
        aliased(PatientTable).id == world.b.patient,
        text("true"),
        literal_column("(SELECT 1)") == 1,
        PatientTable.id == select(PatientTable.id).scalar_subquery(),
    ]
    for leak in leaks:
        with pytest.raises(InvalidQueryError, match="columns of PatientTable"):
            await patients.list(leak)
        with pytest.raises(InvalidQueryError, match="columns of PatientTable"):
            await patients.count(leak)
    outcomes = [(r["action"], r["outcome"]) for r in await audit_rows(db, actor)]
    assert outcomes == [("repository.list", "invalid"), ("repository.count", "invalid")] * len(
        leaks
    )


async def test_a_miss_is_audited_as_not_found(
    world: World, session: AsyncSession, db: asyncpg.Connection
) -> None:
    actor = reader()
    observations = ObservationRepository(session, actor)
    assert await observations.get("obs-missing") is None
    assert await observations.exists("obs-missing") is False
    assert [
        (r["resource_id"], r["outcome"], r["result_count"]) for r in await audit_rows(db, actor)
    ] == [
        ("obs-missing", "not_found", 0),
        ("obs-missing", "not_found", 0),
    ]


# -- 4. the audit row outlives the caller's transaction --------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize(("cls", "name"), CASES)
async def test_the_audit_row_survives_a_rollback_of_the_session(
    cls: type[Repository[Any]], name: str, world: World, db: asyncpg.Connection
) -> None:
    actor = reader()
    with pytest.raises(Boom):
        async with session_scope(world.url) as session:
            await case_of(cls, name)(make(cls, session, actor), world.b)
            raise Boom  # session_scope rolls back
    [row] = await audit_rows(db, actor)
    assert (row["action"], row["outcome"]) == (f"repository.{name}", "success")


async def test_the_audit_row_survives_an_explicit_rollback(
    world: World, db: asyncpg.Connection
) -> None:
    engine = transactional(await get_engine(await resolve_database(world.url)))
    actor = reader()
    async with AsyncSession(engine) as own:
        await own.begin()
        assert len(await PatientRepository(own, actor).by_gender(world.b.gender)) == 1
        # A session bound to a connection of the same engine (audit rows: yet another one).
        async with engine.connect() as conn, AsyncSession(conn) as bound:
            assert await ObservationRepository(bound, actor).count() == 4
            await bound.rollback()
        await own.rollback()
    rows = await audit_rows(db, actor)
    assert [(r["action"], r["result_count"]) for r in rows] == [
        ("repository.by_gender", 1),
        ("repository.count", 4),
    ]


# -- binding the actor -----------------------------------------------------------------------


async def test_a_repository_needs_an_actor(world: World, session: AsyncSession) -> None:
    with pytest.raises(PermissionDeniedError, match="No actor"):
        PatientRepository(session, None)
    with pytest.raises(PermissionDeniedError, match="No actor"):
        repository_for(session, "Observation", None)
    with pytest.raises(TypeError):
        PatientRepository(session)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        repository_for(session, "Patient")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="actor"):
        Repository(session, GoalTable)  # type: ignore[arg-type]


async def test_none_binds_the_current_actor(
    world: World, session: AsyncSession, db: asyncpg.Connection
) -> None:
    actor = scoped(world.a.patient)
    with acting_as(actor):
        patients = PatientRepository(session, None)
        goals = repository_for(session, "Goal", None)
    assert patients.actor is actor and goals.actor is actor
    # Bound at construction: the scope holds after the block, too.
    assert [p.id for p in await patients.list()] == [world.a.patient]
    assert [r["action"] for r in await audit_rows(db, actor)] == ["repository.list"]


# -- the documented example ------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "analytics.md"


def documented_python(title: str) -> list[str]:
    """The ```python blocks of the ``## title`` section of docs/analytics.md."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```python\n(.*?)^```$", body, flags=re.MULTILINE | re.DOTALL)


async def test_the_documented_repository_example_runs_as_written(
    world: World, db: asyncpg.Connection
) -> None:
    [block] = documented_python("From Python: repositories")
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    results = await namespace["latest_results"](world.url, world.a.patient)
    assert results == [(world.a.code, 121.0)]  # the newer of A's two results
    assert await namespace["latest_results"](world.url, "patient-missing") == []
    rows = await audit_rows(db, namespace["clinician"])
    assert [(r["action"], r["outcome"], r["result_count"]) for r in rows] == [
        ("repository.exists", "success", 1),
        ("repository.latest_per_code", "success", 1),
        ("repository.exists", "not_found", 0),
    ]
