"""Initial hacs schema: extensions, the six schemas, typed tables, versions, audit, fallback.

Reviewed autogenerate output plus what autogenerate cannot see: the pgvector/pg_trgm check and
extensions, the schemas, the append-only audit triggers and the ``<table>_current`` views.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:39:14.788048+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from hacs_persistence.schema.vectors import configured_vector_dim
from hacs_persistence.schema.views import create_current_view, drop_current_view

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


HACS_SCHEMAS = ("hacs_core", "hacs_clinical", "hacs_registry", "hacs_agents", "hacs_audit")

# Typed tables that get a `<table>_current` view joining their current document.
TYPED_TABLES = (
    ("hacs_core", "patients"),
    ("hacs_core", "practitioners"),
    ("hacs_core", "organizations"),
    ("hacs_core", "encounters"),
    ("hacs_core", "observations"),
    ("hacs_clinical", "conditions"),
    ("hacs_clinical", "procedures"),
    ("hacs_clinical", "medications"),
    ("hacs_clinical", "medication_requests"),
    ("hacs_clinical", "medication_statements"),
    ("hacs_clinical", "allergy_intolerances"),
    ("hacs_clinical", "immunizations"),
    ("hacs_clinical", "diagnostic_reports"),
    ("hacs_clinical", "document_references"),
    ("hacs_clinical", "care_plans"),
    ("hacs_clinical", "care_teams"),
    ("hacs_clinical", "goals"),
    ("hacs_clinical", "service_requests"),
    ("hacs_clinical", "family_member_histories"),
    ("hacs_clinical", "risk_assessments"),
    ("hacs_clinical", "appointments"),
    ("hacs_clinical", "nutrition_orders"),
    ("hacs_clinical", "plan_definitions"),
    ("hacs_clinical", "activity_definitions"),
    ("hacs_clinical", "libraries"),
    ("hacs_clinical", "evidence_variables"),
    ("hacs_registry", "resource_definitions"),
    ("hacs_registry", "tool_definitions"),
    ("hacs_registry", "knowledge_items"),
    ("hacs_agents", "agent_messages"),
    ("hacs_agents", "memory_blocks"),
    ("hacs_agents", "agent_sessions"),
)


class MissingPrerequisiteError(RuntimeError):
    """The server cannot run hacs: an extension is missing or may not be created."""


def _check_extension(name: str, how_to_get: str) -> None:
    bind = op.get_bind()
    installed = bind.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name}
    ).first()
    if installed:
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}
    ).first()
    if not available:
        raise MissingPrerequisiteError(
            f"The PostgreSQL server has no '{name}' extension, which hacs requires. {how_to_get} "
            "Nothing was changed."
        )
    may_create = bind.execute(
        sa.text(
            "SELECT rolsuper OR (has_database_privilege(current_database(), 'CREATE') AND "
            "coalesce((SELECT trusted FROM pg_available_extension_versions v WHERE v.name = :n "
            "AND v.version = e.default_version), false)) "
            "FROM pg_roles, pg_available_extensions e WHERE rolname = current_user AND e.name = :n"
        ),
        {"n": name},
    ).scalar()
    if not may_create:
        raise MissingPrerequisiteError(
            f"The role running the migration may not create the '{name}' extension. Ask a "
            f"superuser to run `CREATE EXTENSION {name};` in this database, then migrate again. "
            "Nothing was changed."
        )


def _create_prerequisites() -> None:
    _check_extension(
        "vector",
        "Install pgvector 0.8 (e.g. the postgresql-NN-pgvector package, or use the embedded "
        "default database, which ships it).",
    )
    _check_extension("pg_trgm", "Install the PostgreSQL contrib modules (postgresql-contrib).")
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for schema in HACS_SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")


def _create_audit_guard() -> None:
    # The audit trail is append-only: the database itself refuses changes, whoever asks.
    op.execute(
        """
        CREATE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'hacs_audit.audit_events is append-only (% rejected)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE "
        "ON hacs_audit.audit_events FOR EACH ROW EXECUTE FUNCTION hacs_audit.reject_audit_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON hacs_audit.audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION hacs_audit.reject_audit_change()"
    )


def _create_current_views() -> None:
    for schema, table in TYPED_TABLES:
        create_current_view(op.execute, schema, table)


def _drop_current_views() -> None:
    for schema, table in TYPED_TABLES:
        drop_current_view(op.execute, schema, table, if_exists=True)


def upgrade() -> None:
    # The embedding dimension is chosen once, when the schema is first created:
    # `alembic -x vector_dim=384 upgrade head` or HACS_VECTOR_DIM; 1536 otherwise.
    vector_dim = configured_vector_dim()
    _create_prerequisites()
    # ### commands auto generated by Alembic, reviewed ###
    op.create_table(
        "system_configuration",
        sa.Column("id", sa.Integer(), sa.Identity(always=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_configuration")),
        sa.UniqueConstraint("key", name=op.f("uq_system_configuration_key")),
        schema="hacs_admin",
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "occurred_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("actor_role", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("purpose_of_use", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('success', 'denied', 'not_found', 'conflict', 'invalid', 'error')",
            name=op.f("ck_audit_events_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        schema="hacs_audit",
    )
    op.create_index(
        op.f("ix_audit_events_actor_id"),
        "audit_events",
        ["actor_id"],
        unique=False,
        schema="hacs_audit",
    )
    op.create_index(
        op.f("ix_audit_events_occurred_at"),
        "audit_events",
        ["occurred_at"],
        unique=False,
        schema="hacs_audit",
    )
    op.create_index(
        "ix_audit_events_resource",
        "audit_events",
        ["resource_type", "resource_id"],
        unique=False,
        schema="hacs_audit",
    )
    op.create_table(
        "resource_versions",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "changed_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("changed_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "operation IN ('create', 'update', 'delete')",
            name=op.f("ck_resource_versions_operation"),
        ),
        sa.PrimaryKeyConstraint(
            "resource_type", "id", "version", name=op.f("pk_resource_versions")
        ),
        schema="hacs_core",
    )
    op.create_table(
        "hacs_resources",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("resource_type", "id", name=op.f("pk_hacs_resources")),
        schema="public",
    )
    op.create_index(
        "ix_hacs_resources_document",
        "hacs_resources",
        ["document"],
        unique=False,
        schema="public",
        postgresql_using="gin",
        postgresql_ops={"document": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_hacs_resources_updated_at",
        "hacs_resources",
        ["updated_at"],
        unique=False,
        schema="public",
    )
    op.create_table(
        "activity_definitions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_activity_definitions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_definitions")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_activity_definitions_code"),
        "activity_definitions",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_activity_definitions_status"),
        "activity_definitions",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_activity_definitions_url"),
        "activity_definitions",
        ["url"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "evidence_variables",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("variable_type", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_evidence_variables_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_variables")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_evidence_variables_status"),
        "evidence_variables",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_evidence_variables_url"),
        "evidence_variables",
        ["url"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "libraries",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("type_code", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_libraries_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_libraries")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_libraries_status"), "libraries", ["status"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_libraries_url"), "libraries", ["url"], unique=False, schema="hacs_clinical"
    )
    op.create_table(
        "medications",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_medications_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medications")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medications_code"), "medications", ["code"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_medications_status"),
        "medications",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "plan_definitions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("type_code", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_plan_definitions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_definitions")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_plan_definitions_status"),
        "plan_definitions",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_plan_definitions_url"),
        "plan_definitions",
        ["url"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("type_code", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_organizations_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_organizations_name"), "organizations", ["name"], unique=False, schema="hacs_core"
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("family_name", sa.Text(), nullable=True),
        sa.Column("given_names", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("gender", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_patients_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_patients_birth_date"), "patients", ["birth_date"], unique=False, schema="hacs_core"
    )
    op.create_index(
        op.f("ix_patients_family_name"),
        "patients",
        ["family_name"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        "ix_patients_full_name_trgm",
        "patients",
        ["full_name"],
        unique=False,
        schema="hacs_core",
        postgresql_using="gin",
        postgresql_ops={"full_name": "gin_trgm_ops"},
    )
    op.create_index(
        op.f("ix_patients_gender"), "patients", ["gender"], unique=False, schema="hacs_core"
    )
    op.create_index(
        op.f("ix_patients_postal_code"),
        "patients",
        ["postal_code"],
        unique=False,
        schema="hacs_core",
    )
    op.create_table(
        "practitioners",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("family_name", sa.Text(), nullable=True),
        sa.Column("gender", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("identifier_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_practitioners_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practitioners")),
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_practitioners_family_name"),
        "practitioners",
        ["family_name"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_practitioners_identifier_value"),
        "practitioners",
        ["identifier_value"],
        unique=False,
        schema="hacs_core",
    )
    op.create_table(
        "knowledge_items",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("knowledge_type", sa.Text(), nullable=True),
        sa.Column("tags", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("embedding", Vector(vector_dim), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_knowledge_items_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_items")),
        schema="hacs_registry",
    )
    op.create_index(
        "ix_knowledge_items_embedding_hnsw",
        "knowledge_items",
        ["embedding"],
        unique=False,
        schema="hacs_registry",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        op.f("ix_knowledge_items_knowledge_type"),
        "knowledge_items",
        ["knowledge_type"],
        unique=False,
        schema="hacs_registry",
    )
    op.create_index(
        "ix_knowledge_items_tags",
        "knowledge_items",
        ["tags"],
        unique=False,
        schema="hacs_registry",
        postgresql_using="gin",
    )
    op.create_table(
        "resource_definitions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition_version", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_resource_definitions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_definitions")),
        sa.UniqueConstraint(
            "name",
            "definition_version",
            name=op.f("uq_resource_definitions_name_definition_version"),
        ),
        schema="hacs_registry",
    )
    op.create_index(
        op.f("ix_resource_definitions_status"),
        "resource_definitions",
        ["status"],
        unique=False,
        schema="hacs_registry",
    )
    op.create_table(
        "tool_definitions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("tool_version", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_tool_definitions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_definitions")),
        sa.UniqueConstraint(
            "name", "tool_version", name=op.f("uq_tool_definitions_name_tool_version")
        ),
        schema="hacs_registry",
    )
    op.create_index(
        op.f("ix_tool_definitions_domain"),
        "tool_definitions",
        ["domain"],
        unique=False,
        schema="hacs_registry",
    )
    op.create_index(
        op.f("ix_tool_definitions_status"),
        "tool_definitions",
        ["status"],
        unique=False,
        schema="hacs_registry",
    )
    op.create_table(
        "agent_messages",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_agent_messages_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_agent_messages_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_messages")),
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_messages_agent_id"),
        "agent_messages",
        ["agent_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_messages_patient_id"),
        "agent_messages",
        ["patient_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_messages_session_id"),
        "agent_messages",
        ["session_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("started_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("ended_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_agent_sessions_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_agent_sessions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sessions")),
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_sessions_agent_id"),
        "agent_sessions",
        ["agent_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_sessions_patient_id"),
        "agent_sessions",
        ["patient_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_agent_sessions_status"),
        "agent_sessions",
        ["status"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_table(
        "memory_blocks",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("memory_type", sa.Text(), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("importance_score", sa.Double(), nullable=True),
        sa.Column("embedding", Vector(vector_dim), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_memory_blocks_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_memory_blocks_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_blocks")),
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_memory_blocks_agent_id"),
        "memory_blocks",
        ["agent_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        "ix_memory_blocks_embedding_hnsw",
        "memory_blocks",
        ["embedding"],
        unique=False,
        schema="hacs_agents",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_index(
        op.f("ix_memory_blocks_memory_type"),
        "memory_blocks",
        ["memory_type"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        op.f("ix_memory_blocks_patient_id"),
        "memory_blocks",
        ["patient_id"],
        unique=False,
        schema="hacs_agents",
    )
    op.create_index(
        "ix_memory_blocks_tags",
        "memory_blocks",
        ["tags"],
        unique=False,
        schema="hacs_agents",
        postgresql_using="gin",
    )
    op.create_table(
        "allergy_intolerances",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("clinical_status", sa.Text(), nullable=True),
        sa.Column("verification_status", sa.Text(), nullable=True),
        sa.Column("criticality", sa.Text(), nullable=True),
        sa.Column("onset_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_allergy_intolerances_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_allergy_intolerances_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allergy_intolerances")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_allergy_intolerances_code"),
        "allergy_intolerances",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_allergy_intolerances_patient_id"),
        "allergy_intolerances",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("start_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("end_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_appointments_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_appointments_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_appointments_code"), "appointments", ["code"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_appointments_patient_id"),
        "appointments",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_appointments_start_at"),
        "appointments",
        ["start_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_appointments_status"),
        "appointments",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "care_teams",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("period_start", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("period_end", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_care_teams_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_care_teams_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_teams")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_care_teams_patient_id"),
        "care_teams",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_care_teams_status"), "care_teams", ["status"], unique=False, schema="hacs_clinical"
    )
    op.create_table(
        "document_references",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("category_code", sa.Text(), nullable=True),
        sa.Column("document_date", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_document_references_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_document_references_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_references")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_document_references_code"),
        "document_references",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_document_references_document_date"),
        "document_references",
        ["document_date"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_document_references_patient_id"),
        "document_references",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_document_references_status"),
        "document_references",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "family_member_histories",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("relationship_code", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_family_member_histories_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_family_member_histories_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_member_histories")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_family_member_histories_patient_id"),
        "family_member_histories",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_family_member_histories_status"),
        "family_member_histories",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "goals",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_goals_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_goals_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
        schema="hacs_clinical",
    )
    op.create_index(op.f("ix_goals_code"), "goals", ["code"], unique=False, schema="hacs_clinical")
    op.create_index(
        op.f("ix_goals_patient_id"), "goals", ["patient_id"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_goals_status"), "goals", ["status"], unique=False, schema="hacs_clinical"
    )
    op.create_table(
        "medication_statements",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("effective_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_medication_statements_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_medication_statements_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_statements")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_statements_code"),
        "medication_statements",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_statements_patient_id"),
        "medication_statements",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_statements_status"),
        "medication_statements",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "encounters",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("class_code", sa.Text(), nullable=True),
        sa.Column("type_code", sa.Text(), nullable=True),
        sa.Column("type_display", sa.Text(), nullable=True),
        sa.Column("period_start", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("period_end", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("service_provider_id", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_encounters_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_encounters_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_encounters_patient_id"),
        "encounters",
        ["patient_id"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_encounters_period_start"),
        "encounters",
        ["period_start"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_encounters_status"), "encounters", ["status"], unique=False, schema="hacs_core"
    )
    op.create_table(
        "care_plans",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("intent", sa.Text(), nullable=True),
        sa.Column("category_code", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("period_start", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("period_end", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_care_plans_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_care_plans_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_care_plans_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_plans")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_care_plans_encounter_id"),
        "care_plans",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_care_plans_patient_id"),
        "care_plans",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_care_plans_status"), "care_plans", ["status"], unique=False, schema="hacs_clinical"
    )
    op.create_table(
        "conditions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("clinical_status", sa.Text(), nullable=True),
        sa.Column("verification_status", sa.Text(), nullable=True),
        sa.Column("category_code", sa.Text(), nullable=True),
        sa.Column("onset_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("abatement_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_conditions_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_conditions_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_conditions_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conditions")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_conditions_clinical_status"),
        "conditions",
        ["clinical_status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_conditions_code"), "conditions", ["code"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_conditions_encounter_id"),
        "conditions",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_conditions_patient_id"),
        "conditions",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "diagnostic_reports",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("category_code", sa.Text(), nullable=True),
        sa.Column("effective_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("issued_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_diagnostic_reports_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_diagnostic_reports_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_diagnostic_reports_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_reports")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_diagnostic_reports_code"),
        "diagnostic_reports",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_diagnostic_reports_effective_at"),
        "diagnostic_reports",
        ["effective_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_diagnostic_reports_encounter_id"),
        "diagnostic_reports",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_diagnostic_reports_patient_id"),
        "diagnostic_reports",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_diagnostic_reports_status"),
        "diagnostic_reports",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "immunizations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("occurrence_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_immunizations_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_immunizations_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_immunizations_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_immunizations")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_immunizations_code"),
        "immunizations",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_immunizations_encounter_id"),
        "immunizations",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_immunizations_occurrence_at"),
        "immunizations",
        ["occurrence_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_immunizations_patient_id"),
        "immunizations",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_immunizations_status"),
        "immunizations",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "medication_requests",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("intent", sa.Text(), nullable=True),
        sa.Column("authored_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("requester_id", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_medication_requests_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_medication_requests_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_medication_requests_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_requests")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_requests_authored_at"),
        "medication_requests",
        ["authored_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_requests_code"),
        "medication_requests",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_requests_encounter_id"),
        "medication_requests",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_requests_patient_id"),
        "medication_requests",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_medication_requests_status"),
        "medication_requests",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "nutrition_orders",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("intent", sa.Text(), nullable=True),
        sa.Column("ordered_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_nutrition_orders_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_nutrition_orders_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_nutrition_orders_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nutrition_orders")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_nutrition_orders_encounter_id"),
        "nutrition_orders",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_nutrition_orders_patient_id"),
        "nutrition_orders",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_nutrition_orders_status"),
        "nutrition_orders",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "procedures",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("performed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_procedures_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_procedures_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_procedures_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedures")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_procedures_code"), "procedures", ["code"], unique=False, schema="hacs_clinical"
    )
    op.create_index(
        op.f("ix_procedures_encounter_id"),
        "procedures",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_procedures_patient_id"),
        "procedures",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_procedures_performed_at"),
        "procedures",
        ["performed_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_procedures_status"), "procedures", ["status"], unique=False, schema="hacs_clinical"
    )
    op.create_table(
        "risk_assessments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("occurrence_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_risk_assessments_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_risk_assessments_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_risk_assessments_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_assessments")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_risk_assessments_code"),
        "risk_assessments",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_risk_assessments_encounter_id"),
        "risk_assessments",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_risk_assessments_patient_id"),
        "risk_assessments",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_risk_assessments_status"),
        "risk_assessments",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("intent", sa.Text(), nullable=True),
        sa.Column("priority", sa.Text(), nullable=True),
        sa.Column("authored_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("occurrence_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_service_requests_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_service_requests_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_service_requests_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_requests")),
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_service_requests_authored_at"),
        "service_requests",
        ["authored_at"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_service_requests_code"),
        "service_requests",
        ["code"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_service_requests_encounter_id"),
        "service_requests",
        ["encounter_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_service_requests_patient_id"),
        "service_requests",
        ["patient_id"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_index(
        op.f("ix_service_requests_status"),
        "service_requests",
        ["status"],
        unique=False,
        schema="hacs_clinical",
    )
    op.create_table(
        "observations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("category_code", sa.Text(), nullable=True),
        sa.Column("value_numeric", sa.Numeric(), nullable=True),
        sa.Column("value_unit", sa.Text(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("interpretation_code", sa.Text(), nullable=True),
        sa.Column("effective_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("encounter_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_display", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["hacs_core.encounters.id"],
            name=op.f("fk_observations_encounter_id_encounters"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["hacs_core.patients.id"],
            name=op.f("fk_observations_patient_id_patients"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["resource_type", "id", "version"],
            [
                "hacs_core.resource_versions.resource_type",
                "hacs_core.resource_versions.id",
                "hacs_core.resource_versions.version",
            ],
            name=op.f("fk_observations_resource_type_resource_versions"),
            initially="IMMEDIATE",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_observations_code"), "observations", ["code"], unique=False, schema="hacs_core"
    )
    op.create_index(
        op.f("ix_observations_effective_at"),
        "observations",
        ["effective_at"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_observations_encounter_id"),
        "observations",
        ["encounter_id"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_observations_patient_id"),
        "observations",
        ["patient_id"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        "ix_observations_patient_id_code_effective_at",
        "observations",
        ["patient_id", "code", "effective_at"],
        unique=False,
        schema="hacs_core",
    )
    op.create_index(
        op.f("ix_observations_status"), "observations", ["status"], unique=False, schema="hacs_core"
    )
    # ### end Alembic commands ###
    _create_audit_guard()
    _create_current_views()


def downgrade() -> None:
    _drop_current_views()
    # ### commands auto generated by Alembic, reviewed ###
    op.drop_index(op.f("ix_observations_status"), table_name="observations", schema="hacs_core")
    op.drop_index(
        "ix_observations_patient_id_code_effective_at",
        table_name="observations",
        schema="hacs_core",
    )
    op.drop_index(op.f("ix_observations_patient_id"), table_name="observations", schema="hacs_core")
    op.drop_index(
        op.f("ix_observations_encounter_id"), table_name="observations", schema="hacs_core"
    )
    op.drop_index(
        op.f("ix_observations_effective_at"), table_name="observations", schema="hacs_core"
    )
    op.drop_index(op.f("ix_observations_code"), table_name="observations", schema="hacs_core")
    op.drop_table("observations", schema="hacs_core")
    op.drop_index(
        op.f("ix_service_requests_status"), table_name="service_requests", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_service_requests_patient_id"),
        table_name="service_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_service_requests_encounter_id"),
        table_name="service_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_service_requests_code"), table_name="service_requests", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_service_requests_authored_at"),
        table_name="service_requests",
        schema="hacs_clinical",
    )
    op.drop_table("service_requests", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_risk_assessments_status"), table_name="risk_assessments", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_risk_assessments_patient_id"),
        table_name="risk_assessments",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_risk_assessments_encounter_id"),
        table_name="risk_assessments",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_risk_assessments_code"), table_name="risk_assessments", schema="hacs_clinical"
    )
    op.drop_table("risk_assessments", schema="hacs_clinical")
    op.drop_index(op.f("ix_procedures_status"), table_name="procedures", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_procedures_performed_at"), table_name="procedures", schema="hacs_clinical"
    )
    op.drop_index(op.f("ix_procedures_patient_id"), table_name="procedures", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_procedures_encounter_id"), table_name="procedures", schema="hacs_clinical"
    )
    op.drop_index(op.f("ix_procedures_code"), table_name="procedures", schema="hacs_clinical")
    op.drop_table("procedures", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_nutrition_orders_status"), table_name="nutrition_orders", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_nutrition_orders_patient_id"),
        table_name="nutrition_orders",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_nutrition_orders_encounter_id"),
        table_name="nutrition_orders",
        schema="hacs_clinical",
    )
    op.drop_table("nutrition_orders", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_medication_requests_status"),
        table_name="medication_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_requests_patient_id"),
        table_name="medication_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_requests_encounter_id"),
        table_name="medication_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_requests_code"),
        table_name="medication_requests",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_requests_authored_at"),
        table_name="medication_requests",
        schema="hacs_clinical",
    )
    op.drop_table("medication_requests", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_immunizations_status"), table_name="immunizations", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_immunizations_patient_id"), table_name="immunizations", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_immunizations_occurrence_at"), table_name="immunizations", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_immunizations_encounter_id"), table_name="immunizations", schema="hacs_clinical"
    )
    op.drop_index(op.f("ix_immunizations_code"), table_name="immunizations", schema="hacs_clinical")
    op.drop_table("immunizations", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_diagnostic_reports_status"),
        table_name="diagnostic_reports",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_diagnostic_reports_patient_id"),
        table_name="diagnostic_reports",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_diagnostic_reports_encounter_id"),
        table_name="diagnostic_reports",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_diagnostic_reports_effective_at"),
        table_name="diagnostic_reports",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_diagnostic_reports_code"), table_name="diagnostic_reports", schema="hacs_clinical"
    )
    op.drop_table("diagnostic_reports", schema="hacs_clinical")
    op.drop_index(op.f("ix_conditions_patient_id"), table_name="conditions", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_conditions_encounter_id"), table_name="conditions", schema="hacs_clinical"
    )
    op.drop_index(op.f("ix_conditions_code"), table_name="conditions", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_conditions_clinical_status"), table_name="conditions", schema="hacs_clinical"
    )
    op.drop_table("conditions", schema="hacs_clinical")
    op.drop_index(op.f("ix_care_plans_status"), table_name="care_plans", schema="hacs_clinical")
    op.drop_index(op.f("ix_care_plans_patient_id"), table_name="care_plans", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_care_plans_encounter_id"), table_name="care_plans", schema="hacs_clinical"
    )
    op.drop_table("care_plans", schema="hacs_clinical")
    op.drop_index(op.f("ix_encounters_status"), table_name="encounters", schema="hacs_core")
    op.drop_index(op.f("ix_encounters_period_start"), table_name="encounters", schema="hacs_core")
    op.drop_index(op.f("ix_encounters_patient_id"), table_name="encounters", schema="hacs_core")
    op.drop_table("encounters", schema="hacs_core")
    op.drop_index(
        op.f("ix_medication_statements_status"),
        table_name="medication_statements",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_statements_patient_id"),
        table_name="medication_statements",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_medication_statements_code"),
        table_name="medication_statements",
        schema="hacs_clinical",
    )
    op.drop_table("medication_statements", schema="hacs_clinical")
    op.drop_index(op.f("ix_goals_status"), table_name="goals", schema="hacs_clinical")
    op.drop_index(op.f("ix_goals_patient_id"), table_name="goals", schema="hacs_clinical")
    op.drop_index(op.f("ix_goals_code"), table_name="goals", schema="hacs_clinical")
    op.drop_table("goals", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_family_member_histories_status"),
        table_name="family_member_histories",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_family_member_histories_patient_id"),
        table_name="family_member_histories",
        schema="hacs_clinical",
    )
    op.drop_table("family_member_histories", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_document_references_status"),
        table_name="document_references",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_document_references_patient_id"),
        table_name="document_references",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_document_references_document_date"),
        table_name="document_references",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_document_references_code"),
        table_name="document_references",
        schema="hacs_clinical",
    )
    op.drop_table("document_references", schema="hacs_clinical")
    op.drop_index(op.f("ix_care_teams_status"), table_name="care_teams", schema="hacs_clinical")
    op.drop_index(op.f("ix_care_teams_patient_id"), table_name="care_teams", schema="hacs_clinical")
    op.drop_table("care_teams", schema="hacs_clinical")
    op.drop_index(op.f("ix_appointments_status"), table_name="appointments", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_appointments_start_at"), table_name="appointments", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_appointments_patient_id"), table_name="appointments", schema="hacs_clinical"
    )
    op.drop_index(op.f("ix_appointments_code"), table_name="appointments", schema="hacs_clinical")
    op.drop_table("appointments", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_allergy_intolerances_patient_id"),
        table_name="allergy_intolerances",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_allergy_intolerances_code"),
        table_name="allergy_intolerances",
        schema="hacs_clinical",
    )
    op.drop_table("allergy_intolerances", schema="hacs_clinical")
    op.drop_index(
        "ix_memory_blocks_tags",
        table_name="memory_blocks",
        schema="hacs_agents",
        postgresql_using="gin",
    )
    op.drop_index(
        op.f("ix_memory_blocks_patient_id"), table_name="memory_blocks", schema="hacs_agents"
    )
    op.drop_index(
        op.f("ix_memory_blocks_memory_type"), table_name="memory_blocks", schema="hacs_agents"
    )
    op.drop_index(
        "ix_memory_blocks_embedding_hnsw",
        table_name="memory_blocks",
        schema="hacs_agents",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_index(
        op.f("ix_memory_blocks_agent_id"), table_name="memory_blocks", schema="hacs_agents"
    )
    op.drop_table("memory_blocks", schema="hacs_agents")
    op.drop_index(
        op.f("ix_agent_sessions_status"), table_name="agent_sessions", schema="hacs_agents"
    )
    op.drop_index(
        op.f("ix_agent_sessions_patient_id"), table_name="agent_sessions", schema="hacs_agents"
    )
    op.drop_index(
        op.f("ix_agent_sessions_agent_id"), table_name="agent_sessions", schema="hacs_agents"
    )
    op.drop_table("agent_sessions", schema="hacs_agents")
    op.drop_index(
        op.f("ix_agent_messages_session_id"), table_name="agent_messages", schema="hacs_agents"
    )
    op.drop_index(
        op.f("ix_agent_messages_patient_id"), table_name="agent_messages", schema="hacs_agents"
    )
    op.drop_index(
        op.f("ix_agent_messages_agent_id"), table_name="agent_messages", schema="hacs_agents"
    )
    op.drop_table("agent_messages", schema="hacs_agents")
    op.drop_index(
        op.f("ix_tool_definitions_status"), table_name="tool_definitions", schema="hacs_registry"
    )
    op.drop_index(
        op.f("ix_tool_definitions_domain"), table_name="tool_definitions", schema="hacs_registry"
    )
    op.drop_table("tool_definitions", schema="hacs_registry")
    op.drop_index(
        op.f("ix_resource_definitions_status"),
        table_name="resource_definitions",
        schema="hacs_registry",
    )
    op.drop_table("resource_definitions", schema="hacs_registry")
    op.drop_index(
        "ix_knowledge_items_tags",
        table_name="knowledge_items",
        schema="hacs_registry",
        postgresql_using="gin",
    )
    op.drop_index(
        op.f("ix_knowledge_items_knowledge_type"),
        table_name="knowledge_items",
        schema="hacs_registry",
    )
    op.drop_index(
        "ix_knowledge_items_embedding_hnsw",
        table_name="knowledge_items",
        schema="hacs_registry",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.drop_table("knowledge_items", schema="hacs_registry")
    op.drop_index(
        op.f("ix_practitioners_identifier_value"), table_name="practitioners", schema="hacs_core"
    )
    op.drop_index(
        op.f("ix_practitioners_family_name"), table_name="practitioners", schema="hacs_core"
    )
    op.drop_table("practitioners", schema="hacs_core")
    op.drop_index(op.f("ix_patients_postal_code"), table_name="patients", schema="hacs_core")
    op.drop_index(op.f("ix_patients_gender"), table_name="patients", schema="hacs_core")
    op.drop_index(
        "ix_patients_full_name_trgm",
        table_name="patients",
        schema="hacs_core",
        postgresql_using="gin",
        postgresql_ops={"full_name": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_patients_family_name"), table_name="patients", schema="hacs_core")
    op.drop_index(op.f("ix_patients_birth_date"), table_name="patients", schema="hacs_core")
    op.drop_table("patients", schema="hacs_core")
    op.drop_index(op.f("ix_organizations_name"), table_name="organizations", schema="hacs_core")
    op.drop_table("organizations", schema="hacs_core")
    op.drop_index(
        op.f("ix_plan_definitions_url"), table_name="plan_definitions", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_plan_definitions_status"), table_name="plan_definitions", schema="hacs_clinical"
    )
    op.drop_table("plan_definitions", schema="hacs_clinical")
    op.drop_index(op.f("ix_medications_status"), table_name="medications", schema="hacs_clinical")
    op.drop_index(op.f("ix_medications_code"), table_name="medications", schema="hacs_clinical")
    op.drop_table("medications", schema="hacs_clinical")
    op.drop_index(op.f("ix_libraries_url"), table_name="libraries", schema="hacs_clinical")
    op.drop_index(op.f("ix_libraries_status"), table_name="libraries", schema="hacs_clinical")
    op.drop_table("libraries", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_evidence_variables_url"), table_name="evidence_variables", schema="hacs_clinical"
    )
    op.drop_index(
        op.f("ix_evidence_variables_status"),
        table_name="evidence_variables",
        schema="hacs_clinical",
    )
    op.drop_table("evidence_variables", schema="hacs_clinical")
    op.drop_index(
        op.f("ix_activity_definitions_url"),
        table_name="activity_definitions",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_activity_definitions_status"),
        table_name="activity_definitions",
        schema="hacs_clinical",
    )
    op.drop_index(
        op.f("ix_activity_definitions_code"),
        table_name="activity_definitions",
        schema="hacs_clinical",
    )
    op.drop_table("activity_definitions", schema="hacs_clinical")
    op.drop_index("ix_hacs_resources_updated_at", table_name="hacs_resources", schema="public")
    op.drop_index(
        "ix_hacs_resources_document",
        table_name="hacs_resources",
        schema="public",
        postgresql_using="gin",
        postgresql_ops={"document": "jsonb_path_ops"},
    )
    op.drop_table("hacs_resources", schema="public")
    op.drop_table("resource_versions", schema="hacs_core")
    op.drop_index("ix_audit_events_resource", table_name="audit_events", schema="hacs_audit")
    op.drop_index(
        op.f("ix_audit_events_occurred_at"), table_name="audit_events", schema="hacs_audit"
    )
    op.drop_index(op.f("ix_audit_events_actor_id"), table_name="audit_events", schema="hacs_audit")
    op.drop_table("audit_events", schema="hacs_audit")
    op.drop_table("system_configuration", schema="hacs_admin")
    # ### end Alembic commands ###
    # The trigger went with its table; the function and schemas go now. hacs_admin stays: it
    # holds Alembic's version table. The extensions stay: other databases objects may use them.
    op.execute("DROP FUNCTION IF EXISTS hacs_audit.reject_audit_change()")
    for schema in HACS_SCHEMAS:
        op.execute(f"DROP SCHEMA IF EXISTS {schema}")
