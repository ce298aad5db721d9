"""Tool domains: groups of agent-facing tools, one module each (``database``: resource CRUD)."""

from hacs_tools.domains.database import (
    adelete_resource,
    aread_resource,
    aresource_history,
    asave_resource,
    asearch_resources,
    asearch_similar_resources,
    aupdate_resource,
    delete_resource,
    read_resource,
    resource_history,
    save_resource,
    search_resources,
    search_similar_resources,
    update_resource,
)

__all__ = [
    "adelete_resource",
    "aread_resource",
    "aresource_history",
    "asave_resource",
    "asearch_resources",
    "asearch_similar_resources",
    "aupdate_resource",
    "delete_resource",
    "read_resource",
    "resource_history",
    "save_resource",
    "search_resources",
    "search_similar_resources",
    "update_resource",
]
