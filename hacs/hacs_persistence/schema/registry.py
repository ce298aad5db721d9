"""``hacs_registry``: resource definitions, tool definitions and knowledge items for agents."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.orm import Mapped

from hacs_persistence.schema.base import TypedResourceTable, key_column, typed_table_args
from hacs_persistence.schema.mixins import StatusMixin
from hacs_persistence.schema.sources import attr
from hacs_persistence.schema.vectors import embedding_column, hnsw_index

__all__ = ["KnowledgeItemTable", "ResourceDefinitionTable", "ToolDefinitionTable"]

SCHEMA = "hacs_registry"


class ResourceDefinitionTable(StatusMixin, TypedResourceTable):
    """Registered resource definitions: a versioned JSON schema, unique per name and version."""

    __tablename__ = "resource_definitions"
    __table_args__ = typed_table_args(SCHEMA, UniqueConstraint("name", "definition_version"))

    name: Mapped[str] = key_column(attr("name"))
    definition_version: Mapped[str] = key_column(attr("definition_version"))


class ToolDefinitionTable(StatusMixin, TypedResourceTable):
    """Tool definitions agents can call, unique per name and tool version."""

    __tablename__ = "tool_definitions"
    __table_args__ = typed_table_args(SCHEMA, UniqueConstraint("name", "tool_version"))

    name: Mapped[str] = key_column(attr("name"))
    tool_version: Mapped[str] = key_column(attr("tool_version"))
    domain: Mapped[str | None] = key_column(attr("domain"), index=True)


class KnowledgeItemTable(TypedResourceTable):
    """Knowledge items with an embedding for semantic search."""

    __tablename__ = "knowledge_items"
    __table_args__ = typed_table_args(
        SCHEMA,
        Index("ix_knowledge_items_tags", "tags", postgresql_using="gin"),
        hnsw_index("knowledge_items"),
    )

    title: Mapped[str] = key_column(attr("title"))
    knowledge_type: Mapped[str | None] = key_column(attr("knowledge_type"), index=True)
    tags: Mapped[list[str] | None] = key_column(attr("tags"))
    source: Mapped[str | None] = key_column(attr("source"))
    embedding: Mapped[Any] = embedding_column()
