"""Token revocations checked at verification: ``hacs_admin.token_revocations``.

A row revokes one access token (its ``jti``) or every token of an actor issued before
``issued_before`` ("deactivate this user"). ``hacs_persistence.access.revocations`` writes the rows
(audited as ``token.revoke``) and every verifying process reads them, cached for a few seconds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.Integer(), sa.Identity(always=True), nullable=False),
        sa.Column("jti", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column("issued_before", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "revoked_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(jti IS NULL) <> (actor_id IS NULL)",
            name=op.f("ck_token_revocations_one_subject"),
        ),
        sa.CheckConstraint(
            "(actor_id IS NULL) = (issued_before IS NULL)",
            name=op.f("ck_token_revocations_actor_cutoff"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_revocations")),
        sa.UniqueConstraint("jti", name=op.f("uq_token_revocations_jti")),
        schema="hacs_admin",
    )
    op.create_index(
        op.f("ix_token_revocations_actor_id"),
        "token_revocations",
        ["actor_id"],
        unique=False,
        schema="hacs_admin",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_token_revocations_actor_id"), table_name="token_revocations", schema="hacs_admin"
    )
    op.drop_table("token_revocations", schema="hacs_admin")
