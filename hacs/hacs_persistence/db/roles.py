"""The roles hacs runs with, and the grants of the application and analyst roles, in one place.

docs/operations.md "Owner and application roles" is the contract: ``hacs_owner`` owns the schema
and runs the migrations, ``hacs_app`` is what the application connects as, ``hacs_analyst`` reads
the typed tables and the SQL on FHIR views and nothing else. The embedded default server creates
the same roles as a production deployment, and applies ``APP_GRANTS_SQL`` and
``ANALYST_GRANTS_SQL`` (the page's Steps 3 and 4, copied verbatim; a test keeps them identical)
after every migration.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Connection

__all__ = [
    "ANALYST_GRANTS_SQL",
    "ANALYST_ROLE",
    "APP_GRANTS_SQL",
    "APP_ROLE",
    "DATABASE",
    "OWNER_ROLE",
    "analyst_grant_statements",
    "app_grant_statements",
    "apply_analyst_grants",
    "apply_app_grants",
]

OWNER_ROLE = "hacs_owner"
APP_ROLE = "hacs_app"
ANALYST_ROLE = "hacs_analyst"
DATABASE = "hacs"

APP_GRANTS_SQL = """\
-- Step 3 (as hacs_owner, in the hacs database): the application role's privileges
GRANT USAGE ON SCHEMA hacs_core, hacs_clinical, hacs_registry, hacs_agents, hacs_audit, hacs_admin,
    public TO hacs_app;
-- Resources: read, insert and update (a delete is an update plus a tombstone version).
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA hacs_core, hacs_clinical, hacs_registry,
    hacs_agents TO hacs_app;
GRANT SELECT, INSERT, UPDATE ON public.hacs_resources TO hacs_app;
-- Versions are history: append and read, never change (erasure runs in the owner's function).
REVOKE UPDATE, DELETE, TRUNCATE ON hacs_core.resource_versions FROM hacs_app;
-- Derived rows (components, codings, identifiers): written by the versions' triggers only.
REVOKE INSERT, UPDATE ON hacs_core.observation_components, hacs_core.codings,
    hacs_core.identifiers FROM hacs_app;
-- The audit trail: append and read, never change.
GRANT SELECT, INSERT ON hacs_audit.audit_events TO hacs_app;
-- The adapter checks the schema revision before it starts.
GRANT SELECT ON hacs_admin.alembic_version, hacs_admin.system_configuration TO hacs_app;
-- Access tokens: verification reads the revocations; an administrator's revoke adds one.
GRANT SELECT, INSERT ON hacs_admin.token_revocations TO hacs_app;
-- Erasure (adapter.purge_patient) runs in this owner's function; see "Erasure" below.
GRANT EXECUTE ON FUNCTION hacs_admin.purge_patient(text, jsonb) TO hacs_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA hacs_core, hacs_clinical, hacs_registry, hacs_agents,
    hacs_audit TO hacs_app;
-- SQL on FHIR views (docs/views.md): the FHIR documents they read (every write keeps them in
-- step: an upsert, so UPDATE too), and the views themselves.
GRANT USAGE, CREATE ON SCHEMA hacs_views TO hacs_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON hacs_views.fhir_resources TO hacs_app;
-- LangGraph checkpoints (docs/agents.md): retention and delete_thread remove rows.
GRANT DELETE ON hacs_agents.langgraph_checkpoints, hacs_agents.langgraph_blobs,
    hacs_agents.langgraph_writes TO hacs_app;
-- Tables and sequences that later migrations create get the same privileges.
ALTER DEFAULT PRIVILEGES FOR ROLE hacs_owner IN SCHEMA hacs_core, hacs_clinical, hacs_registry,
    hacs_agents GRANT SELECT, INSERT, UPDATE ON TABLES TO hacs_app;
ALTER DEFAULT PRIVILEGES FOR ROLE hacs_owner IN SCHEMA hacs_core, hacs_clinical, hacs_registry,
    hacs_agents, hacs_audit GRANT USAGE ON SEQUENCES TO hacs_app;
"""

# The typed tables are named one by one, never "ALL TABLES IN SCHEMA" and never by default
# privileges: those schemas also hold the documents (resource_versions) and the <table>_current
# views that join them, and a migration that rebuilds such a view would hand it to the analyst.
ANALYST_GRANTS_SQL = """\
-- Step 4 (as hacs_owner, in the hacs database): the analyst role's privileges
-- Read-only: the typed tables and the SQL on FHIR views; no document, no audit row, no writes.
GRANT USAGE ON SCHEMA hacs_core, hacs_clinical, hacs_registry, hacs_agents, hacs_views
    TO hacs_analyst;
-- The typed tables, by name: the documents (hacs_core.resource_versions, public.hacs_resources,
-- hacs_views.fhir_resources) and the <table>_current views that join them are not granted.
GRANT SELECT ON hacs_core.encounters, hacs_core.observations, hacs_core.organizations,
    hacs_core.patients, hacs_core.practitioners TO hacs_analyst;
-- The derived rows: components, every coding, identifiers (docs/schema.md, "Derived rows").
GRANT SELECT ON hacs_core.observation_components, hacs_core.codings, hacs_core.identifiers
    TO hacs_analyst;
GRANT SELECT ON hacs_clinical.activity_definitions, hacs_clinical.allergy_intolerances,
    hacs_clinical.appointments, hacs_clinical.care_plans, hacs_clinical.care_teams,
    hacs_clinical.conditions, hacs_clinical.diagnostic_reports,
    hacs_clinical.document_references, hacs_clinical.evidence_variables,
    hacs_clinical.family_member_histories, hacs_clinical.goals, hacs_clinical.immunizations,
    hacs_clinical.libraries, hacs_clinical.medication_requests,
    hacs_clinical.medication_statements, hacs_clinical.medications,
    hacs_clinical.nutrition_orders, hacs_clinical.plan_definitions, hacs_clinical.procedures,
    hacs_clinical.risk_assessments, hacs_clinical.service_requests TO hacs_analyst;
GRANT SELECT ON hacs_registry.knowledge_items, hacs_registry.resource_definitions,
    hacs_registry.tool_definitions TO hacs_analyst;
GRANT SELECT ON hacs_agents.agent_messages, hacs_agents.agent_sessions,
    hacs_agents.memory_blocks TO hacs_analyst;
-- Nothing else, even if granted before: the documents and the audit trail.
REVOKE ALL ON hacs_core.resource_versions, public.hacs_resources, hacs_views.fhir_resources
    FROM hacs_analyst;
-- LangGraph's checkpoints are an agent's working state (serialized, may quote anything it read).
REVOKE ALL ON hacs_agents.langgraph_checkpoints, hacs_agents.langgraph_blobs,
    hacs_agents.langgraph_writes FROM hacs_analyst;
REVOKE ALL ON ALL TABLES IN SCHEMA hacs_audit, hacs_admin FROM hacs_analyst;
"""


def _statements(sql: str) -> list[str]:
    """A block split into statements (comment lines dropped), to run one by one."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", body, flags=re.M) if part.strip()]


def app_grant_statements() -> list[str]:
    """``APP_GRANTS_SQL`` split into statements (comment lines dropped), to run one by one."""
    return _statements(APP_GRANTS_SQL)


def analyst_grant_statements() -> list[str]:
    """``ANALYST_GRANTS_SQL`` split into statements, to run one by one."""
    return _statements(ANALYST_GRANTS_SQL)


def apply_app_grants(connection: Connection) -> None:
    """Run Step 3 on ``connection`` (as ``hacs_owner``, in a database migrated to head)."""
    for statement in app_grant_statements():
        connection.exec_driver_sql(statement)


def apply_analyst_grants(connection: Connection) -> None:
    """Run Step 4 on ``connection`` (as ``hacs_owner``, in a database migrated to head)."""
    for statement in analyst_grant_statements():
        connection.exec_driver_sql(statement)
