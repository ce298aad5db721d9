"""Views over what hacs stores: FHIR names over hacs documents, the gate, bound values, the CLI.

The official suite (tests/test_sql_on_fhir.py) loads FHIR JSON straight into
``hacs_views.fhir_resources``; these tests go through the adapter's write path, then
``sync_fhir_resources`` (the exporter's ``to_fhir``), then the compiled SQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from hacs_cli.main import app
from hacs_models import Actor, Observation, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.adapters.fhir_snapshot import SYNC_UPSERT, snapshot_rows
from hacs_persistence.errors import PermissionDeniedError, SchemaNotMigratedError
from hacs_persistence.views import (
    ViewDefinitionError,
    compile_view,
    create_view,
    drop_view,
    sync_fhir_resources,
    view_rows,
)
from tests.conftest import db_connect
from tests.factories import make_observation, make_patient

ADMIN = Actor(name="views-admin", role="admin", permissions=["admin:*"])

SYSTOLIC = {
    "resourceType": "ViewDefinition",
    "name": "systolic",
    "resource": "Observation",
    "constant": [{"name": "loinc", "valueString": "http://loinc.org"}],
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "id"},
                {
                    "name": "code",
                    "path": "code.coding.where(system = %loinc).code.first()",
                    "type": "code",
                },
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            ]
        }
    ],
    "where": [{"path": "status = 'final'"}],
}


class World:
    def __init__(self, adapter: PostgreSQLAdapter, url: str, a: Patient, b: Patient) -> None:
        self.adapter, self.url, self.a, self.b = adapter, url, a, b
        self.observations: dict[str, Observation] = {}


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    adapter = await create_postgres_adapter(database_url)
    try:
        a = await adapter.save(make_patient(), ADMIN)
        b = await adapter.save(make_patient(full_name="Ana B"), ADMIN)
        state = World(adapter, database_url, a, b)
        for patient, value in ((a, 118), (b, 131.5)):
            saved = await adapter.save(make_observation(patient.id, value), ADMIN)
            state.observations[patient.id] = saved
        assert await sync_fhir_resources(adapter, "Patient", actor=ADMIN) == 2
        assert await sync_fhir_resources(adapter, "Observation", actor=ADMIN) == 2
        yield state
    finally:
        await adapter.close()


async def _rows(world: World, definition: Any, actor: Actor = ADMIN) -> list[dict[str, Any]]:
    return [row async for row in view_rows(world.adapter, definition, actor=actor)]


async def _audit(url: str, outcome: str) -> list[asyncpg.Record]:
    conn = await db_connect(url)
    try:
        return list(
            await conn.fetch(
                "SELECT actor_id, resource_type, result_count, resource_ids, patient_ids, detail "
                "FROM hacs_audit.audit_events WHERE action = 'view' AND outcome = $1 ORDER BY id",
                outcome,
            )
        )
    finally:
        await conn.close()


async def test_views_read_fhir_names_of_hacs_documents(world: World) -> None:
    # The stored document is hacs-shaped (snake_case): a path over it would find nothing.
    conn = await db_connect(world.url)
    try:
        stored = await conn.fetchval(
            "SELECT document FROM hacs_core.resource_versions WHERE resource_type = "
            "'Observation' AND id = $1",
            world.observations[world.a.id].id,
        )
    finally:
        await conn.close()
    assert "value_quantity" in json.loads(stored)
    rows = sorted(await _rows(world, SYSTOLIC), key=lambda r: r["value"])
    assert rows == [
        {
            "id": world.observations[world.a.id].id,
            "patient": world.a.id,
            "code": "8480-6",
            "value": 118,
            "unit": "mmHg",
            "effective": "2024-05-01T09:30:00Z",
        },
        {
            "id": world.observations[world.b.id].id,
            "patient": world.b.id,
            "code": "8480-6",
            "value": 131.5,
            "unit": "mmHg",
            "effective": "2024-05-01T09:30:00Z",
        },
    ]


async def test_scoped_actor_reads_its_patients_rows_only_and_reads_are_audited(
    world: World,
) -> None:
    nurse = Actor(
        name="nurse", role="nurse", permissions=["observation:read"], patient_ids=[world.a.id]
    )
    rows = await _rows(world, SYSTOLIC, nurse)
    assert [r["patient"] for r in rows] == [world.a.id]
    (audit,) = [r for r in await _audit(world.url, "success") if r["actor_id"] == nurse.id]
    assert audit["result_count"] == 1
    assert audit["resource_ids"] == [world.observations[world.a.id].id]
    assert audit["patient_ids"] == [world.a.id]
    assert audit["detail"].startswith("view=systolic")


async def test_actor_without_read_permission_is_refused_and_audited(world: World) -> None:
    clerk = Actor(name="clerk", role="researcher", permissions=["patient:read"])
    with pytest.raises(PermissionDeniedError):
        await _rows(world, SYSTOLIC, clerk)
    denied = [r for r in await _audit(world.url, "denied") if r["actor_id"] == clerk.id]
    assert [r["resource_type"] for r in denied] == ["Observation"]
    with pytest.raises(PermissionDeniedError):
        await create_view(world.adapter, SYSTOLIC, actor=clerk)


async def test_values_are_bound_parameters_never_sql_text(world: World) -> None:
    hostile = "x'); DROP TABLE hacs_views.fhir_resources; --"
    definition = {
        "name": "hostile",
        "resource": "Patient",
        "constant": [{"name": "v", "valueString": hostile}],
        "select": [{"column": [{"name": "id", "path": "id"}, {"name": "v", "path": "%v"}]}],
    }
    compiled = compile_view(definition)
    assert hostile not in compiled.sql
    assert hostile in json.dumps(compiled.params)
    rows = await _rows(world, definition)
    assert {r["v"] for r in rows} == {hostile}
    # The view body renders it as an escaped literal; the table is still there afterwards.
    name = await create_view(world.adapter, definition, actor=ADMIN)
    await drop_view(world.adapter, name, actor=ADMIN)
    assert len(await _rows(world, SYSTOLIC)) == 2


async def test_data_that_breaks_the_definition_is_a_typed_error(world: World) -> None:
    # Both patients have two given names: a non-collection column must refuse them.
    definition = {
        "resource": "Patient",
        "select": [{"column": [{"name": "g", "path": "name.given"}]}],
    }
    with pytest.raises(ViewDefinitionError, match="collection"):
        await _rows(world, definition)
    not_boolean = {**definition, "where": [{"path": "name.family"}]}
    not_boolean["select"] = [{"column": [{"name": "id", "path": "id"}]}]
    with pytest.raises(ViewDefinitionError, match="boolean"):
        await _rows(world, not_boolean)


async def test_created_view_is_a_postgresql_view_in_hacs_views(world: World) -> None:
    name = await create_view(world.adapter, SYSTOLIC, actor=ADMIN)
    conn = await db_connect(world.url)
    try:
        rows = await conn.fetch('SELECT * FROM hacs_views."systolic" ORDER BY value')
        types = dict(
            await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'hacs_views' AND table_name = 'systolic'"
            )
        )
    finally:
        await conn.close()
    assert [float(r["value"]) for r in rows] == [118, 131.5]
    assert types["value"] == "numeric"
    assert types["id"] == "text"
    with pytest.raises(ViewDefinitionError):
        await create_view(world.adapter, SYSTOLIC, actor=ADMIN)  # exists: no silent replace
    await create_view(world.adapter, SYSTOLIC, replace=True, actor=ADMIN)
    await drop_view(world.adapter, name, actor=ADMIN)
    with pytest.raises(ViewDefinitionError, match="no view"):
        await drop_view(world.adapter, name, actor=ADMIN)


def test_cli_create_rows_drop(world: World, tmp_path: Path) -> None:
    view = tmp_path / "systolic.json"
    view.write_text(json.dumps(SYSTOLIC), encoding="utf-8")

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, ["views", *args, "--database-url", world.url])

    synced = cli("sync", "Observation")
    assert synced.exit_code == 0, synced.output
    assert "Observation: 2 resources." in synced.output
    created = cli("create", str(view))
    assert created.exit_code == 0, created.output
    assert "hacs_views.systolic" in created.output
    listed = cli("rows", str(view))
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["value"] for r in rows) == [118, 131.5]
    assert set(rows[0]) == {"id", "patient", "code", "value", "unit", "effective"}
    assert cli("drop", "systolic").exit_code == 0
    again = cli("drop", "systolic")
    assert again.exit_code == 1
    assert "no view hacs_views.systolic" in again.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"select": []}), encoding="utf-8")
    refused = cli("rows", str(bad))
    assert refused.exit_code == 1
    assert "Invalid ViewDefinition" in refused.output


async def test_a_database_without_revision_0008_says_to_upgrade(world: World) -> None:
    conn = await db_connect(world.url)
    try:
        await conn.execute("DROP SCHEMA hacs_views CASCADE")
    finally:
        await conn.close()
    with pytest.raises(SchemaNotMigratedError, match="hacs db upgrade"):
        await _rows(world, SYSTOLIC)


async def test_decimal_columns_keep_every_digit(world: World) -> None:
    # Straight into the FHIR documents table: what a view reads is exact, whatever float says.
    conn = await db_connect(world.url)
    try:
        await conn.execute(
            "INSERT INTO hacs_views.fhir_resources (resource_type, id, resource) VALUES "
            "('Observation', 'exact', $1::jsonb)",
            '{"resourceType": "Observation", "id": "exact", "status": "final", '
            '"valueQuantity": {"value": 0.10000000000000000000001}}',
        )
    finally:
        await conn.close()
    definition = {
        "resource": "Observation",
        "select": [
            {"column": [{"name": "v", "path": "value.ofType(Quantity).value", "type": "decimal"}]}
        ],
        "where": [{"path": "id = 'exact'"}],
    }
    assert await _rows(world, definition) == [{"v": Decimal("0.10000000000000000000001")}]


async def test_there_is_no_way_around_the_gate(world: World) -> None:
    # Was: a bare AsyncEngine ran views, created and dropped them with no permission check
    # and no audit row.
    with pytest.raises(TypeError, match="access gate"):
        [row async for row in view_rows(world.adapter.engine, SYSTOLIC)]  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="access gate"):
        await create_view(world.adapter.engine, SYSTOLIC, name="by_engine")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="access gate"):
        await drop_view(world.adapter.engine, "by_engine")  # type: ignore[arg-type]


async def test_a_view_change_and_its_audit_row_commit_together(world: World) -> None:
    assert await create_view(world.adapter, SYSTOLIC, name="audited", actor=ADMIN) == "audited"
    with pytest.raises(ViewDefinitionError, match="exists"):
        await create_view(world.adapter, SYSTOLIC, name="audited", actor=ADMIN)
    await drop_view(world.adapter, "audited", actor=ADMIN)
    conn = await db_connect(world.url)
    try:
        rows = await conn.fetch(
            "SELECT detail, outcome FROM hacs_audit.audit_events "
            "WHERE action = 'view' AND detail IN ('create view=audited', 'drop view=audited')"
        )
    finally:
        await conn.close()
    # One success row each: the refused second create left none.
    assert sorted((r["detail"], r["outcome"]) for r in rows) == [
        ("create view=audited", "success"),
        ("drop view=audited", "success"),
    ]


async def test_a_sync_converts_and_writes_a_page_at_a_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: every document of the type converted into one list, then one INSERT (about 700k
    # observations in the full bench's sync).
    from hacs_persistence.views import api

    for value in (90, 91, 92):
        await world.adapter.save(make_observation(world.a.id, value), ADMIN)
    pages: list[int] = []

    def recorded(pairs: Any) -> dict[str, list[Any]]:
        pages.append(len(pairs))
        return snapshot_rows(pairs)

    monkeypatch.setattr(api, "SYNC_PAGE", 2)
    monkeypatch.setattr(api, "snapshot_rows", recorded)
    assert await sync_fhir_resources(world.adapter, "Observation", actor=ADMIN) == 5
    assert pages == [2, 2, 1]
    audit = await _audit(world.url, "success")
    assert audit[-1]["detail"] == "sync" and audit[-1]["result_count"] == 5
    assert len(await _rows(world, SYSTOLIC)) == 5


async def test_a_sync_page_never_replaces_a_newer_version_written_meanwhile(world: World) -> None:
    # A write that commits while a sync reads puts its newer row in after the sync's DELETE.
    observation = world.observations[world.a.id]
    conn = await db_connect(world.url)
    try:
        await conn.execute(
            "UPDATE hacs_views.fhir_resources SET version = 7 WHERE id = $1", observation.id
        )
        async with world.adapter.transaction() as tx:
            await tx.execute(
                SYNC_UPSERT, snapshot_rows([(world.adapter.mapping("Observation"), observation)])
            )
        assert (
            await conn.fetchval(
                "SELECT version FROM hacs_views.fhir_resources WHERE id = $1", observation.id
            )
            == 7
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("name.trace('x')", "trace\\(\\) is not supported"),
        ("name.given.first(1)", "takes 0 argument"),
        ("name[given]", "indexer must be an integer"),
        ("name.", "expected a name"),
        ("name.where(use = 'x'", "expected '\\)'"),
        ("%nope", "not a constant of the view"),
    ],
)
def test_unsupported_or_malformed_fhirpath_is_refused_at_compile_time(
    path: str, message: str
) -> None:
    definition = {"resource": "Patient", "select": [{"column": [{"name": "c", "path": path}]}]}
    with pytest.raises(ViewDefinitionError, match=message):
        compile_view(definition)


def test_view_and_column_names_must_be_identifiers() -> None:
    with pytest.raises(ViewDefinitionError, match="column name"):
        compile_view(
            {"resource": "Patient", "select": [{"column": [{"name": "a b", "path": "id"}]}]}
        )
    with pytest.raises(ViewDefinitionError, match="view name"):
        compile_view({"resource": "Patient", "name": 'x"; drop', "select": [{"column": []}]})
    with pytest.raises(ViewDefinitionError, match="unique"):
        compile_view(
            {
                "resource": "Patient",
                "select": [{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "id"}]}],
            }
        )
