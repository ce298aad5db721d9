"""SQL on FHIR views: the ``hacs_views`` schema, its FHIR-shaped documents and helper functions.

``hacs_views.fhir_resources`` holds each resource's FHIR R4 JSON (``to_fhir`` of the stored
document: stored documents are hacs-shaped, snake_case, while ViewDefinitions are written against
FHIR names) with the patient it belongs to, for patient-scoped reads. Compiled views select from
it; the ``hacs_views.*`` functions are the FHIRPath helpers the compiled SQL calls. The schema is
outside ``SCHEMAS`` on purpose: its views are created at run time, not declared as models.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQL = r"""
CREATE SCHEMA hacs_views;

CREATE TABLE hacs_views.fhir_resources (
    resource_type text NOT NULL,
    id text NOT NULL,
    version integer,
    patient_id text,
    resource jsonb NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_fhir_resources PRIMARY KEY (resource_type, id)
);

CREATE INDEX ix_fhir_resources_patient_id ON hacs_views.fhir_resources (patient_id);

-- The application role's privileges here are in docs/operations.md Step 3 (APP_GRANTS_SQL).

-- One element (or SQL NULL: none) as a FHIRPath collection.
CREATE FUNCTION hacs_views.element(e jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN e IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(e) END
$$;

-- A SQL boolean as a FHIRPath collection (NULL: empty).
CREATE FUNCTION hacs_views.bool(b boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b IS NULL THEN '[]'::jsonb WHEN b THEN '[true]'::jsonb
                ELSE '[false]'::jsonb END
$$;

-- A collection in a boolean context: empty is NULL, false is false, any other singleton true.
CREATE FUNCTION hacs_views.truth(c jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN c IS NULL OR jsonb_array_length(c) = 0 THEN NULL
                WHEN c -> 0 = 'false'::jsonb THEN false ELSE true END
$$;

-- c[i] (negative: from the end) as a collection.
CREATE FUNCTION hacs_views.item(c jsonb, i integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN c -> i IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(c -> i) END
$$;

-- FHIRPath '=': empty if either side is empty, else the collections compared item by item.
CREATE FUNCTION hacs_views.equal(a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_array_length(a) = 0 OR jsonb_array_length(b) = 0 THEN NULL
                ELSE a = b END
$$;

-- Ordering of two singletons: numbers as numbers, anything else by its text.
CREATE FUNCTION hacs_views.compare(a jsonb, b jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_array_length(a) <> 1 OR jsonb_array_length(b) <> 1 THEN NULL
        WHEN jsonb_typeof(a -> 0) = 'number' AND jsonb_typeof(b -> 0) = 'number'
            THEN CAST(sign(CAST(a ->> 0 AS numeric) - CAST(b ->> 0 AS numeric)) AS integer)
        WHEN (a ->> 0) COLLATE "C" < (b ->> 0) COLLATE "C" THEN -1
        WHEN (a ->> 0) = (b ->> 0) THEN 0
        ELSE 1 END
$$;

-- + - * / of two numeric singletons (empty otherwise, and for a division by zero).
CREATE FUNCTION hacs_views.arithmetic(a jsonb, b jsonb, op text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_array_length(a) <> 1 OR jsonb_array_length(b) <> 1
             OR jsonb_typeof(a -> 0) <> 'number' OR jsonb_typeof(b -> 0) <> 'number'
             OR (op = '/' AND CAST(b ->> 0 AS numeric) = 0) THEN '[]'::jsonb
        ELSE jsonb_build_array(CASE op
            WHEN '+' THEN CAST(a ->> 0 AS numeric) + CAST(b ->> 0 AS numeric)
            WHEN '-' THEN CAST(a ->> 0 AS numeric) - CAST(b ->> 0 AS numeric)
            WHEN '*' THEN CAST(a ->> 0 AS numeric) * CAST(b ->> 0 AS numeric)
            ELSE CAST(a ->> 0 AS numeric) / CAST(b ->> 0 AS numeric) END)
        END
$$;

-- FHIRPath '|': both collections, duplicates removed, first occurrence order.
CREATE FUNCTION hacs_views.union_of(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_agg(d.e ORDER BY d.i), '[]'::jsonb)
    FROM (SELECT t.e, min(t.i) AS i FROM jsonb_array_elements(a || b) WITH ORDINALITY AS t(e, i)
          GROUP BY t.e) AS d
$$;

-- The id a Reference points at ('Type/id', absolute or versioned), if of the wanted type.
CREATE FUNCTION hacs_views.reference_key(r jsonb, wanted text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN wanted IS NULL OR m[1] = wanted THEN m[2] END
    FROM regexp_match(r ->> 'reference', '([A-Za-z]+)/([^/]+)(/_history/[^/]+)?$') AS m
$$;

-- The earliest or latest hh:mm:ss.fff a partial time (hour, minute, second, fraction) allows.
CREATE FUNCTION hacs_views.clock_boundary(m text[], high boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(m[1], CASE WHEN high THEN '23' ELSE '00' END) || ':'
        || coalesce(m[2], CASE WHEN high THEN '59' ELSE '00' END) || ':'
        || coalesce(m[3], CASE WHEN high THEN '59' ELSE '00' END) || '.'
        || rpad(coalesce(m[4], ''), 3, CASE WHEN high THEN '9' ELSE '0' END)
$$;

-- lowBoundary()/highBoundary() of a decimal, date, dateTime or time singleton: the least or
-- greatest value its precision allows. kind is the ofType() type when given, else the value's
-- shape decides (a date-shaped string is a date).
CREATE FUNCTION hacs_views.boundary(c jsonb, kind text, high boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v text;
    x numeric;
    m text[];
    day text;
    clock text;
BEGIN
    IF c IS NULL OR jsonb_array_length(c) <> 1 THEN
        RETURN '[]'::jsonb;
    END IF;
    IF jsonb_typeof(c -> 0) = 'number' THEN
        x := CAST(c ->> 0 AS numeric);
        IF high THEN
            RETURN jsonb_build_array(x + 0.5 * power(10::numeric, -scale(x)));
        END IF;
        RETURN jsonb_build_array(x - 0.5 * power(10::numeric, -scale(x)));
    END IF;
    IF jsonb_typeof(c -> 0) <> 'string' THEN
        RETURN '[]'::jsonb;
    END IF;
    v := c ->> 0;
    m := regexp_match(v, '^([0-9]{2})(?::([0-9]{2}))?(?::([0-9]{2}))?(?:\.([0-9]+))?$');
    IF m IS NOT NULL AND kind IN ('', 'time') THEN
        RETURN jsonb_build_array(hacs_views.clock_boundary(m, high));
    END IF;
    m := regexp_match(v, '^([0-9]{4})(?:-([0-9]{2}))?(?:-([0-9]{2}))?'
        '(?:[T]([0-9]{2})(?::([0-9]{2}))?(?::([0-9]{2}))?(?:\.([0-9]+))?)?'
        '(Z|[+-][0-9]{2}:[0-9]{2})?$');
    IF m IS NULL THEN
        RETURN '[]'::jsonb;
    END IF;
    IF m[2] IS NULL THEN
        day := m[1] || CASE WHEN high THEN '-12-31' ELSE '-01-01' END;
    ELSIF m[3] IS NULL THEN
        day := CASE WHEN high THEN to_char(make_date(m[1]::int, m[2]::int, 1)
                                           + interval '1 month - 1 day', 'YYYY-MM-DD')
                    ELSE m[1] || '-' || m[2] || '-01' END;
    ELSE
        day := m[1] || '-' || m[2] || '-' || m[3];
    END IF;
    IF kind = 'date' OR (kind = '' AND m[4] IS NULL AND m[8] IS NULL) THEN
        RETURN jsonb_build_array(day);
    END IF;
    clock := hacs_views.clock_boundary(ARRAY[m[4], m[5], m[6], m[7]], high);
    RETURN jsonb_build_array(day || 'T' || clock || coalesce(m[8],
        CASE WHEN high THEN '-12:00' ELSE '+14:00' END));
END
$$;

-- A column's one value; more than one is the definition's error (declare collection: true).
CREATE FUNCTION hacs_views.singleton(c jsonb, column_name text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF c IS NULL OR jsonb_array_length(c) = 0 THEN
        RETURN NULL;
    END IF;
    IF jsonb_array_length(c) > 1 THEN
        RAISE EXCEPTION 'hacs_views: column % has % values in one row; declare it '
            '"collection": true or narrow its path', column_name, jsonb_array_length(c);
    END IF;
    RETURN c -> 0;
END
$$;

-- A view's where path: true or false (empty: false); anything else is the definition's error.
CREATE FUNCTION hacs_views.where_true(c jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF c IS NULL OR jsonb_array_length(c) = 0 THEN
        RETURN false;
    END IF;
    IF jsonb_array_length(c) = 1 AND jsonb_typeof(c -> 0) = 'boolean' THEN
        RETURN CAST(c -> 0 AS boolean);
    END IF;
    RAISE EXCEPTION 'hacs_views: a where path must give one boolean, got %',
        jsonb_typeof(c -> 0);
END
$$;
"""


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    for statement in _SQL.split("\n\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA hacs_views CASCADE")
