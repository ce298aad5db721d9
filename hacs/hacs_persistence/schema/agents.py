"""``hacs_agents``: agent messages, memory blocks and agent sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlalchemy.orm import Mapped

from hacs_persistence.schema.base import TypedResourceTable, key_column, typed_table_args
from hacs_persistence.schema.mixins import PatientLinkMixin, StatusMixin
from hacs_persistence.schema.sources import attr
from hacs_persistence.schema.vectors import embedding_column, hnsw_index

__all__ = ["AgentMessageTable", "AgentSessionTable", "MemoryBlockTable"]

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
