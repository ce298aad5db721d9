"""LangGraph persistence on hacs tables (the optional extra ``hacs[langgraph]``).

:class:`HacsCheckpointSaver` is a LangGraph checkpointer whose checkpoints, channel values and
pending writes live in ``hacs_agents.langgraph_*``; every call goes through the adapter's access
gate as the actor the saver is bound to, and is audited. :class:`HacsStore` is a LangGraph store
whose items are ``MemoryBlock`` resources. docs/agents.md shows both.
"""

from __future__ import annotations

# The extra's own packages: without them the import names what to install, not a module deep
# inside LangGraph. Any other ImportError is a bug of ours and propagates unchanged.
_EXTRA_PACKAGES = frozenset({"langgraph", "langchain_core"})

try:
    from hacs_persistence.langgraph.checkpoint import (
        CHECKPOINT_RESOURCE_TYPE,
        HacsCheckpointSaver,
        Retention,
    )
    from hacs_persistence.langgraph.store import STORE_TAG, HacsStore
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] not in _EXTRA_PACKAGES:
        raise
    raise ModuleNotFoundError(
        f"hacs_persistence.langgraph needs LangGraph, which is not installed "
        f"(no module named {exc.name!r}): pip install 'hacs[langgraph]'",
        name=exc.name,
    ) from exc

__all__ = ["CHECKPOINT_RESOURCE_TYPE", "STORE_TAG", "HacsCheckpointSaver", "HacsStore", "Retention"]
