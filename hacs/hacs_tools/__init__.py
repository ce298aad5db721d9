"""Agent-facing tools: functions that act as the current actor and return results, never raise.

Every tool returns a :class:`HACSResult` (``success``, ``message``, ``data``, ``error``) so an
agent can read the outcome instead of handling exceptions. Each ``a*`` coroutine has a sync twin
that also works inside a running event loop::

    from hacs_auth import acting_as
    from hacs_tools import read_resource

    with acting_as(actor):
        result = read_resource(resource_id="patient-1234", resource_type="Patient")
    if result.success:
        patient = result.data["resource"]

The database is configuration, never a tool argument: the application calls
:func:`configure_tools` (or sets ``DATABASE_URL``), so an agent cannot point a tool elsewhere.
"""

import logging as _logging

from hacs_auth import configure_hacs
from hacs_tools.configuration import ToolConfiguration, configure_tools, tool_configuration
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
from hacs_tools.results import ErrorCode, HACSResult

__all__ = [
    "ErrorCode",
    "HACSResult",
    "ToolConfiguration",
    "adelete_resource",
    "aread_resource",
    "aresource_history",
    "asave_resource",
    "asearch_resources",
    "asearch_similar_resources",
    "aupdate_resource",
    "configure_hacs",
    "configure_tools",
    "delete_resource",
    "read_resource",
    "resource_history",
    "save_resource",
    "search_resources",
    "search_similar_resources",
    "tool_configuration",
    "update_resource",
]

# A library leaves logging to the application: without this handler, Python's last-resort
# handler would print this package's WARNING and ERROR records on stderr.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
