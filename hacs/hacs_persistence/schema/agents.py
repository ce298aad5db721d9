"""``hacs_agents``: agent messages, memory blocks, agent sessions and LangGraph checkpoints.

The three ``langgraph_*`` tables are not resource tables: they hold the LangGraph checkpointer's
state (``hacs_persistence.langgraph.HacsCheckpointSaver``) in the layout LangGraph's own saver
uses, so a channel value that did not change between checkpoints is stored once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, LargeBinary, func
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base, TypedResourceTable, key_column, typed_table_args
from hacs_persistence.schema.mixins import PatientLinkMixin, StatusMixin
from hacs_persistence.schema.sources import attr
from hacs_persistence.schema.vectors import embedding_column, hnsw_index

__all__ = [
    "AgentMessageTable",
    "AgentSessionTable",
    "CheckpointBlobTable",
    "CheckpointTable",
    "CheckpointWriteTable",
    "MemoryBlockTable",
]

SCHEMA = "hacs_agents"


class AgentMessageTable(PatientLinkMixin, TypedResourceTable):
    """Messages exchanged in agent conversations."""

    __tablename__ = "agent_messages"
    __table_args__ = typed_table_args(SCHEMA)

    agent_id: Mapped[str | None] = key_column(attr("agent_id"), index=True)
    session_id: Mapped[str | None] = key_column(attr("session_id"), index=True)
    role: Mapped[str] = key_column(attr("role"))
    sent_at: Mapped[datetime | None] = key_column(attr("sent_at"))


class MemoryBlockTable(PatientLinkMixin, TypedResourceTable):
    """Agent memory with an embedding for semantic recall."""

    __tablename__ = "memory_blocks"
    __table_args__ = typed_table_args(
        SCHEMA,
        Index("ix_memory_blocks_tags", "tags", postgresql_using="gin"),
        hnsw_index("memory_blocks"),
    )

    agent_id: Mapped[str | None] = key_column(attr("agent_id"), index=True)
    session_id: Mapped[str | None] = key_column(attr("session_id"))
    memory_type: Mapped[str] = key_column(attr("memory_type"), index=True)
    tags: Mapped[list[str] | None] = key_column(attr("tags"))
    importance_score: Mapped[float | None] = key_column(attr("importance_score"))
    embedding: Mapped[Any] = embedding_column()


class AgentSessionTable(PatientLinkMixin, StatusMixin, TypedResourceTable):
    """Agent sessions (one conversation or workflow run)."""

    __tablename__ = "agent_sessions"
    __table_args__ = typed_table_args(SCHEMA)

    agent_id: Mapped[str] = key_column(attr("agent_id"), index=True)
    user_id: Mapped[str | None] = key_column(attr("user_id"))
    started_at: Mapped[datetime | None] = key_column(attr("started_at"))
    ended_at: Mapped[datetime | None] = key_column(attr("ended_at"))


class CheckpointTable(Base):
    """One LangGraph checkpoint, without its channel values (those are in the blobs)."""

    __tablename__ = "langgraph_checkpoints"
    __table_args__ = (
        # Retention by age scans this index, never the whole table.
        Index("ix_langgraph_checkpoints_created_at", "created_at"),
        {"schema": SCHEMA},
    )

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(primary_key=True)
    parent_checkpoint_id: Mapped[str | None]
    # The serializer's (type, bytes) pair of the checkpoint minus channel_values.
    type: Mapped[str]
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    # Channel -> version as text: which blob rows the checkpoint uses (retention keeps them).
    channel_versions: Mapped[dict[str, Any]]
    # JSON, so that list(filter=...) is one containment test in SQL.
    checkpoint_metadata: Mapped[dict[str, Any]] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str | None]


class CheckpointBlobTable(Base):
    """A channel's value at one version (shared by every checkpoint of that version)."""

    __tablename__ = "langgraph_blobs"
    __table_args__ = ({"schema": SCHEMA},)

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(primary_key=True)
    type: Mapped[str]
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class CheckpointWriteTable(Base):
    """A pending write of a task, linked to the checkpoint it follows."""

    __tablename__ = "langgraph_writes"
    __table_args__ = ({"schema": SCHEMA},)

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str]
    type: Mapped[str]
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    task_path: Mapped[str] = mapped_column(server_default="")
