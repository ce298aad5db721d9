"""The two roles hacs runs with, and the application role's grants, in one place.

docs/operations.md "Owner and application roles" is the contract: ``hacs_owner`` owns the schema
and runs the migrations, ``hacs_app`` is what the application connects as. The embedded default
server creates the same roles as a production deployment, and applies ``APP_GRANTS_SQL`` (the
page's Step 3, copied verbatim; a test keeps the two identical) after every migration.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import Connection

__all__ = [
    "APP_GRANTS_SQL",
    "APP_ROLE",
    "DATABASE",
    "OWNER_ROLE",
    "app_grant_statements",
    "apply_app_grants",
]

OWNER_ROLE = "hacs_owner"
APP_ROLE = "hacs_app"
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
-- SQL on FHIR views (docs/views.md): the FHIR documents they read, and the views themselves.
GRANT USAGE, CREATE ON SCHEMA hacs_views TO hacs_app;
GRANT SELECT, INSERT, DELETE ON hacs_views.fhir_resources TO hacs_app;
-- Tables and sequences that later migrations create get the same privileges.
ALTER DEFAULT PRIVILEGES FOR ROLE hacs_owner IN SCHEMA hacs_core, hacs_clinical, hacs_registry,
    hacs_agents GRANT SELECT, INSERT, UPDATE ON TABLES TO hacs_app;
ALTER DEFAULT PRIVILEGES FOR ROLE hacs_owner IN SCHEMA hacs_core, hacs_clinical, hacs_registry,
    hacs_agents, hacs_audit GRANT USAGE ON SEQUENCES TO hacs_app;
"""


def app_grant_statements() -> list[str]:
    """``APP_GRANTS_SQL`` split into statements (comment lines dropped), to run one by one."""
    body = "\n".join(
        line for line in APP_GRANTS_SQL.splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in re.split(r";\s*$", body, flags=re.M) if part.strip()]


def apply_app_grants(connection: Connection) -> None:
    """Run Step 3 on ``connection`` (as ``hacs_owner``, in a database migrated to head)."""
    for statement in app_grant_statements():
        connection.exec_driver_sql(statement)
