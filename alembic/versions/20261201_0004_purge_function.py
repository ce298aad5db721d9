"""Erasure in the database: ``hacs_admin.purge_patient``, run with its owner's rights.

The application role may not ``DELETE`` (hacs deletes are soft), so an erasure runs in one
``SECURITY DEFINER`` function owned by the migrating role; ``EXECUTE`` is revoked from
``PUBLIC`` and granted by the owner (docs/operations.md, step 3 of "Owner and application
roles"). What it removes is found from the stored documents, not from one column:

* the compartment: the patient's own row; every row attributed to the patient (a typed row's
  ``patient_id``, a JSONB document's top-level ``subject``/``patient``); every resource other
  than a patient whose current document names the patient anywhere (a reference in a list or
  nested, an import's row whose foreign key stayed NULL, a Bundle holding the patient); and,
  transitively, every resource not attributed to another patient whose current document
  references or embeds a member (an Observation pointing at one of the patient's Encounters,
  a document Bundle holding their Observations);
* every version of every member, and the old versions of other resources whose document
  references or embeds a member (an Observation moved from this patient to another keeps its
  current version and loses the versions that named this one).

A reference is a string at a ``reference`` key, ``Type/id`` (relative, absolute, or with
``/_history/n``) or ``urn:uuid:<id>``; an embedded resource is a nested object with
``resource_type`` (or FHIR's ``resourceType``) and ``id``. Resources that belong to another
patient and still point into the compartment are kept: their typed foreign keys to erased rows
are set to NULL (as an import leaves a dangling reference) and they are listed in the result.
The audit trail is not touched: its rows keep ids by design; the caller records the purge.

``hacs_admin.reference_key(text)`` (a helper, also not for ``PUBLIC``) parses one reference.
Typed tables are found in the catalog (the tables whose rows point at a version in
``hacs_core.resource_versions``), so tables added by later revisions are covered.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (type, id) of a reference string, type NULL for urn:uuid; NULL when it is no reference. String
# functions and anchored patterns only: an unanchored regex with captures costs ten times more
# per reference, and the purge reads every reference of every stored version.
_REFERENCE_KEY = r"""
CREATE FUNCTION hacs_admin.reference_key(ref text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT CASE
    WHEN starts_with(ref, 'urn:uuid:') THEN
        CASE WHEN substr(ref, 10) ~ '^[A-Za-z0-9.-]+$' AND length(ref) <= 73
            THEN ARRAY[NULL, substr(ref, 10)] END
    WHEN split_part(split_part(ref, '/_history/', 1), '/', -2) ~ '^[A-Z][A-Za-z0-9]*$'
        AND split_part(split_part(ref, '/_history/', 1), '/', -1) ~ '^[A-Za-z0-9.-]+$'
        AND length(split_part(split_part(ref, '/_history/', 1), '/', -2)) <= 64
        AND length(split_part(split_part(ref, '/_history/', 1), '/', -1)) <= 64
    THEN ARRAY[split_part(split_part(ref, '/_history/', 1), '/', -2),
               split_part(split_part(ref, '/_history/', 1), '/', -1)]
END
$fn$
"""

_PURGE = r"""
CREATE FUNCTION hacs_admin.purge_patient(p_patient text, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    versions_table CONSTANT regclass := 'hacs_core.resource_versions'::regclass;
    patients_table CONSTANT regclass := 'hacs_core.patients'::regclass;
    typed regclass[];
    tbl regclass;
    fk record;
    counted record;
    current_rows text;
    member_types text[];
    member_ids text[];
    old_types text[];
    old_ids text[];
    old_versions integer[];
    kept text[];
    unlinked text[];
    resources jsonb := '{}'::jsonb;
    removed_versions bigint;
    removed_old bigint;
BEGIN
    -- Typed resource tables: those whose rows point at their current version.
    SELECT coalesce(array_agg(t ORDER BY t::text), '{}') INTO typed
    FROM (SELECT DISTINCT c.conrelid::regclass AS t FROM pg_constraint c
          WHERE c.contype = 'f' AND c.confrelid = versions_table) s;

    -- No new typed row may name the patient while the erasure runs (foreign keys lock it).
    PERFORM 1 FROM hacs_core.patients WHERE id = p_patient FOR UPDATE;

    -- Every resource's current row: type, id, version, the patient it is attributed to.
    SELECT string_agg(
        format(
            'SELECT t.resource_type AS rt, t.id, t.version, %s AS owner, %L::boolean AS is_patient '
            'FROM %s t',
            CASE
                WHEN x = patients_table THEN 't.id'
                WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x
                             AND a.attname = 'patient_id' AND NOT a.attisdropped)
                    THEN 't.patient_id'
                ELSE 'NULL::text'
            END,
            x = patients_table, x),
        ' UNION ALL ')
    INTO current_rows FROM unnest(typed) AS x;
    current_rows := concat_ws(' UNION ALL ', current_rows,
        'SELECT d.resource_type, d.id, d.version, CASE WHEN d.resource_type = ''Patient'' '
        'THEN d.id ELSE (SELECT k[2] FROM unnest(ARRAY[d.document #>> ''{subject,reference}'', '
        'd.document #>> ''{patient,reference}'']) WITH ORDINALITY AS r(ref, n), '
        'hacs_admin.reference_key(r.ref) AS k WHERE k[1] = ''Patient'' ORDER BY r.n LIMIT 1) '
        'END, d.resource_type = ''Patient'' FROM public.hacs_resources d');

    EXECUTE format($q$
        WITH RECURSIVE
        cur AS MATERIALIZED (%1$s),
        -- What each stored version references or embeds: (type or NULL for urn:uuid, id).
        ment AS MATERIALIZED (
            SELECT v.resource_type AS rt, v.id, v.version, k.kt, k.kid
            FROM hacs_core.resource_versions v
            CROSS JOIN LATERAL (
                SELECT r.k[1] AS kt, r.k[2] AS kid
                FROM jsonb_path_query(v.document,
                         'strict $.**.reference ? (@.type() == "string")', '{}', true) AS s(ref)
                CROSS JOIN LATERAL hacs_admin.reference_key(s.ref #>> '{}') AS r(k)
                WHERE r.k IS NOT NULL
                UNION ALL
                SELECT coalesce(e.o ->> 'resource_type', e.o ->> 'resourceType'), e.o ->> 'id'
                FROM jsonb_path_query(v.document,
                         'strict $.*.** ? (@.id.type() == "string" && '
                         '(@.resource_type.type() == "string" || '
                         '@.resourceType.type() == "string"))', '{}', true) AS e(o)
            ) k
        ),
        cur_ment AS MATERIALIZED (
            SELECT c.rt, c.id, c.owner, c.is_patient, m.kt, m.kid
            FROM cur c JOIN ment m ON m.rt = c.rt AND m.id = c.id AND m.version = c.version
        ),
        -- How documents name the patient.
        patient_keys(kt, kid) AS (
            SELECT 'Patient'::text, $1
            UNION SELECT rt, id FROM cur WHERE is_patient AND id = $1
        ),
        members(rt, id) AS (
            SELECT rt, id FROM cur WHERE owner = $1
            UNION
            SELECT cm.rt, cm.id FROM cur_ment cm
            JOIN patient_keys k ON cm.kid = k.kid AND (cm.kt = k.kt OR cm.kt IS NULL)
            WHERE NOT cm.is_patient
            UNION
            SELECT cm.rt, cm.id FROM cur_ment cm
            JOIN members m ON cm.kid = m.id AND (cm.kt = m.rt OR cm.kt IS NULL)
            WHERE NOT cm.is_patient AND (cm.owner IS NULL OR cm.owner = $1)
        ),
        member_keys(kt, kid) AS MATERIALIZED (
            SELECT rt, id FROM members UNION SELECT kt, kid FROM patient_keys
        ),
        -- Versions of other resources that reference or embed a member (never a current one).
        old AS (
            SELECT DISTINCT m.rt, m.id, m.version FROM ment m
            JOIN member_keys k ON m.kid = k.kid AND (m.kt = k.kt OR m.kt IS NULL)
            WHERE NOT EXISTS (SELECT 1 FROM members x WHERE x.rt = m.rt AND x.id = m.id)
              AND NOT EXISTS (SELECT 1 FROM cur c
                              WHERE c.rt = m.rt AND c.id = m.id AND c.version = m.version)
        ),
        -- Other patients' resources whose current document still points into the compartment.
        kept AS (
            SELECT DISTINCT cm.rt || '/' || cm.id AS ref FROM cur_ment cm
            JOIN member_keys k ON cm.kid = k.kid AND (cm.kt = k.kt OR cm.kt IS NULL)
            WHERE NOT EXISTS (SELECT 1 FROM members x WHERE x.rt = cm.rt AND x.id = cm.id)
        )
        SELECT (SELECT array_agg(rt) FROM members), (SELECT array_agg(id) FROM members),
               (SELECT array_agg(rt) FROM old), (SELECT array_agg(id) FROM old),
               (SELECT array_agg(version) FROM old),
               (SELECT array_agg(ref ORDER BY ref) FROM kept)
        $q$, current_rows)
    INTO member_types, member_ids, old_types, old_ids, old_versions, kept
    USING p_patient;

    member_types := coalesce(member_types, '{}');
    member_ids := coalesce(member_ids, '{}');

    -- Rows point at each other (patient, encounter, current version): check at the end.
    SET CONSTRAINTS ALL DEFERRED;

    -- Kept rows that point at an erased row lose that foreign key (a dangling reference).
    FOR fk IN
        SELECT c.conrelid::regclass AS child, a.attname AS col,
               c.confrelid::regclass AS parent, pa.attname AS parent_col
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
          AND c.conrelid = ANY (typed) AND c.confrelid = ANY (typed)
        ORDER BY 1, 2
    LOOP
        EXECUTE format($q$
            WITH unlinked AS (
                UPDATE %1$s c SET %2$I = NULL
                FROM %3$s p, unnest($1::text[], $2::text[]) AS m(rt, id)
                WHERE c.%2$I = p.%4$I AND p.resource_type = m.rt AND p.id = m.id
                  AND NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS x(rt, id)
                                  WHERE x.rt = c.resource_type AND x.id = c.id)
                RETURNING c.resource_type || '/' || c.id AS ref)
            SELECT array_agg(ref) FROM unlinked
            $q$, fk.child, fk.col, fk.parent, fk.parent_col)
        INTO unlinked USING member_types, member_ids;
        kept := coalesce(kept, '{}') || coalesce(unlinked, '{}');
    END LOOP;

    FOREACH tbl IN ARRAY typed || 'public.hacs_resources'::regclass LOOP
        FOR counted IN EXECUTE format($q$
            WITH removed AS (
                DELETE FROM %s t USING unnest($1::text[], $2::text[]) AS m(rt, id)
                WHERE t.resource_type = m.rt AND t.id = m.id
                RETURNING t.resource_type)
            SELECT resource_type, count(*) AS n FROM removed GROUP BY resource_type
            $q$, tbl) USING member_types, member_ids
        LOOP
            resources := jsonb_set(resources, ARRAY[counted.resource_type],
                to_jsonb(coalesce((resources ->> counted.resource_type)::bigint, 0) + counted.n));
        END LOOP;
    END LOOP;

    DELETE FROM hacs_core.resource_versions v
    USING unnest(member_types, member_ids) AS m(rt, id)
    WHERE v.resource_type = m.rt AND v.id = m.id;
    GET DIAGNOSTICS removed_versions = ROW_COUNT;

    DELETE FROM hacs_core.resource_versions v
    USING unnest(coalesce(old_types, '{}'), coalesce(old_ids, '{}'),
                 coalesce(old_versions, '{}')) AS o(rt, id, version)
    WHERE v.resource_type = o.rt AND v.id = o.id AND v.version = o.version;
    GET DIAGNOSTICS removed_old = ROW_COUNT;

    -- Every row that pointed at an erased row is gone or unlinked; fail here if not.
    SET CONSTRAINTS ALL IMMEDIATE;

    -- The purge's audit row, written here so that no way of calling the function (the adapter,
    -- or SQL by any role it was granted to) erases without a trace. p_audit carries the hacs
    -- actor and request; the database role that ran it is always recorded in detail.
    INSERT INTO hacs_audit.audit_events (
        actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome,
        result_count, detail, request_id, purpose_of_use)
    SELECT p_audit ->> 'actor_id', p_audit ->> 'actor_name', p_audit ->> 'actor_role', 'purge',
           'Patient', p_patient, CASE WHEN total > 0 THEN 'success' ELSE 'not_found' END, total,
           format('%s resources, %s versions, %s other versions; database role %s',
                  total, removed_versions, removed_old, session_user),
           p_audit ->> 'request_id', p_audit ->> 'purpose_of_use'
    FROM (SELECT coalesce(sum(value::bigint), 0) AS total
          FROM jsonb_each_text(resources)) AS t;

    RETURN jsonb_build_object(
        'patient_id', p_patient,
        'resources', resources,
        'versions', removed_versions,
        'foreign_versions', removed_old,
        'kept_references',
        to_jsonb(ARRAY(SELECT DISTINCT r FROM unnest(coalesce(kept, '{}')) AS r ORDER BY r)));
END
$fn$
"""


def upgrade() -> None:
    op.execute(_REFERENCE_KEY)
    op.execute(_PURGE)
    # Only the owner, and the roles it grants EXECUTE to (the application role), may erase.
    op.execute("REVOKE ALL ON FUNCTION hacs_admin.purge_patient(text, jsonb) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION hacs_admin.reference_key(text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION hacs_admin.purge_patient(text, jsonb)")
    op.execute("DROP FUNCTION hacs_admin.reference_key(text)")
