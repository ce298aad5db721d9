"""Registry resources (the hacs_registry schema): resource and tool definitions, knowledge."""

from typing import Any

from pydantic import Field

from .base import BaseResource
from .datatypes import JsonObject

__all__ = ["KnowledgeItem", "ResourceDefinition", "ToolDefinition"]


class ResourceDefinition(BaseResource):
    """A versioned JSON schema of a resource; the database keeps name+version unique."""

    resource_type: str = "ResourceDefinition"
    name: str
    definition_version: str = "1.0.0"
    json_schema: JsonObject
    description: str | None = None
    status: str = "active"


class ToolDefinition(BaseResource):
    """A tool an agent can call, described by its input (and output) JSON schemas."""

    resource_type: str = "ToolDefinition"
    name: str
    tool_version: str = "1.0.0"
    description: str | None = None
    domain: str | None = None
    input_schema: JsonObject
    output_schema: JsonObject | None = None
    status: str = "active"
    tags: list[str] = Field(default_factory=list)


class KnowledgeItem(BaseResource):
    """A piece of knowledge (fact, guideline excerpt, ...) agents can retrieve, with embedding."""

    resource_type: str = "KnowledgeItem"
    title: str
    content: str
    knowledge_type: str = "fact"
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata (named ``attributes``: ``metadata`` clashes with ORM conventions)."""
    embedding: list[float] | None = None
