"""Derived rows: observation components, codings and identifiers, kept in step by triggers.

``hacs_core.observation_components``, ``hacs_core.codings`` and ``hacs_core.identifiers`` hold
values that live inside documents (an Observation's ``component``, every coding of every
CodeableConcept, every ``identifier``) as indexed rows, so SQL can join on them.

Every write path appends to (or, for a purge, deletes from) ``hacs_core.resource_versions``:
save, update, delete (a tombstone version), restore, ``save_many`` (COPY and the set-based
update), the FHIR import, ``hacs_admin.purge_patient`` and an owner's plain SQL. Three
statement-level ``AFTER`` triggers with transition tables there (one per event: PostgreSQL
allows transition tables on single-event triggers only) rebuild the rows of every resource the
statement touched from its current version, the highest one left: nothing when that is a delete
tombstone or when no version is left. Statement-level and set-based, so a COPY of 100,000
versions costs one rebuild, not 100,000.

The trigger function is ``SECURITY DEFINER`` (owned by the migrating role): the application
role may only read the derived tables (docs/operations.md Step 3 revokes the rest), yet its
writes keep them in step. It runs with ``timezone = UTC`` so a date-time without an offset
means what it means to the typed columns (UTC).

Values are computed as the typed columns compute theirs (``schema/sources.py``): a concept's
system, code and display are each the first coding that has one; ``display`` is the concept's
``text``, else that display; a patient is the id of a ``Patient/<id>`` reference (relative,
absolute or versioned; ``urn:`` and ``#`` references are none); numbers are
``value_quantity.value``, else ``value_integer``. The tables have no foreign keys: they are
rebuilt from documents, and an import may store a reference before its target.

The back-fill builds the rows of every stored resource from its current version.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions and triggers, one statement each (asyncpg prepares statements one at a time).
_FUNCTIONS = [
    # The helpers are PL/pgSQL, not SQL: a SQL function that cannot be inlined is planned again
    # in every statement that calls it, and the trigger runs them in every write.
    # The id of a reference to a `target` resource, as sources.parse_reference reads it.
    r"""
CREATE FUNCTION hacs_core.derived_reference_id(r jsonb, target text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    ref text;
    p text[];
    n integer;
BEGIN
    ref := CASE jsonb_typeof(r)
        WHEN 'string' THEN r #>> '{}'
        WHEN 'object' THEN CASE WHEN jsonb_typeof(r -> 'reference') = 'string'
                                THEN r ->> 'reference' END
    END;
    IF ref IS NULL OR ref = '' OR starts_with(ref, '#') OR starts_with(ref, 'urn:') THEN
        RETURN NULL;
    END IF;
    p := string_to_array(rtrim(split_part(ref, '?', 1), '/'), '/');
    n := cardinality(p);
    IF n >= 4 AND p[n - 1] = '_history' THEN
        n := n - 2;
    END IF;
    IF n < 2 OR p[n - 1] IS DISTINCT FROM target THEN
        RETURN NULL;
    END IF;
    RETURN p[n];
END
$fn$
""",
    # A FHIR date or dateTime string as an instant (a partial date: its first moment); else NULL.
    r"""
CREATE FUNCTION hacs_core.derived_instant(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN CASE
        WHEN jsonb_typeof(v) IS DISTINCT FROM 'string' THEN NULL
        WHEN v #>> '{}' ~ '^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$'
            THEN CAST(v #>> '{}' AS timestamptz)
        WHEN v #>> '{}' ~ '^\d{4}-\d{2}$' THEN CAST((v #>> '{}') || '-01' AS timestamptz)
        WHEN v #>> '{}' ~ '^\d{4}$' THEN CAST((v #>> '{}') || '-01-01' AS timestamptz)
    END;
END
$fn$
""",
    # A JSON number (or a decimal literal kept as a string) as numeric; else NULL.
    r"""
CREATE FUNCTION hacs_core.derived_number(v jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN CASE jsonb_typeof(v)
        WHEN 'number' THEN CAST(v #>> '{}' AS numeric)
        WHEN 'string' THEN CASE WHEN v #>> '{}' ~ '^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$'
                                THEN CAST(v #>> '{}' AS numeric) END
    END;
END
$fn$
""",
    # A part (system, code, display) of a concept: the first coding that has it (sources.coding).
    r"""
CREATE FUNCTION hacs_core.derived_coding(concept jsonb, part text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    x jsonb := CASE WHEN jsonb_typeof(concept) = 'array' THEN concept -> 0 ELSE concept END;
    item jsonb;
BEGIN
    IF jsonb_typeof(x -> 'coding') IS DISTINCT FROM 'array' THEN
        RETURN NULL;
    END IF;
    FOR item IN SELECT jsonb_array_elements(x -> 'coding') LOOP
        IF jsonb_typeof(item) = 'object' AND item ->> part IS NOT NULL THEN
            RETURN item ->> part;
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$
""",
    # A concept's text, else its first display (sources.text_of).
    r"""
CREATE FUNCTION hacs_core.derived_text(concept jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN CASE jsonb_typeof(concept)
        WHEN 'string' THEN concept #>> '{}'
        WHEN 'object' THEN coalesce(concept ->> 'text',
                                    hacs_core.derived_coding(concept, 'display'))
        ELSE hacs_core.derived_coding(concept, 'display')
    END;
END
$fn$
""",
    # The current version of each resource (rts[i], ids[i]), unless it is a delete tombstone.
    r"""
CREATE FUNCTION hacs_core.derived_current(rts text[], ids text[])
RETURNS TABLE (resource_type text, id text, document jsonb)
LANGUAGE sql STABLE AS $fn$
SELECT k.rt, k.id, v.document
FROM unnest(rts, ids) AS k(rt, id)
CROSS JOIN LATERAL (
    SELECT x.operation, x.document FROM hacs_core.resource_versions x
    WHERE x.resource_type = k.rt AND x.id = k.id
    ORDER BY x.version DESC LIMIT 1) AS v
WHERE v.operation <> 'delete'
$fn$
""",
    # Rebuild the derived rows of the resources (rts[i], ids[i]) from their current versions.
    # Generic plans: the statements' plans do not depend on the keys (index lookups per key),
    # and planning the recursive walk anew on every write cost five times its execution.
    r"""
CREATE FUNCTION hacs_core.rebuild_derived_rows(rts text[], ids text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET timezone = 'UTC'
SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
    DELETE FROM hacs_core.observation_components d
    USING unnest(rts, ids) AS k(rt, id)
    WHERE k.rt = 'Observation' AND d.observation_id = k.id;
    DELETE FROM hacs_core.codings d
    USING unnest(rts, ids) AS k(rt, id)
    WHERE d.resource_type = k.rt AND d.resource_id = k.id;
    DELETE FROM hacs_core.identifiers d
    USING unnest(rts, ids) AS k(rt, id)
    WHERE d.resource_type = k.rt AND d.resource_id = k.id;

    INSERT INTO hacs_core.observation_components (
        observation_id, position, patient_id, code_system, code, display,
        value_numeric, value_unit, value_text, effective_at)
    SELECT c.id, (p.n - 1)::integer,
           hacs_core.derived_reference_id(c.document -> 'subject', 'Patient'),
           hacs_core.derived_coding(p.item -> 'code', 'system'),
           hacs_core.derived_coding(p.item -> 'code', 'code'),
           hacs_core.derived_text(p.item -> 'code'),
           coalesce(hacs_core.derived_number(p.item #> '{value_quantity,value}'),
                    hacs_core.derived_number(p.item -> 'value_integer')),
           p.item #>> '{value_quantity,unit}',
           coalesce(p.item ->> 'value_string',
                    hacs_core.derived_text(p.item -> 'value_codeable_concept')),
           coalesce(hacs_core.derived_instant(c.document -> 'effective_date_time'),
                    hacs_core.derived_instant(c.document #> '{effective_period,start}'))
    FROM hacs_core.derived_current(rts, ids) AS c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.document -> 'component') = 'array'
             THEN c.document -> 'component' END) WITH ORDINALITY AS p(item, n)
    WHERE c.resource_type = 'Observation' AND jsonb_typeof(p.item) = 'object';

    -- Every object or list of the document, with its path; a concept (an object with a
    -- `coding` list) ends its branch.
    INSERT INTO hacs_core.codings (
        resource_type, resource_id, element, position, system, code, display)
    WITH RECURSIVE node(rt, id, path, value) AS (
        SELECT c.resource_type, c.id, e.key, e.value
        FROM hacs_core.derived_current(rts, ids) AS c
        CROSS JOIN LATERAL jsonb_each(c.document) AS e(key, value)
        WHERE jsonb_typeof(e.value) IN ('object', 'array')
        UNION ALL
        SELECT n.rt, n.id,
               CASE WHEN jsonb_typeof(n.value) = 'object' THEN n.path || '.' || ch.k
                    ELSE n.path || '[' || ch.k || ']' END,
               ch.v
        FROM node n
        CROSS JOIN LATERAL (
            SELECT e.key AS k, e.value AS v
            FROM jsonb_each(CASE WHEN jsonb_typeof(n.value) = 'object'
                                      AND jsonb_typeof(n.value -> 'coding') IS DISTINCT FROM 'array'
                                 THEN n.value END) AS e
            UNION ALL
            SELECT CAST(a.i - 1 AS text), a.v
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n.value) = 'array'
                                           THEN n.value END) WITH ORDINALITY AS a(v, i)
        ) AS ch
        WHERE jsonb_typeof(ch.v) IN ('object', 'array')
    )
    SELECT n.rt, n.id, n.path, (g.i - 1)::integer,
           g.item ->> 'system', g.item ->> 'code', g.item ->> 'display'
    FROM node n
    CROSS JOIN LATERAL jsonb_array_elements(n.value -> 'coding') WITH ORDINALITY AS g(item, i)
    WHERE jsonb_typeof(n.value) = 'object' AND jsonb_typeof(n.value -> 'coding') = 'array'
          AND jsonb_typeof(g.item) = 'object';

    INSERT INTO hacs_core.identifiers (
        resource_type, resource_id, position, system, value, use, type_code)
    SELECT c.resource_type, c.id, (i.n - 1)::integer, i.item ->> 'system', i.item ->> 'value',
           i.item ->> 'use', hacs_core.derived_coding(i.item -> 'type', 'code')
    FROM hacs_core.derived_current(rts, ids) AS c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(c.document -> 'identifier')
            WHEN 'array' THEN c.document -> 'identifier'
            WHEN 'object' THEN jsonb_build_array(c.document -> 'identifier') END)
        WITH ORDINALITY AS i(item, n)
    WHERE jsonb_typeof(i.item) = 'object';
END
$fn$
""",
    # The trigger: the resources the statement touched (both sides of an update).
    r"""
CREATE FUNCTION hacs_core.sync_derived_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    rts text[];
    ids text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(k.resource_type), array_agg(k.id) INTO rts, ids
        FROM (SELECT resource_type, id FROM changed
              UNION SELECT resource_type, id FROM gone) AS k;
    ELSE
        SELECT array_agg(k.resource_type), array_agg(k.id) INTO rts, ids
        FROM (SELECT DISTINCT resource_type, id FROM changed) AS k;
    END IF;
    IF rts IS NOT NULL THEN
        PERFORM hacs_core.rebuild_derived_rows(rts, ids);
    END IF;
    RETURN NULL;
END
$fn$
""",
    "REVOKE ALL ON FUNCTION hacs_core.rebuild_derived_rows(text[], text[]) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION hacs_core.sync_derived_rows() FROM PUBLIC",
    "REVOKE ALL ON FUNCTION hacs_core.derived_current(text[], text[]) FROM PUBLIC",
    """
CREATE TRIGGER derived_rows_insert AFTER INSERT ON hacs_core.resource_versions
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION hacs_core.sync_derived_rows()
""",
    """
CREATE TRIGGER derived_rows_update AFTER UPDATE ON hacs_core.resource_versions
REFERENCING OLD TABLE AS gone NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION hacs_core.sync_derived_rows()
""",
    """
CREATE TRIGGER derived_rows_delete AFTER DELETE ON hacs_core.resource_versions
REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION hacs_core.sync_derived_rows()
""",
]

_BACKFILL = """
SELECT hacs_core.rebuild_derived_rows(array_agg(k.resource_type), array_agg(k.id))
FROM (SELECT DISTINCT resource_type, id FROM hacs_core.resource_versions) AS k
HAVING count(*) > 0
"""


def upgrade() -> None:
    op.create_table(
        "observation_components",
        sa.Column("observation_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("display", sa.Text(), nullable=True),
        sa.Column("value_numeric", sa.Numeric(), nullable=True),
        sa.Column("value_unit", sa.Text(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("effective_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("observation_id", "position", name="pk_observation_components"),
        schema="hacs_core",
    )
    op.create_index(
        "ix_observation_components_patient_id_code_effective_at",
        "observation_components",
        ["patient_id", "code", "effective_at"],
        schema="hacs_core",
    )
    op.create_index(
        "ix_observation_components_code", "observation_components", ["code"], schema="hacs_core"
    )
    op.create_table(
        "codings",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("element", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("display", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "resource_type", "resource_id", "element", "position", name="pk_codings"
        ),
        schema="hacs_core",
    )
    op.create_index("ix_codings_system_code", "codings", ["system", "code"], schema="hacs_core")
    op.create_table(
        "identifiers",
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("use", sa.Text(), nullable=True),
        sa.Column("type_code", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "position", name="pk_identifiers"),
        schema="hacs_core",
    )
    op.create_index(
        "ix_identifiers_system_value", "identifiers", ["system", "value"], schema="hacs_core"
    )
    for statement in _FUNCTIONS:
        op.execute(statement)
    op.execute(_BACKFILL)


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER derived_rows_{event} ON hacs_core.resource_versions")
    op.execute("DROP FUNCTION hacs_core.sync_derived_rows()")
    op.execute("DROP FUNCTION hacs_core.rebuild_derived_rows(text[], text[])")
    op.execute("DROP FUNCTION hacs_core.derived_current(text[], text[])")
    for name in (
        "derived_text(jsonb)",
        "derived_coding(jsonb, text)",
        "derived_number(jsonb)",
        "derived_instant(jsonb)",
        "derived_reference_id(jsonb, text)",
    ):
        op.execute(f"DROP FUNCTION hacs_core.{name}")
    op.drop_table("identifiers", schema="hacs_core")
    op.drop_table("codings", schema="hacs_core")
    op.drop_table("observation_components", schema="hacs_core")
