"""Add hacs_core.patients.deceased, back-filled from the stored documents.

The column is derived like every key column (see ``PatientTable.deceased``): the document's
``deceased_boolean``, else true when only ``deceased_date_time`` is recorded. Existing rows are
back-filled from their current document in ``resource_versions``; the ``patients_current`` view,
which lists the table's columns, is recreated around the change in both directions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hacs_persistence.schema.views import current_view_rebuilt

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with current_view_rebuilt(op.execute, "hacs_core", "patients"):
        op.add_column(
            "patients", sa.Column("deceased", sa.Boolean(), nullable=True), schema="hacs_core"
        )
        op.execute(
            """
            UPDATE hacs_core.patients p
            SET deceased = coalesce(
                (v.document ->> 'deceased_boolean')::boolean,
                CASE WHEN v.document ->> 'deceased_date_time' IS NOT NULL THEN true END)
            FROM hacs_core.resource_versions v
            WHERE v.resource_type = p.resource_type AND v.id = p.id AND v.version = p.version
            """
        )


def downgrade() -> None:
    with current_view_rebuilt(op.execute, "hacs_core", "patients"):
        op.drop_column("patients", "deceased", schema="hacs_core")
