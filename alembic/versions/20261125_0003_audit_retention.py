"""Audit retention: the only way audit rows ever leave, itself audited.

The append-only trigger now lets a DELETE through only inside ``hacs_audit.apply_retention``
(which marks the transaction and runs with its owner's rights) and only for rows older than the
age it was given. UPDATE and TRUNCATE stay refused for everyone; direct DELETEs stay refused.
The function writes one audit row saying how many rows it removed and who asked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:40:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRICT = """
CREATE OR REPLACE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hacs_audit.audit_events is append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_WITH_RETENTION = """
CREATE OR REPLACE FUNCTION hacs_audit.reject_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('hacs.audit_retention_cutoff', true) IS NOT NULL
       AND current_setting('hacs.audit_retention_cutoff', true) <> ''
       AND OLD.occurred_at < current_setting('hacs.audit_retention_cutoff', true)::timestamptz
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'hacs_audit.audit_events is append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_APPLY = """
CREATE FUNCTION hacs_audit.apply_retention(max_age interval, requested_by text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, hacs_audit AS $$
DECLARE
    cutoff timestamptz := now() - max_age;
    removed bigint;
BEGIN
    IF max_age < interval '1 day' THEN
        RAISE EXCEPTION 'audit retention must keep at least one day (got %)', max_age
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('hacs.audit_retention_cutoff', cutoff::text, true);
    DELETE FROM hacs_audit.audit_events WHERE occurred_at < cutoff;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('hacs.audit_retention_cutoff', '', true);
    INSERT INTO hacs_audit.audit_events
        (actor_id, action, resource_type, outcome, result_count, detail)
    VALUES (requested_by, 'audit_retention', 'AuditEvent', 'success', removed,
            'removed audit rows older than ' || cutoff::text);
    RETURN removed;
END
$$
"""


def upgrade() -> None:
    op.execute(_WITH_RETENTION)
    op.execute(_APPLY)
    # Only the owner (or whom it grants) may run retention.
    op.execute("REVOKE ALL ON FUNCTION hacs_audit.apply_retention(interval, text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION hacs_audit.apply_retention(interval, text)")
    op.execute(_STRICT)
