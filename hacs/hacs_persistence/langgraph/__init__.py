"""LangGraph persistence on hacs tables (the optional extra ``hacs[langgraph]``).

:class:`HacsCheckpointSaver` is a LangGraph checkpointer whose checkpoints, channel values and
pending writes live in ``hacs_agents.langgraph_*``; every call goes through the adapter's access
gate as the actor the saver is bound to, and is audited. :class:`HacsStore` is a LangGraph store
whose items are ``MemoryBlock`` resources. docs/agents.md shows both.
"""

from __future__ import annotations

from hacs_persistence.langgraph.checkpoint import (
    CHECKPOINT_RESOURCE_TYPE,
    HacsCheckpointSaver,
    Retention,
)
from hacs_persistence.langgraph.store import STORE_TAG, HacsStore

__all__ = ["CHECKPOINT_RESOURCE_TYPE", "STORE_TAG", "HacsCheckpointSaver", "HacsStore", "Retention"]
