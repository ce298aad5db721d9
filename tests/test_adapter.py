"""Both adapters on real PostgreSQL: round trips, versions, permissions, audit, transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from hacs_models import (
    Actor,
    Address,
    BaseResource,
    CodeableConcept,
    ContactPoint,
    HumanName,
    Identifier,
    Observation,
    Patient,
)
from hacs_persistence.adapter import (
    GranularPostgreSQLAdapter,
    PostgreSQLAdapter,
    create_postgres_adapter,
)
from hacs_persistence.errors import (
    InvalidQueryError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    ResourceNotFoundError,
    ResourceValidationError,
    SchemaNotMigratedError,
    VersionConflictError,
)

ADMIN = Actor(name="admin", role="admin", permissions=["admin:*"])
WRITER = Actor(name="db-writer", role="system", permissions=["patient:write", "observation:write"])
READER = Actor(name="reader", role="physician", permissions=["patient:read"])


class Device(BaseResource):
    """A type without a typed table: it must live in the JSONB fallback."""

    resource_type: str = "AdapterDevice"
    status: str | None = None
    manufacturer: str | None = None


class VipPatient(Patient):
    """A subclass with its own resource_type: stored in patients, read back as itself."""

    resource_type: str = "AdapterVipPatient"
    tier: str = "gold"


def make_patient(**overrides: Any) -> Patient:
    data: dict[str, Any] = {
        "full_name": "Carlos Miguel Fernandez",
        "name": [HumanName(use="official", family="Fernandez", given=["Carlos", "Miguel"])],
        "gender": "male",
        "birth_date": date(1978, 12, 3),
        "active": True,
        "telecom": [ContactPoint(system="phone", value="+1-555-0198", use="mobile")],
        "address": [
            Address(
                use="home",
                line=["456 Pine Avenue"],
                city="Houston",
                state="TX",
                postal_code="77001",
            )
        ],
        "identifier": [Identifier(system="urn:mrn", value="MRN-1")],
        "text": {"status": "generated", "div": "<div>Carlos</div>"},
        "extension": [{"url": "http://example.org/ext", "valueString": "kept"}],
    }
    data.update(overrides)
    return Patient(**data)


def make_observation(patient_id: str, value: float = 118, **overrides: Any) -> Observation:
    obs = Observation(
        status="final",
        category=[
            CodeableConcept(
                text="Vital Signs",
                coding=[
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ],
            )
        ],
        code=CodeableConcept(
            text="Systolic blood pressure",
            coding=[{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic BP"}],
        ),
        subject=f"Patient/{patient_id}",
        effective_date_time=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        **overrides,
    )
    obs.set_quantity_value(value, "mmHg", system="http://unitsofmeasure.org")
    obs.add_note("Systolic 118 mmHg; Diastolic 76 mmHg")
    return obs


@pytest.fixture(params=["granular", "jsonb"])
async def adapter(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Any]:
    created = await create_postgres_adapter(database_url, kind=request.param)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def granular(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    created = await create_postgres_adapter(database_url)
    try:
        yield created
    finally:
        await created.close()


async def audit_rows(db: asyncpg.Connection, **where: Any) -> list[asyncpg.Record]:
    clauses = " AND ".join(f"{k} = ${i}" for i, k in enumerate(where, start=1)) or "true"
    return await db.fetch(
        f"SELECT * FROM hacs_audit.audit_events WHERE {clauses} ORDER BY id", *where.values()
    )


async def test_create_postgres_adapter_picks_granular_or_jsonb(database_url: str) -> None:
    async with await create_postgres_adapter(database_url) as default:
        assert isinstance(default, GranularPostgreSQLAdapter)
    async with await create_postgres_adapter(database_url, kind="jsonb") as jsonb:
        assert type(jsonb) is PostgreSQLAdapter


async def test_production_config_is_accepted_as_written(database_url: str) -> None:
    production_config = {
        "connection_pool_size": 20,
        "max_overflow": 30,
        "pool_timeout": 30,
        "pool_recycle": 3600,
        "ssl_mode": "prefer",
        "application_name": "hacs-production",
        "statement_timeout": 30000,
        "idle_in_transaction_session_timeout": 60000,
    }
    async with await create_postgres_adapter(database_url, **production_config) as adapter:
        saved = await adapter.save(make_patient(), WRITER)
        async with adapter.transaction() as conn:
            from sqlalchemy import text

            name = await conn.scalar(text("SELECT current_setting('application_name')"))
            timeout = await conn.scalar(text("SELECT current_setting('statement_timeout')"))
        assert (name, timeout) == ("hacs-production", "30s")
        assert saved.version == 1


async def test_unmigrated_database_raises_a_clear_error(empty_database_url: str) -> None:
    with pytest.raises(SchemaNotMigratedError, match="hacs db upgrade"):
        await create_postgres_adapter(empty_database_url)


async def test_patient_and_observation_round_trip_exactly(adapter: Any) -> None:
    patient = make_patient()
    saved = await adapter.save(patient, WRITER)
    assert saved.version == 1
    assert saved.created_at.tzinfo is not None and saved.created_at.utcoffset() == timedelta(0)
    obs = await adapter.save(make_observation(saved.id), WRITER)
    read_patient = await adapter.read(Patient, saved.id, WRITER)
    read_obs = await adapter.read(Observation, obs.id, WRITER)
    assert read_patient == saved
    assert read_obs == obs
    assert read_patient.model_extra == {
        "text": {"status": "generated", "div": "<div>Carlos</div>"},
        "extension": [{"url": "http://example.org/ext", "valueString": "kept"}],
    }
    assert read_obs.note[0].text == "Systolic 118 mmHg; Diastolic 76 mmHg"
    assert read_obs.value_quantity is not None and float(read_obs.value_quantity.value) == 118


async def test_granular_adapter_fills_typed_columns_and_versions(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patient = await granular.save(make_patient(), WRITER)
    obs = await granular.save(make_observation(patient.id), WRITER)
    row = await db.fetchrow("SELECT * FROM hacs_core.patients WHERE id = $1", patient.id)
    assert (
        row["family_name"],
        row["given_names"],
        row["gender"],
        row["birth_date"],
        row["city"],
        row["state"],
        row["postal_code"],
        row["version"],
    ) == ("Fernandez", ["Carlos", "Miguel"], "male", date(1978, 12, 3), "Houston", "TX", "77001", 1)
    orow = await db.fetchrow("SELECT * FROM hacs_core.observations WHERE id = $1", obs.id)
    assert (
        orow["patient_id"],
        orow["code"],
        orow["code_system"],
        float(orow["value_numeric"]),
        orow["value_unit"],
        orow["category_code"],
    ) == (patient.id, "8480-6", "http://loinc.org", 118.0, "mmHg", "vital-signs")
    doc = await db.fetchval(
        "SELECT document->>'full_name' FROM hacs_core.patients_current WHERE id = $1", patient.id
    )
    assert doc == "Carlos Miguel Fernandez"
    assert await db.fetchval("SELECT count(*) FROM public.hacs_resources") == 0


async def test_jsonb_adapter_stores_every_type_in_hacs_resources(
    database_url: str, db: asyncpg.Connection
) -> None:
    async with await create_postgres_adapter(database_url, kind="jsonb") as adapter:
        patient = await adapter.save(make_patient(), WRITER)
    row = await db.fetchrow(
        "SELECT resource_type, version, document->>'gender' AS g FROM public.hacs_resources "
        "WHERE id = $1",
        patient.id,
    )
    assert tuple(row) == ("Patient", 1, "male")
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients") == 0


async def test_type_without_typed_table_uses_the_fallback(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    device = await granular.save(Device(status="active", manufacturer="Acme"), ADMIN)
    assert await granular.read(Device, device.id, ADMIN) == device
    assert (
        await db.fetchval(
            "SELECT document->>'manufacturer' FROM public.hacs_resources WHERE id = $1", device.id
        )
        == "Acme"
    )
    page = await granular.search(Device, ADMIN, filters={"manufacturer": "Acme"})
    assert [d.id for d in page] == [device.id]
    assert len(await granular.search(Device, ADMIN, filters={"manufacturer": "Other"})) == 0


async def test_subclass_with_its_own_type_reads_back_as_itself(granular: Any) -> None:
    vip = await granular.save(VipPatient(full_name="Ada Lovelace", tier="platinum"), ADMIN)
    back = await granular.read(VipPatient, vip.id, ADMIN)
    assert type(back) is VipPatient and back.tier == "platinum"
    with pytest.raises(ResourceNotFoundError):
        await granular.read(Patient, vip.id, ADMIN)


async def test_reading_a_missing_id_raises_not_found_and_is_audited(
    adapter: Any, db: asyncpg.Connection
) -> None:
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        await adapter.read(Patient, "patient-00000000", READER)
    rows = await audit_rows(db, resource_id="patient-00000000")
    assert [(r["action"], r["outcome"]) for r in rows] == [("read", "not_found")]


async def test_every_call_writes_one_audit_row_without_phi(
    adapter: Any, db: asyncpg.Connection
) -> None:
    patient = await adapter.save(make_patient(), WRITER)
    await adapter.read(Patient, patient.id, WRITER)
    patient.active = False
    await adapter.update(patient, WRITER)
    await adapter.search(Patient, WRITER, filters={"id": patient.id})
    await adapter.delete(Patient, patient.id, ADMIN)
    rows = await audit_rows(db)
    assert [(r["action"], r["outcome"], r["resource_id"]) for r in rows] == [
        ("create", "success", patient.id),
        ("read", "success", patient.id),
        ("update", "success", patient.id),
        ("search", "success", None),
        ("delete", "success", patient.id),
    ]
    assert rows[3]["result_count"] == 1
    assert {r["actor_name"] for r in rows[:4]} == {"db-writer"}
    dumped = " ".join(str(dict(r)) for r in rows)
    assert "Fernandez" not in dumped and "Houston" not in dumped


async def test_denied_write_leaves_no_row_but_one_audit_row(
    adapter: Any, db: asyncpg.Connection
) -> None:
    patient = make_patient()
    with pytest.raises(PermissionDeniedError, match="patient:write"):
        await adapter.save(patient, READER)
    assert await db.fetchval("SELECT count(*) FROM public.hacs_resources") == 0
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients") == 0
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0
    rows = await audit_rows(db)
    assert [(r["action"], r["outcome"], r["actor_id"]) for r in rows] == [
        ("create", "denied", READER.id)
    ]


async def test_inactive_actor_can_do_nothing(adapter: Any, db: asyncpg.Connection) -> None:
    saved = await adapter.save(make_patient(), ADMIN)
    inactive = Actor(name="gone", role="admin", permissions=["admin:*"], is_active=False)
    with pytest.raises(PermissionDeniedError, match="inactive"):
        await adapter.read(Patient, saved.id, inactive)
    with pytest.raises(PermissionDeniedError):
        await adapter.save(make_patient(), inactive)


async def test_write_permission_implies_read_but_not_delete(adapter: Any) -> None:
    saved = await adapter.save(make_patient(), WRITER)
    assert (await adapter.read(Patient, saved.id, WRITER)).id == saved.id
    with pytest.raises(PermissionDeniedError, match="patient:delete"):
        await adapter.delete(Patient, saved.id, WRITER)
    with pytest.raises(PermissionDeniedError):
        await adapter.read(Device, "device-00000000", WRITER)


async def test_save_without_an_actor_is_refused(adapter: Any) -> None:
    with pytest.raises(PermissionDeniedError, match="No actor"):
        await adapter.save(make_patient())


async def test_update_bumps_version_and_keeps_history(adapter: Any) -> None:
    saved = await adapter.save(make_patient(), WRITER)
    created_at = saved.created_at
    saved.gender = "other"
    updated = await adapter.save(saved, WRITER)
    assert updated.version == 2 and updated.created_at == created_at
    assert updated.updated_at >= created_at
    history = await adapter.history(Patient, saved.id, WRITER)
    assert [(h.version, h.operation) for h in history] == [(2, "update"), (1, "create")]
    assert history[1].resource.gender == "male" and history[0].resource.gender == "other"
    first = await adapter.read_version(Patient, saved.id, 1, WRITER)
    assert first.gender == "male" and first.version == 1
    with pytest.raises(ResourceNotFoundError):
        await adapter.read_version(Patient, saved.id, 9, WRITER)


async def test_stale_or_missing_version_is_a_conflict(adapter: Any) -> None:
    saved = await adapter.save(make_patient(), WRITER)
    stale = saved.model_copy()
    saved.gender = "female"
    await adapter.update(saved, WRITER)
    stale.gender = "other"
    with pytest.raises(VersionConflictError, match="expected version 1, stored version is 2"):
        await adapter.update(stale, WRITER)
    with pytest.raises(VersionConflictError):
        await adapter.update(saved, WRITER, expected_version=1)
    explicit = make_patient(id=saved.id)
    with pytest.raises(VersionConflictError):
        await adapter.save(explicit, WRITER)
    assert (await adapter.read(Patient, saved.id, WRITER)).gender == "female"


async def test_concurrent_updates_exactly_one_wins(adapter: Any) -> None:
    saved = await adapter.save(make_patient(), WRITER)
    copies = [saved.model_copy(update={"gender": g}) for g in ("female", "other", "unknown")]
    results = await asyncio.gather(
        *(adapter.update(c, WRITER, expected_version=1) for c in copies), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, VersionConflictError)]
    assert len(winners) == 1 and len(losers) == 2
    stored = await adapter.read(Patient, saved.id, WRITER)
    assert stored.version == 2 and stored.gender == winners[0].gender
    assert len(await adapter.history(Patient, saved.id, WRITER)) == 2


async def test_explicit_id_is_kept_and_generated_collisions_are_redrawn(
    adapter: Any,
) -> None:
    explicit = await adapter.save(make_patient(id="patient-explicit-1"), WRITER)
    assert explicit.id == "patient-explicit-1"
    clash = make_patient()
    clash.__dict__["id"] = explicit.id  # a generated id that happens to collide
    clash.__pydantic_fields_set__.discard("id")
    saved = await adapter.save(clash, WRITER)
    assert saved.id != explicit.id and saved.version == 1
    assert (await adapter.read(Patient, explicit.id, WRITER)).version == 1


async def test_delete_hides_the_resource_and_update_restores_it(adapter: Any) -> None:
    saved = await adapter.save(make_patient(), ADMIN)
    tombstone = await adapter.delete(Patient, saved.id, ADMIN)
    assert tombstone == 2
    with pytest.raises(ResourceNotFoundError, match="was deleted"):
        await adapter.read(Patient, saved.id, ADMIN)
    with pytest.raises(ResourceNotFoundError, match="was deleted"):
        await adapter.delete(Patient, saved.id, ADMIN)
    assert len(await adapter.search(Patient, ADMIN, filters={"id": saved.id})) == 0
    history = await adapter.history(Patient, saved.id, ADMIN)
    assert [h.operation for h in history] == ["delete", "create"]
    saved.gender = "other"
    restored = await adapter.update(saved, ADMIN, expected_version=2)
    assert restored.version == 3
    assert (await adapter.read(Patient, saved.id, ADMIN)).gender == "other"


async def test_same_id_for_two_types_is_kept_apart(adapter: Any) -> None:
    patient = await adapter.save(make_patient(id="shared-1"), ADMIN)
    device = await adapter.save(Device(id="shared-1", manufacturer="Acme"), ADMIN)
    assert (await adapter.read(Patient, "shared-1", ADMIN)).full_name == patient.full_name
    assert (await adapter.read(Device, "shared-1", ADMIN)).manufacturer == device.manufacturer


async def test_dangling_reference_is_refused_naming_it(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    with pytest.raises(ReferentialIntegrityError, match="Patient reference") as caught:
        await granular.save(make_observation("patient-missing1"), WRITER)
    # Named by its attribute; the message itself quotes no id.
    assert caught.value.reference == "Patient/patient-missing1"
    assert "patient-missing1" not in str(caught.value)
    assert await db.fetchval("SELECT count(*) FROM hacs_core.observations") == 0
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0


async def test_save_many_defers_references_to_commit(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    patient = make_patient()
    observations = [make_observation(patient.id, value=v) for v in (110, 120, 130)]
    saved = await granular.save_many([*observations, patient], WRITER)
    assert all(r.version == 1 for r in saved)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_core.observations WHERE patient_id = $1", patient.id
        )
        == 3
    )


async def test_save_many_is_all_or_nothing(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    good = make_patient()
    items = [good, make_observation(good.id), make_observation("patient-nobody1")]
    with pytest.raises(ReferentialIntegrityError, match="Patient reference") as caught:
        await granular.save_many(items, WRITER)
    assert caught.value.reference == "Patient/patient-nobody1"
    assert await db.fetchval("SELECT count(*) FROM hacs_core.patients") == 0
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0
    assert (
        await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events WHERE outcome = 'success'")
        == 0
    )


async def test_save_many_needs_write_for_every_type(adapter: Any, db: asyncpg.Connection) -> None:
    patient_writer = Actor(name="pw", role="system", permissions=["patient:write"])
    patient = make_patient()
    with pytest.raises(PermissionDeniedError, match="observation:write"):
        await adapter.save_many([patient, make_observation(patient.id)], patient_writer)
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0


async def test_caller_transaction_rolls_back_several_saves(
    adapter: Any, db: asyncpg.Connection
) -> None:
    from sqlalchemy import text

    first, second = make_patient(), make_patient(full_name="Ana Lopez", name=[])
    with pytest.raises(RuntimeError, match="abort"):
        async with adapter.transaction() as conn:
            await adapter.save(first, WRITER)
            await adapter.save(second, WRITER)
            await conn.execute(text("CREATE TEMP TABLE caller_sql_ran (x int)"))
            assert (await adapter.read(Patient, first.id, WRITER)).id == first.id
            raise RuntimeError("abort")
    assert await db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == 0
    assert await db.fetchval("SELECT count(*) FROM public.hacs_resources") == 0
    async with adapter.transaction():
        await adapter.save(make_patient(), WRITER)
        await adapter.save(make_patient(), WRITER)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_core.resource_versions WHERE operation = 'create'"
        )
        == 2
    )


async def test_search_filters_operators_and_keyset_pagination(adapter: Any) -> None:
    births = [date(1950 + i, 1, 1) for i in range(7)]
    for i, birth in enumerate(births):
        gender = "female" if i % 2 else "male"
        name = HumanName(use="official", family=f"Smith{i}", given=["Pat"])
        await adapter.save(
            make_patient(birth_date=birth, gender=gender, name=[name], full_name=None), WRITER
        )
    if isinstance(adapter, GranularPostgreSQLAdapter):
        page = await adapter.search(
            Patient,
            WRITER,
            filters={
                "birth_date__gte": date(1952, 1, 1),
                "birth_date__lt": "1956-01-01",
                "gender__in": ["female", "other"],
                "family_name__prefix": "Smith",
            },
        )
        assert sorted(p.birth_date.year for p in page) == [1953, 1955]
    seen: list[str] = []
    cursor = None
    while True:
        page = await adapter.search(Patient, WRITER, order_by="-created_at", limit=3, cursor=cursor)
        seen.extend(p.id for p in page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    "filters",
    [
        {"gender; DROP TABLE hacs_core.patients; --": "male"},
        {"gender__regex": ".*"},
        {"document": "x"},
        {"birth_date__gte": "not-a-date"},
        {"gender": "male\x00"},
        {"gender__in": []},
        {1: "x"},
    ],
)
async def test_hostile_or_bad_filters_are_rejected(
    granular: PostgreSQLAdapter, db: asyncpg.Connection, filters: dict[Any, Any]
) -> None:
    with pytest.raises(InvalidQueryError):
        await granular.search(Patient, ADMIN, filters=filters)
    assert await db.fetchval("SELECT to_regclass('hacs_core.patients') IS NOT NULL")


async def test_bad_sort_limit_and_cursor_are_rejected(granular: PostgreSQLAdapter) -> None:
    with pytest.raises(InvalidQueryError, match="sort field"):
        await granular.search(Patient, ADMIN, order_by="full_name; --")
    with pytest.raises(InvalidQueryError, match="limit"):
        await granular.search(Patient, ADMIN, limit=100000)
    with pytest.raises(InvalidQueryError, match="cursor"):
        await granular.search(Patient, ADMIN, cursor="garbage")


async def test_validation_errors_name_the_problem(granular: PostgreSQLAdapter) -> None:
    with pytest.raises(ResourceValidationError):
        await granular.save({"resource_type": "Patient"}, ADMIN)  # type: ignore[arg-type]
    bad = make_patient()
    bad.__dict__["full_name"] = "nul\x00byte"
    with pytest.raises(ResourceValidationError):
        await granular.save(bad, ADMIN)


async def test_save_many_bulk_creates_and_updates_with_versions_and_audit(
    adapter: Any, db: asyncpg.Connection
) -> None:
    patients = [make_patient(full_name=None, name=[HumanName(family=f"F{i}")]) for i in range(300)]
    await adapter.save_many(patients, WRITER)
    assert {p.version for p in patients} == {1}
    assert len({p.created_at for p in patients}) == 1  # one transaction, one timestamp
    again = await adapter.read(Patient, patients[7].id, WRITER)
    assert again == patients[7]
    for p in patients[:100]:
        p.gender = "female"
    await adapter.save_many(patients[:100], WRITER)
    assert {p.version for p in patients[:100]} == {2}
    assert (await adapter.read(Patient, patients[5].id, WRITER)).gender == "female"
    counts = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE operation = 'create') AS c, "
        "count(*) FILTER (WHERE operation = 'update') AS u FROM hacs_core.resource_versions"
    )
    assert tuple(counts) == (300, 100)
    audits = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE action = 'create') AS c, "
        "count(*) FILTER (WHERE action = 'update') AS u FROM hacs_audit.audit_events "
        "WHERE outcome = 'success'"
    )
    assert tuple(audits) == (300, 100)


async def test_save_many_stale_version_fails_whole_batch_and_restores_objects(
    adapter: Any, db: asyncpg.Connection
) -> None:
    first, second = make_patient(), make_patient()
    await adapter.save_many([first, second], WRITER)
    stale = second.model_copy()
    second.gender = "female"
    await adapter.save(second, WRITER)
    fresh = make_patient()
    first.gender = "other"
    stale.gender = "unknown"
    with pytest.raises(VersionConflictError):
        await adapter.save_many([fresh, first, stale], WRITER)
    assert fresh.version is None and first.version == 1 and stale.version == 1
    assert (await adapter.read(Patient, first.id, WRITER)).gender == "male"
    assert (
        await db.fetchval(
            "SELECT count(*) FROM hacs_core.resource_versions WHERE id = $1", fresh.id
        )
        == 0
    )
    # Retrying with fresh objects works: nothing of the failed batch is left behind.
    await adapter.save_many([fresh], WRITER)
    assert fresh.version == 1


async def test_save_many_redraws_colliding_generated_ids_and_refuses_explicit_ones(
    adapter: Any,
) -> None:
    stored = await adapter.save(make_patient(id="patient-bulk-explicit"), WRITER)
    clash = make_patient()
    clash.__dict__["id"] = stored.id
    clash.__pydantic_fields_set__.discard("id")
    await adapter.save_many([clash], WRITER)
    assert clash.id != stored.id and clash.version == 1
    with pytest.raises(VersionConflictError):
        await adapter.save_many([make_patient(id="patient-bulk-explicit")], WRITER)
    twice = [make_patient(id="patient-twice"), make_patient(id="patient-twice")]
    with pytest.raises(VersionConflictError):
        await adapter.save_many(twice, WRITER)


async def test_concurrent_calls_inside_one_transaction_share_it_safely(
    adapter: Any, db: asyncpg.Connection
) -> None:
    patients = [make_patient() for _ in range(6)]
    async with adapter.transaction():
        await asyncio.gather(*(adapter.save(p, WRITER) for p in patients))
    assert all(p.version == 1 for p in patients)
    assert (
        await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'create'")
        == 6
    )


async def test_unmodelled_types_are_stored_and_read_by_name(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    claim = BaseResource.model_validate(
        {"resource_type": "Claim", "id": "claim-1", "status": "active", "use": "claim"}
    )
    await granular.save_many([claim], ADMIN)
    back = await granular.read("Claim", "claim-1", ADMIN)
    assert back.model_dump() == claim.model_dump()
    assert (await granular.search("Claim", ADMIN, filters={"status": "active"}))[0].id == "claim-1"
    assert (
        await db.fetchval("SELECT resource_type FROM public.hacs_resources WHERE id = 'claim-1'")
        == "Claim"
    )
    # A registered name reads back as its class.
    saved = await granular.save(make_patient(), ADMIN)
    assert type(await granular.read("Patient", saved.id, ADMIN)) is Patient


async def test_save_many_can_null_dangling_references_for_imports(
    granular: PostgreSQLAdapter, db: asyncpg.Connection
) -> None:
    present = make_patient()
    await granular.save(present, WRITER)
    batch_patient = make_patient()
    observations = [
        make_observation(present.id),
        make_observation(batch_patient.id),
        make_observation("patient-elsewhere"),
        make_observation("patient-elsewhere"),
    ]
    result = await granular.save_many([*observations, batch_patient], WRITER, dangling="null")
    assert result.dangling_references == {"patients:patient-elsewhere": 2}
    rows = await db.fetch("SELECT id, patient_id FROM hacs_core.observations ORDER BY id")
    by_id = {r["id"]: r["patient_id"] for r in rows}
    assert by_id[observations[0].id] == present.id
    assert by_id[observations[1].id] == batch_patient.id
    assert by_id[observations[2].id] is None
    # The document keeps the reference exactly.
    stored = await granular.read(Observation, observations[2].id, WRITER)
    assert stored.subject is not None and stored.subject.reference == "Patient/patient-elsewhere"
