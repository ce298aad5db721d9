"""Tool domains: groups of agent-facing tools, one module each (``database``: resource CRUD)."""

from hacs_tools.domains.database import (
    adelete_resource,
    aread_resource,
    asave_resource,
    asearch_resources,
    aupdate_resource,
    delete_resource,
    read_resource,
    save_resource,
    search_resources,
    update_resource,
)

__all__ = [
    "adelete_resource",
    "aread_resource",
    "asave_resource",
    "asearch_resources",
    "aupdate_resource",
    "delete_resource",
    "read_resource",
    "save_resource",
    "search_resources",
    "update_resource",
]
