"""LangGraph persistence on hacs tables (the optional extra ``hacs[langgraph]``).

:class:`HacsCheckpointSaver` is a LangGraph checkpointer whose checkpoints, channel values and
pending writes live in ``hacs_agents.langgraph_*``; every call goes through the adapter's access
gate as the actor the saver is bound to, and is audited. docs/agents.md shows it in a graph.
"""

from __future__ import annotations

from hacs_persistence.langgraph.checkpoint import (
    CHECKPOINT_RESOURCE_TYPE,
    HacsCheckpointSaver,
    Retention,
)

__all__ = ["CHECKPOINT_RESOURCE_TYPE", "HacsCheckpointSaver", "Retention"]
