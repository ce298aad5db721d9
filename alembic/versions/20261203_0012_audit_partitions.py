"""Audit partitions: ``hacs_audit.audit_events`` is partitioned by month of ``occurred_at``.

Every read writes an audit row, so the trail is the fastest-growing table. It is rebuilt as
``PARTITION BY RANGE (occurred_at)`` with one partition per UTC month (``audit_events_y2026m12``)
and a DEFAULT partition (``audit_events_default``), so that no write ever fails for a missing
month. The rows are copied with their ids; the identity continues where it was; indexes, checks,
triggers and grants are those of the table before. The primary key is ``(id, occurred_at)``
(a partitioned table's keys include its partition key).

* ``hacs_audit.ensure_audit_partitions(months_ahead, since)`` (the owner's, ``SECURITY DEFINER``;
  run by this revision and by ``hacs db maintain``) creates every missing month from the oldest
  row of the DEFAULT partition (or ``since``) to ``months_ahead`` months after the current one,
  moving rows out of the DEFAULT partition into their month; idempotent.
* ``hacs_audit.apply_retention`` detaches and drops the month partitions that end at or before
  the cutoff, and deletes rows only in the partition that straddles it (and the DEFAULT one);
  it still records ``audit_retention_runs`` and writes its own audit row.
* The row triggers of the parent are cloned on every partition; each partition also gets its own
  TRUNCATE trigger (statement triggers are not cloned). Only the owner may DETACH or DROP a
  partition; the application role has no privilege on the partitions themselves.
* The server's time: a partitioned table routes a row before its BEFORE trigger runs, and a row
  may not leave its partition in that trigger. A time a writer supplies is therefore replaced by
  ``now()`` when it falls in the same UTC month (as before) and refused otherwise (it used to be
  replaced): in both cases no row carries a time but the server's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"hacs_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_R0006 = _revision_module("20261202_0006_audit_hardening.py")

AUDIT = "hacs_audit.audit_events"
OLD = "audit_events_before_0012"
MONTHS_AHEAD = 3
_XACT = "pg_current_xact_id()::text::bigint"

_COLUMNS = """
    id bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    actor_id text,
    actor_name text,
    actor_role text,
    action text NOT NULL,
    resource_type text,
    resource_id text,
    outcome text NOT NULL,
    result_count integer,
    detail text,
    request_id text,
    purpose_of_use text,
    resource_ids text[],
    patient_ids text[],
    database_role text,
    CONSTRAINT ck_audit_events_outcome CHECK
        (outcome IN ('success', 'denied', 'not_found', 'conflict', 'invalid', 'error'))
"""
_INDEXES = (
    "CREATE INDEX ix_audit_events_actor_id ON hacs_audit.audit_events (actor_id)",
    "CREATE INDEX ix_audit_events_occurred_at ON hacs_audit.audit_events (occurred_at)",
    "CREATE INDEX ix_audit_events_resource ON hacs_audit.audit_events (resource_type, resource_id)",
    "CREATE INDEX ix_audit_events_patient_ids ON hacs_audit.audit_events USING gin (patient_ids)",
)
_OLD_INDEXES = (
    "pk_audit_events",
    "ix_audit_events_actor_id",
    "ix_audit_events_occurred_at",
    "ix_audit_events_resource",
    "ix_audit_events_patient_ids",
)
_ROW_TRIGGERS = (
    "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE "
    "ON hacs_audit.audit_events FOR EACH ROW EXECUTE FUNCTION hacs_audit.reject_audit_change()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON hacs_audit.audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION hacs_audit.reject_audit_change()",
    "CREATE TRIGGER audit_events_server_stamp BEFORE INSERT ON hacs_audit.audit_events "
    "FOR EACH ROW EXECUTE FUNCTION hacs_audit.stamp_audit_row()",
)

# What the owner's functions may do in their own transaction: 0006's two, and moving rows out of
# the DEFAULT partition into their new month.
_PURPOSES_0006 = "purpose IN ('audit_retention', 'purge')"
_PURPOSES = "purpose IN ('audit_retention', 'purge', 'audit_partition')"

_REJECT_AUDIT_CHANGE = f"""
CREATE OR REPLACE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Only a grant one of the owner's functions recorded for this very transaction lets a row
    -- go: apply_retention's, for a row older than its cutoff; ensure_audit_partitions', for the
    -- rows it moves from the DEFAULT partition into their month (deleted there, inserted there).
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM hacs_audit.transaction_grants g
        WHERE g.xact_id = {_XACT}
          AND ((g.purpose = 'audit_retention' AND OLD.occurred_at < g.cutoff)
               OR g.purpose = 'audit_partition'))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'hacs_audit.audit_events is append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_STAMP_AUDIT_ROW = """
CREATE OR REPLACE FUNCTION hacs_audit.stamp_audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The server says when and as whom. The row was routed to a partition by the time the
    -- writer gave; it may not leave it here, so another month's time is refused, not replaced.
    IF NEW.occurred_at IS DISTINCT FROM pg_catalog.now()
       AND pg_catalog.date_trunc('month', NEW.occurred_at, 'UTC')
           IS DISTINCT FROM pg_catalog.date_trunc('month', pg_catalog.now(), 'UTC')
    THEN
        RAISE EXCEPTION 'hacs_audit.audit_events.occurred_at is the server''s time: '
            'leave it out (got %)', NEW.occurred_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.occurred_at := pg_catalog.now();
    NEW.database_role := session_user;
    RETURN NEW;
END
$$
"""

_ENSURE_PARTITIONS = f"""
CREATE FUNCTION hacs_audit.ensure_audit_partitions(
    months_ahead integer DEFAULT {MONTHS_AHEAD}, since timestamptz DEFAULT NULL)
RETURNS TABLE (partition_name text, moved_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    v_month timestamptz;
    v_last timestamptz;
    v_oldest timestamptz;
    v_newest timestamptz;
    v_name text;
    v_moved bigint;
    v_locked boolean := false;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120 (got %)', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One run at a time; months are UTC months (this function's TimeZone).
    PERFORM pg_advisory_xact_lock(hashtext('hacs_audit.ensure_audit_partitions'));
    SELECT min(occurred_at), max(occurred_at) INTO v_oldest, v_newest
    FROM hacs_audit.audit_events_default;
    v_month := date_trunc('month', least(now(), since, v_oldest));
    v_last := greatest(date_trunc('month', now()) + make_interval(months => months_ahead),
                       date_trunc('month', v_newest));
    WHILE v_month <= v_last LOOP
        v_name := 'audit_events_' || to_char(v_month, '"y"YYYY"m"MM');
        IF to_regclass('hacs_audit.' || quote_ident(v_name)) IS NULL THEN
            IF NOT v_locked THEN
                -- Writers wait while the month is added (the table's locks, in writers' order).
                LOCK TABLE hacs_audit.audit_events IN ACCESS EXCLUSIVE MODE;
                v_locked := true;
            END IF;
            SELECT count(*) INTO v_moved FROM hacs_audit.audit_events_default
            WHERE occurred_at >= v_month AND occurred_at < v_month + interval '1 month';
            IF v_moved = 0 THEN
                EXECUTE format('CREATE TABLE hacs_audit.%I PARTITION OF hacs_audit.audit_events '
                               'FOR VALUES FROM (%L) TO (%L)',
                               v_name, v_month, v_month + interval '1 month');
            ELSE
                -- The month's rows leave the DEFAULT partition for their own, ids and all.
                EXECUTE format('CREATE TABLE hacs_audit.%I (LIKE hacs_audit.audit_events '
                               'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
                INSERT INTO hacs_audit.transaction_grants (xact_id, purpose)
                VALUES ({_XACT}, 'audit_partition') ON CONFLICT DO NOTHING;
                EXECUTE format('WITH moved AS (DELETE FROM hacs_audit.audit_events_default '
                               'WHERE occurred_at >= %L AND occurred_at < %L RETURNING *) '
                               'INSERT INTO hacs_audit.%I SELECT * FROM moved',
                               v_month, v_month + interval '1 month', v_name);
                DELETE FROM hacs_audit.transaction_grants
                WHERE xact_id = {_XACT} AND purpose = 'audit_partition';
                EXECUTE format('ALTER TABLE hacs_audit.audit_events ATTACH PARTITION '
                               'hacs_audit.%I FOR VALUES FROM (%L) TO (%L)',
                               v_name, v_month, v_month + interval '1 month');
            END IF;
            -- Statement triggers are not cloned: each partition refuses TRUNCATE itself.
            EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON '
                           'hacs_audit.%I FOR EACH STATEMENT '
                           'EXECUTE FUNCTION hacs_audit.reject_audit_change()', v_name);
            partition_name := v_name;
            moved_rows := v_moved;
            RETURN NEXT;
        END IF;
        v_month := v_month + interval '1 month';
    END LOOP;
END
$$
"""

_APPLY_RETENTION = f"""
CREATE OR REPLACE FUNCTION hacs_audit.apply_retention(max_age interval, requested_by text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, hacs_audit SET TimeZone = 'UTC' AS $$
DECLARE
    v_cutoff timestamptz := now() - max_age;
    v_removed bigint := 0;
    v_rows bigint;
    v_partition text;
BEGIN
    IF max_age < interval '1 day' THEN
        RAISE EXCEPTION 'audit retention must keep at least one day (got %)', max_age
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO hacs_audit.transaction_grants (xact_id, purpose, cutoff)
    VALUES ({_XACT}, 'audit_retention', v_cutoff)
    ON CONFLICT (xact_id, purpose) DO UPDATE SET cutoff = EXCLUDED.cutoff;
    -- Months that end at or before the cutoff go whole: detached, counted, dropped.
    FOR v_partition IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'hacs_audit.audit_events'::regclass
          AND substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')
              ::timestamptz <= v_cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE hacs_audit.audit_events DETACH PARTITION hacs_audit.%I',
                       v_partition);
        EXECUTE format('SELECT count(*) FROM hacs_audit.%I', v_partition) INTO v_rows;
        EXECUTE format('DROP TABLE hacs_audit.%I', v_partition);
        v_removed := v_removed + v_rows;
    END LOOP;
    -- The month that straddles the cutoff (and the DEFAULT partition): row by row.
    DELETE FROM hacs_audit.audit_events WHERE occurred_at < v_cutoff;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    v_removed := v_removed + v_rows;
    -- The grant ends with this call, not with the transaction.
    DELETE FROM hacs_audit.transaction_grants
    WHERE xact_id = {_XACT} AND purpose = 'audit_retention';
    INSERT INTO hacs_audit.audit_retention_runs (cutoff, removed, requested_by)
    VALUES (v_cutoff, v_removed, requested_by);
    INSERT INTO hacs_audit.audit_events
        (actor_id, action, resource_type, outcome, result_count, detail)
    VALUES (requested_by, 'audit_retention', 'AuditEvent', 'success', v_removed,
            'removed audit rows older than ' || v_cutoff::text);
    RETURN v_removed;
END
$$
"""

# The privileges of one relation re-granted on another (grants survive the rebuild).
_COPY_GRANTS = """
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.privilege_type, a.is_grantable,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
        FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE c.oid = '{source}'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON {target} TO %s%s', g.privilege_type, g.grantee,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$
"""

# The identity goes on from where the table before left it.
_CONTINUE_IDENTITY = """
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('hacs_audit.audit_events', 'id'),
                         s.last_value, s.is_called)
FROM hacs_audit.{old}_id_seq s
"""


def _set_aside() -> None:
    """The table before, and its sequence and indexes, under other names until it is dropped."""
    op.execute(f"ALTER TABLE {AUDIT} RENAME TO {OLD}")
    op.execute(f"ALTER SEQUENCE hacs_audit.audit_events_id_seq RENAME TO {OLD}_id_seq")
    for name in _OLD_INDEXES:
        if name.startswith("pk_"):
            op.execute(f"ALTER TABLE hacs_audit.{OLD} RENAME CONSTRAINT {name} TO {name}_0012")
        else:
            op.execute(f"ALTER INDEX hacs_audit.{name} RENAME TO {name}_0012")
    for trigger in ("audit_events_no_update_delete", "audit_events_no_truncate"):
        op.execute(f"DROP TRIGGER {trigger} ON hacs_audit.{OLD}")
    op.execute(f"DROP TRIGGER audit_events_server_stamp ON hacs_audit.{OLD}")


def _finish() -> None:
    """Copy the rows, then indexes, triggers, grants; drop the table before."""
    op.execute(f"INSERT INTO {AUDIT} OVERRIDING SYSTEM VALUE SELECT * FROM hacs_audit.{OLD}")
    op.execute(_CONTINUE_IDENTITY.format(old=OLD))
    for statement in _INDEXES:
        op.execute(statement)
    for statement in _ROW_TRIGGERS:
        op.execute(statement)
    op.execute(_COPY_GRANTS.format(source=f"hacs_audit.{OLD}", target=AUDIT))
    op.execute(
        _COPY_GRANTS.format(
            source=f"hacs_audit.{OLD}_id_seq",
            target="SEQUENCE hacs_audit.audit_events_id_seq",
        )
    )
    op.execute(f"DROP TABLE hacs_audit.{OLD}")


def upgrade() -> None:
    op.execute(
        "ALTER TABLE hacs_audit.transaction_grants "
        "DROP CONSTRAINT ck_transaction_grants_purpose, "
        f"ADD CONSTRAINT ck_transaction_grants_purpose CHECK ({_PURPOSES})"
    )
    _set_aside()
    op.execute(
        f"CREATE TABLE {AUDIT} ({_COLUMNS},"
        " CONSTRAINT pk_audit_events PRIMARY KEY (id, occurred_at)"
        ") PARTITION BY RANGE (occurred_at)"
    )
    op.execute(f"CREATE TABLE hacs_audit.audit_events_default PARTITION OF {AUDIT} DEFAULT")
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON "
        "hacs_audit.audit_events_default FOR EACH STATEMENT "
        "EXECUTE FUNCTION hacs_audit.reject_audit_change()"
    )
    op.execute(_REJECT_AUDIT_CHANGE)
    op.execute(_STAMP_AUDIT_ROW)
    op.execute(_ENSURE_PARTITIONS)
    op.execute(
        "REVOKE ALL ON FUNCTION hacs_audit.ensure_audit_partitions(integer, timestamptz) "
        "FROM PUBLIC"
    )
    # The months the rows need, the current one and three ahead; the rows land in them.
    op.execute(
        "SELECT count(*) FROM hacs_audit.ensure_audit_partitions("
        f"{MONTHS_AHEAD}, (SELECT min(occurred_at) FROM hacs_audit.{OLD}))"
    )
    _finish()
    op.execute(_APPLY_RETENTION)


def downgrade() -> None:
    # Rows of an 'audit_partition' grant cannot outlive their transaction; none is left.
    op.execute("DELETE FROM hacs_audit.transaction_grants WHERE purpose = 'audit_partition'")
    op.execute(_R0006._APPLY_RETENTION)
    op.execute("DROP FUNCTION hacs_audit.ensure_audit_partitions(integer, timestamptz)")
    _set_aside()
    op.execute(f"CREATE TABLE {AUDIT} ({_COLUMNS}, CONSTRAINT pk_audit_events PRIMARY KEY (id))")
    op.execute(_R0006._REJECT_AUDIT_CHANGE)
    op.execute(_R0006._STAMP_AUDIT_ROW.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    _finish()
    op.execute(
        "ALTER TABLE hacs_audit.transaction_grants "
        "DROP CONSTRAINT ck_transaction_grants_purpose, "
        f"ADD CONSTRAINT ck_transaction_grants_purpose CHECK ({_PURPOSES_0006})"
    )
