"""Views read typed columns: ``stored_typed``, ``observations.effective_text``, ``reference_key``.

A compiled view over a type with a typed table takes its rows from that table
(``hacs_persistence.views.typed``) when the resource is stored there, and from the FHIR JSON
alone when it is not (the JSONB adapter, rows written by hand): ``stored_typed`` says which,
set by every write from now on and here for the rows already there; two partial indexes keep
both halves of a view one index probe away, and a third finds the Observations some typed
column is not exact for (``ix_observations_view_fallback``).

``hacs_core.observations.effective_text`` holds ``effectiveDateTime`` exactly as the FHIR JSON
has it (offset, fraction digits), so a view's ``effective.ofType(dateTime)`` needs no document;
existing rows are back-filled from their FHIR JSON (rows without one keep NULL, and views read
the document for them). ``observations_current`` is recreated around the change.

``hacs_views.reference_key`` reads a reference exactly as the typed ``patient_id`` columns do.

Compiled views take ``subject.getReferenceKey(Patient)`` from the typed ``patient_id`` column
(``hacs_persistence.views.typed``), which ``schema.sources.parse_reference`` fills. The two must
agree on every reference string, so the SQL function now also drops a ``?query`` and trailing
slashes, ignores ``#contained`` and ``urn:`` references, and takes the type only at the start or
after a ``/`` (``xPatient/1`` is not a Patient). Plain ``Type/id`` references, the only kind the
SQL on FHIR suite uses, read as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hacs_persistence.schema.views import current_view_rebuilt

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The typed tables at this revision (their rows carry resource_type and id).
_TYPED_TABLES = (
    "hacs_agents.agent_messages",
    "hacs_agents.agent_sessions",
    "hacs_agents.memory_blocks",
    "hacs_clinical.activity_definitions",
    "hacs_clinical.allergy_intolerances",
    "hacs_clinical.appointments",
    "hacs_clinical.care_plans",
    "hacs_clinical.care_teams",
    "hacs_clinical.conditions",
    "hacs_clinical.diagnostic_reports",
    "hacs_clinical.document_references",
    "hacs_clinical.evidence_variables",
    "hacs_clinical.family_member_histories",
    "hacs_clinical.goals",
    "hacs_clinical.immunizations",
    "hacs_clinical.libraries",
    "hacs_clinical.medication_requests",
    "hacs_clinical.medication_statements",
    "hacs_clinical.medications",
    "hacs_clinical.nutrition_orders",
    "hacs_clinical.plan_definitions",
    "hacs_clinical.procedures",
    "hacs_clinical.risk_assessments",
    "hacs_clinical.service_requests",
    "hacs_core.encounters",
    "hacs_core.observations",
    "hacs_core.organizations",
    "hacs_core.patients",
    "hacs_core.practitioners",
    "hacs_registry.knowledge_items",
    "hacs_registry.resource_definitions",
    "hacs_registry.tool_definitions",
)

_NEW = r"""
CREATE OR REPLACE FUNCTION hacs_views.reference_key(r jsonb, wanted text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN wanted IS NULL OR m[1] = wanted THEN m[2] END
    FROM (SELECT r ->> 'reference' AS ref) AS s,
        regexp_match(
            rtrim(split_part(s.ref, '?', 1), '/'),
            '(?:^|/)([A-Za-z]+)/([^/]+)(?:/_history/[^/]+)?$'
        ) AS m
    WHERE s.ref !~ '^(#|urn:)'
$$;
"""

_OLD = r"""
CREATE OR REPLACE FUNCTION hacs_views.reference_key(r jsonb, wanted text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN wanted IS NULL OR m[1] = wanted THEN m[2] END
    FROM regexp_match(r ->> 'reference', '([A-Za-z]+)/([^/]+)(/_history/[^/]+)?$') AS m
$$;
"""


def upgrade() -> None:
    op.execute(_NEW)
    op.execute(
        "ALTER TABLE hacs_views.fhir_resources "
        "ADD COLUMN stored_typed boolean NOT NULL DEFAULT false"
    )
    for table in _TYPED_TABLES:
        op.execute(
            f"UPDATE hacs_views.fhir_resources AS r SET stored_typed = true FROM {table} AS t "
            "WHERE r.resource_type = t.resource_type AND r.id = t.id AND t.deleted_at IS NULL"
        )
    with current_view_rebuilt(op.execute, "hacs_core", "observations"):
        op.add_column(
            "observations",
            sa.Column("effective_text", sa.Text(), nullable=True),
            schema="hacs_core",
        )
        op.execute(
            "UPDATE hacs_core.observations AS t "
            "SET effective_text = r.resource ->> 'effectiveDateTime' "
            "FROM hacs_views.fhir_resources AS r "
            "WHERE r.resource_type = t.resource_type AND r.id = t.id AND r.stored_typed "
            "AND jsonb_typeof(r.resource -> 'effectiveDateTime') = 'string'"
        )
    # The rows views read from the FHIR JSON (schema.core.OBSERVATION_VIEW_FALLBACK).
    op.create_index(
        "ix_observations_view_fallback",
        "observations",
        ["code"],
        schema="hacs_core",
        postgresql_where=sa.text(
            "(patient_id IS NULL) OR (value_unit IS NULL) "
            "OR (effective_text IS NULL AND effective_at IS NOT NULL)"
        ),
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_fhir_resources_typed "
        "ON hacs_views.fhir_resources (resource_type, id) WHERE stored_typed"
    )
    op.execute(
        "CREATE INDEX ix_fhir_resources_untyped "
        "ON hacs_views.fhir_resources (resource_type) WHERE NOT stored_typed"
    )


def downgrade() -> None:
    op.drop_index("ix_observations_view_fallback", "observations", schema="hacs_core")
    with current_view_rebuilt(op.execute, "hacs_core", "observations"):
        op.drop_column("observations", "effective_text", schema="hacs_core")
    op.execute("DROP INDEX hacs_views.ix_fhir_resources_untyped")
    op.execute("DROP INDEX hacs_views.ix_fhir_resources_typed")
    op.execute("ALTER TABLE hacs_views.fhir_resources DROP COLUMN stored_typed")
    op.execute(_OLD)
