"""Agent resources (the hacs_agents schema): messages, memories and sessions of AI agents."""

from typing import Literal

from pydantic import Field

from ._time import UtcDatetime, utc_now
from .base import BaseResource
from .datatypes import JsonObject, Reference

__all__ = ["AgentMessage", "AgentSession", "MemoryBlock", "MemoryType", "MessageRole"]

MessageRole = Literal["user", "assistant", "system", "tool"]
"""Who produced an agent message."""

MemoryType = Literal["episodic", "procedural", "executive", "semantic"]
"""Kind of agent memory."""


class AgentMessage(BaseResource):
    """One message of an agent conversation, optionally about a patient."""

    resource_type: str = "AgentMessage"
    role: MessageRole
    content: str
    agent_id: str | None = None
    session_id: str | None = None
    subject: Reference | None = None
    tool_calls: list[JsonObject] = Field(default_factory=list)
    sent_at: UtcDatetime = Field(default_factory=utc_now)


class MemoryBlock(BaseResource):
    """A unit of agent memory, ranked by importance and searchable by embedding."""

    resource_type: str = "MemoryBlock"
    memory_type: MemoryType = "episodic"
    content: str
    agent_id: str | None = None
    session_id: str | None = None
    subject: Reference | None = None
    tags: list[str] = Field(default_factory=list)
    importance_score: float = Field(default=0.5, ge=0.0, le=1.0)
    embedding: list[float] | None = None


class AgentSession(BaseResource):
    """An agent's working session, with its context and lifetime."""

    resource_type: str = "AgentSession"
    agent_id: str
    status: str = "active"
    user_id: str | None = None
    subject: Reference | None = None
    started_at: UtcDatetime = Field(default_factory=utc_now)
    ended_at: UtcDatetime | None = None
    context: JsonObject = Field(default_factory=dict)
