"""Audit rows of reads list what they returned: resource ids and the patients they belong to.

``resource_ids`` holds the ids a read, search, similarity search, history or export returned;
``patient_ids`` the patients whose data that was, with a GIN index, so "who saw patient X's
record" is one indexed query that keeps working after the record itself is erased. Old rows
keep NULL in both (they did not record it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("resource_ids", "patient_ids"):
        op.add_column(
            "audit_events",
            sa.Column(name, postgresql.ARRAY(sa.Text()), nullable=True),
            schema="hacs_audit",
        )
    op.create_index(
        "ix_audit_events_patient_ids",
        "audit_events",
        ["patient_ids"],
        schema="hacs_audit",
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_patient_ids", "audit_events", schema="hacs_audit")
    for name in ("patient_ids", "resource_ids"):
        op.drop_column("audit_events", name, schema="hacs_audit")
