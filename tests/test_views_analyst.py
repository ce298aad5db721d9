"""docs/operations.md Step 4, executed: ``hacs_analyst`` reads views and typed tables, nothing else.

Reuses tests/test_roles.py's throwaway deployment (every sql block of the page, Step 4 included,
run as the role its title names). The application creates a view as ``hacs_app``; then,
connected as ``hacs_analyst``: the view and a typed table are readable, the documents, the audit
trail, writes and DDL are refused, and no relation or function grants more than that.
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from hacs_models import Actor
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.roles import ANALYST_GRANTS_SQL, analyst_grant_statements
from hacs_persistence.schema.base import Base
from hacs_persistence.views import create_view
from tests.factories import make_observation, make_patient
from tests.test_roles import Deployment, deployment, roles_server  # noqa: F401 (fixtures)
from tests.test_views import SYSTOLIC

pytestmark = pytest.mark.db

ADMIN = Actor(name="views-analyst", role="admin", permissions=["admin:*"])
ANALYST = "hacs_analyst"
TYPED_SCHEMAS = ("hacs_core", "hacs_clinical", "hacs_registry", "hacs_agents")
DOCUMENTS = ("hacs_core.resource_versions", "public.hacs_resources", "hacs_views.fhir_resources")
DENIED = r"permission denied"


# Tables of the typed schemas that are not typed columns: an agent's serialized working state.
NOT_FOR_ANALYSTS = {
    "hacs_agents.langgraph_checkpoints",
    "hacs_agents.langgraph_blobs",
    "hacs_agents.langgraph_writes",
}


def typed_tables() -> set[str]:
    """Every table of the typed schemas except the versions table (documents) and LangGraph's."""
    return {
        t.fullname
        for t in Base.metadata.tables.values()
        if t.schema in TYPED_SCHEMAS and t.name != "resource_versions"
    } - NOT_FOR_ANALYSTS


def granted_tables() -> set[str]:
    """The tables Step 4 grants SELECT on, read from its GRANT SELECT statements."""
    names: set[str] = set()
    for statement in analyst_grant_statements():
        found = re.fullmatch(r"GRANT SELECT ON (.*) TO hacs_analyst", statement, flags=re.S)
        if found:
            names |= {n.strip() for n in found.group(1).split(",")}
    return names


def test_step4_grants_exactly_the_typed_tables() -> None:
    # A new typed table (or a document table in a typed schema) must be decided on here.
    assert granted_tables() == typed_tables()
    assert "ALL TABLES IN SCHEMA hacs_core" not in ANALYST_GRANTS_SQL
    assert "DEFAULT PRIVILEGES" not in ANALYST_GRANTS_SQL


@pytest.fixture(scope="module")
async def with_view(deployment: Deployment) -> Deployment:  # noqa: F811
    """A patient, an observation and the ``systolic`` view, written as ``hacs_app``."""
    adapter = await create_postgres_adapter(deployment.url("hacs_app"))
    try:
        patient = await adapter.save(make_patient(), ADMIN)
        # No sync: the save, as hacs_app, writes the FHIR JSON the view reads.
        await adapter.save(make_observation(patient.id), ADMIN)
        await create_view(adapter, SYSTOLIC, actor=ADMIN)
    finally:
        await adapter.close()
    return deployment


async def test_the_analyst_reads_a_view_and_a_typed_table(with_view: Deployment) -> None:
    conn = await with_view.connect(ANALYST)
    try:
        rows = await conn.fetch("SELECT patient, value FROM hacs_views.systolic")
        assert [float(r["value"]) for r in rows] == [118.0]
        assert await conn.fetchval("SELECT count(*) FROM hacs_core.observations") == 1
        assert await conn.fetchval("SELECT count(*) FROM hacs_core.patients") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "relation", [*DOCUMENTS, "hacs_audit.audit_events", "hacs_core.patients_current"]
)
async def test_the_analyst_cannot_read_documents_or_audit_rows(
    with_view: Deployment, relation: str
) -> None:
    conn = await with_view.connect(ANALYST)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
            await conn.fetch(f"SELECT * FROM {relation} LIMIT 1")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO hacs_core.observations (id) VALUES ('x')",
        "UPDATE hacs_core.observations SET status = 'amended'",
        "DELETE FROM hacs_core.observations",
        "DELETE FROM hacs_views.fhir_resources",
        "INSERT INTO hacs_audit.audit_events (action, outcome) VALUES ('probe', 'success')",
        "TRUNCATE hacs_core.patients",
        "CREATE TABLE hacs_views.mine (x int)",
        "CREATE VIEW hacs_views.mine AS SELECT 1 AS x",
        "CREATE FUNCTION hacs_views.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TABLE public.mine (x int)",
        "CREATE TABLE hacs_core.mine (x int)",
        "CREATE SCHEMA mine",
        "CREATE TEMP TABLE mine (x int)",
    ],
)
async def test_the_analyst_cannot_write_or_create_anything(
    with_view: Deployment, statement: str
) -> None:
    conn = await with_view.connect(ANALYST)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_no_relation_grants_the_analyst_more_than_step4_and_the_view(
    with_view: Deployment,
) -> None:
    # has_table_privilege counts PUBLIC's grants and every role the analyst inherits.
    conn = await with_view.connect("hacs_owner")
    try:
        rows = await conn.fetch(
            "SELECT n.nspname || '.' || c.relname AS name, "
            "has_table_privilege('hacs_analyst', c.oid, 'SELECT') AS can_read, "
            "has_table_privilege('hacs_analyst', c.oid, "
            "'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS can_write, "
            "has_schema_privilege('hacs_analyst', n.oid, 'USAGE') AS in_schema "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    readable = {r["name"] for r in rows if r["can_read"] and r["in_schema"]}
    assert readable == typed_tables() | {"hacs_views.systolic"}
    assert [r["name"] for r in rows if r["can_write"]] == []


async def test_tables_created_later_are_not_readable_by_the_analyst(
    with_view: Deployment,
) -> None:
    # What a later migration (as the owner) or the application creates is not granted by
    # default: no ALTER DEFAULT PRIVILEGES names the analyst or PUBLIC.
    owner = await with_view.connect("hacs_owner")
    try:
        await owner.execute("CREATE TABLE hacs_core.later_documents (document jsonb)")
        await owner.execute("CREATE TABLE hacs_views.later_documents (document jsonb)")
        defaults = await owner.fetch("SELECT defaclacl::text AS acl FROM pg_default_acl")
    finally:
        await owner.close()
    assert not [d["acl"] for d in defaults if "hacs_analyst=" in d["acl"] or "{=" in d["acl"]]
    analyst = await with_view.connect(ANALYST)
    try:
        for table in ("hacs_core.later_documents", "hacs_views.later_documents"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
                await analyst.fetch(f"SELECT * FROM {table}")
    finally:
        await analyst.close()
        owner = await with_view.connect("hacs_owner")
        try:
            await owner.execute("DROP TABLE hacs_core.later_documents, hacs_views.later_documents")
        finally:
            await owner.close()


async def test_no_function_the_analyst_may_call_reads_documents_as_another_role(
    with_view: Deployment,
) -> None:
    # A SECURITY DEFINER function the analyst can reach would run with its owner's rights, and
    # a function of hacs_views that selects from a document table would hand documents out.
    # Trigger functions are left out: PostgreSQL refuses to call them other than as a trigger.
    conn = await with_view.connect("hacs_owner")
    try:
        rows = await conn.fetch(
            "SELECT n.nspname || '.' || p.proname AS name, p.prosecdef, p.prosrc, "
            "has_function_privilege('hacs_analyst', p.oid, 'EXECUTE') "
            "AND has_schema_privilege('hacs_analyst', n.oid, 'USAGE') AS callable "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND p.prorettype <> 'trigger'::regtype"
        )
    finally:
        await conn.close()
    callable_rows = [r for r in rows if r["callable"]]
    assert [r["name"] for r in callable_rows if r["prosecdef"]] == []
    reads_tables = re.compile(r"hacs_resources|resource_versions|fhir_resources|hacs_audit\.")
    views_functions = [r for r in callable_rows if r["name"].startswith("hacs_views.")]
    assert views_functions, "the view helpers must be callable by the analyst"
    assert [r["name"] for r in views_functions if reads_tables.search(r["prosrc"])] == []
