"""LangGraph persistence: ``hacs_agents.langgraph_checkpoints``, ``_blobs`` and ``_writes``.

``hacs_persistence.langgraph.HacsCheckpointSaver`` keeps a graph's checkpoints here: the
checkpoint itself, each channel value once per version (blobs) and the tasks' pending writes.
The application role may delete these rows (retention, ``delete_thread``): docs/operations.md
Step 3 grants it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "hacs_agents"


def upgrade() -> None:
    op.create_table(
        "langgraph_checkpoints",
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.Text(), nullable=False),
        sa.Column("parent_checkpoint_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        sa.Column("channel_versions", postgresql.JSONB(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "checkpoint_id", name=op.f("pk_langgraph_checkpoints")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_langgraph_checkpoints_created_at"),
        "langgraph_checkpoints",
        ["created_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_table(
        "langgraph_blobs",
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "channel", "version", name=op.f("pk_langgraph_blobs")
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "langgraph_writes",
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("task_path", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint(
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
            name=op.f("pk_langgraph_writes"),
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("langgraph_writes", schema=SCHEMA)
    op.drop_table("langgraph_blobs", schema=SCHEMA)
    op.drop_index(
        op.f("ix_langgraph_checkpoints_created_at"),
        table_name="langgraph_checkpoints",
        schema=SCHEMA,
    )
    op.drop_table("langgraph_checkpoints", schema=SCHEMA)
