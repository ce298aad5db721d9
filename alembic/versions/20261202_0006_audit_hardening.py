"""Audit hardening: server-clock time, no session-settable retention, append-only versions, seals.

* Retention no longer trusts a session setting. ``hacs_audit.apply_retention`` records a grant
  keyed by its own transaction id (``pg_current_xact_id()``) in ``hacs_audit.transaction_grants``,
  a table only the owner can write; the append-only trigger lets a DELETE through only for rows
  older than the cutoff of such a grant, and the function removes the grant before it returns.
  Each run's cutoff is kept in ``hacs_audit.audit_retention_runs`` (for ``hacs audit verify``).
* An audit row's time is the server's: a BEFORE INSERT trigger sets ``occurred_at`` to ``now()``
  whatever the writer supplied, and ``database_role`` (new) to ``session_user``.
* ``hacs_core.resource_versions`` is append-only too: a trigger refuses UPDATE, and DELETE except
  inside ``hacs_admin.purge_patient``, which now takes the same kind of grant (``purge``).
* ``hacs_audit.audit_seals`` and ``hacs_audit.audit_sealed_rows`` hold the hash chain written by
  ``hacs audit seal`` (hacs_persistence.ops.audit_seal); owner-only, like the grants.

The trigger functions that read the grants run with their owner's rights, so they work whoever
fires them; nothing is granted on the new tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_module(filename: str) -> ModuleType:
    # The functions of revisions 0003 and 0004 are re-created from their own text (one source
    # for the purge's 200 lines), and restored from it on downgrade.
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"hacs_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_R0003 = _revision_module("20261125_0003_audit_retention.py")
_R0004 = _revision_module("20261201_0004_purge_function.py")

# The current transaction, as transaction_grants keys it.
_XACT = "pg_current_xact_id()::text::bigint"

_REJECT_AUDIT_CHANGE = f"""
CREATE OR REPLACE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Only a grant apply_retention recorded for this very transaction lets a row go, and only
    -- a row older than its cutoff. No session setting counts: any role can set one.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM hacs_audit.transaction_grants g
        WHERE g.xact_id = {_XACT} AND g.purpose = 'audit_retention'
          AND OLD.occurred_at < g.cutoff)
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'hacs_audit.audit_events is append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_STAMP_AUDIT_ROW = """
CREATE FUNCTION hacs_audit.stamp_audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The server says when and as whom, whatever the writer supplied: no back-dated rows.
    -- (Qualified rather than a pinned search_path: no per-row settings change on the hot path.)
    NEW.occurred_at := pg_catalog.now();
    NEW.database_role := session_user;
    RETURN NEW;
END
$$
"""

_REJECT_VERSION_CHANGE = f"""
CREATE FUNCTION hacs_core.reject_version_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Versions are history: only an erasure (hacs_admin.purge_patient, which records a grant
    -- for its own transaction) removes them, and nothing rewrites them.
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM hacs_audit.transaction_grants g
        WHERE g.xact_id = {_XACT} AND g.purpose = 'purge')
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'hacs_core.resource_versions is append-only (% rejected); '
        'erase a patient with hacs_admin.purge_patient', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_APPLY_RETENTION = f"""
CREATE OR REPLACE FUNCTION hacs_audit.apply_retention(max_age interval, requested_by text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hacs_audit AS $$
DECLARE
    v_cutoff timestamptz := now() - max_age;
    v_removed bigint;
BEGIN
    IF max_age < interval '1 day' THEN
        RAISE EXCEPTION 'audit retention must keep at least one day (got %)', max_age
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO hacs_audit.transaction_grants (xact_id, purpose, cutoff)
    VALUES ({_XACT}, 'audit_retention', v_cutoff)
    ON CONFLICT (xact_id, purpose) DO UPDATE SET cutoff = EXCLUDED.cutoff;
    DELETE FROM hacs_audit.audit_events WHERE occurred_at < v_cutoff;
    GET DIAGNOSTICS v_removed = ROW_COUNT;
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

_PURGE_TAKES_GRANT = f"""
    -- Revision 0006: versions may be deleted in this transaction only while this function runs.
    INSERT INTO hacs_audit.transaction_grants (xact_id, purpose)
    VALUES ({_XACT}, 'purge') ON CONFLICT DO NOTHING;
"""
_PURGE_GIVES_BACK_GRANT = f"""
    DELETE FROM hacs_audit.transaction_grants WHERE xact_id = {_XACT} AND purpose = 'purge';

"""


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(
            f"revision 0004's purge function changed: {old.strip()!r} not found once"
        )
    return text.replace(old, new)


def _guarded_purge() -> str:
    """Revision 0004's purge function, taking the purge grant first and giving it back last."""
    sql: str = _R0004._PURGE
    sql = _replace_once(sql, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    sql = _replace_once(sql, "\nBEGIN\n", "\nBEGIN\n" + _PURGE_TAKES_GRANT)
    return _replace_once(
        sql,
        "\n    RETURN jsonb_build_object(",
        "\n" + _PURGE_GIVES_BACK_GRANT + "    RETURN jsonb_build_object(",
    )


def _create_tables() -> None:
    op.create_table(
        "transaction_grants",
        sa.Column("xact_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("cutoff", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('audit_retention', 'purge')", name=op.f("ck_transaction_grants_purpose")
        ),
        sa.PrimaryKeyConstraint("xact_id", "purpose", name=op.f("pk_transaction_grants")),
        schema="hacs_audit",
    )
    op.create_table(
        "audit_retention_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "ran_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("cutoff", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column(
            "database_role", sa.Text(), server_default=sa.text("session_user"), nullable=False
        ),
        sa.CheckConstraint(
            "cutoff <= ran_at - interval '1 day'",
            name=op.f("ck_audit_retention_runs_keeps_a_day"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_retention_runs")),
        schema="hacs_audit",
    )
    op.create_table(
        "audit_seals",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "sealed_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sealed_by", sa.Text(), server_default=sa.text("session_user"), nullable=False),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("rows_digest", sa.Text(), nullable=False),
        sa.Column("previous_head", sa.Text(), nullable=True),
        sa.Column("head", sa.Text(), nullable=False),
        sa.CheckConstraint("last_id > after_id", name=op.f("ck_audit_seals_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seals")),
        schema="hacs_audit",
    )
    op.create_table(
        "audit_sealed_rows",
        sa.Column("audit_event_id", sa.BigInteger(), nullable=False),
        sa.Column("seal_id", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("row_hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seal_id"],
            ["hacs_audit.audit_seals.id"],
            name=op.f("fk_audit_sealed_rows_seal_id_audit_seals"),
        ),
        sa.PrimaryKeyConstraint("audit_event_id", name=op.f("pk_audit_sealed_rows")),
        schema="hacs_audit",
    )
    op.create_index(
        op.f("ix_audit_sealed_rows_seal_id"),
        "audit_sealed_rows",
        ["seal_id"],
        unique=False,
        schema="hacs_audit",
    )


_OWNER_ONLY = (
    "hacs_audit.transaction_grants",
    "hacs_audit.audit_retention_runs",
    "hacs_audit.audit_seals",
    "hacs_audit.audit_sealed_rows",
)


def upgrade() -> None:
    _create_tables()
    for table in _OWNER_ONLY:
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC")
    op.add_column(
        "audit_events", sa.Column("database_role", sa.Text(), nullable=True), schema="hacs_audit"
    )
    op.execute(_STAMP_AUDIT_ROW)
    op.execute(
        "CREATE TRIGGER audit_events_server_stamp BEFORE INSERT ON hacs_audit.audit_events "
        "FOR EACH ROW EXECUTE FUNCTION hacs_audit.stamp_audit_row()"
    )
    op.execute(_REJECT_AUDIT_CHANGE)
    op.execute(_APPLY_RETENTION)
    op.execute(_REJECT_VERSION_CHANGE)
    op.execute(
        "CREATE TRIGGER resource_versions_no_update_delete BEFORE UPDATE OR DELETE "
        "ON hacs_core.resource_versions FOR EACH ROW "
        "EXECUTE FUNCTION hacs_core.reject_version_change()"
    )
    op.execute(_guarded_purge())


def downgrade() -> None:
    op.execute(_R0004._PURGE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP TRIGGER resource_versions_no_update_delete ON hacs_core.resource_versions")
    op.execute("DROP FUNCTION hacs_core.reject_version_change()")
    op.execute(_R0003._APPLY.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(_R0003._WITH_RETENTION)
    op.execute("DROP TRIGGER audit_events_server_stamp ON hacs_audit.audit_events")
    op.execute("DROP FUNCTION hacs_audit.stamp_audit_row()")
    op.drop_column("audit_events", "database_role", schema="hacs_audit")
    op.drop_index(
        op.f("ix_audit_sealed_rows_seal_id"), table_name="audit_sealed_rows", schema="hacs_audit"
    )
    for table in ("audit_sealed_rows", "audit_seals", "audit_retention_runs", "transaction_grants"):
        op.drop_table(table, schema="hacs_audit")
