"""The one check of the ids callers pass in (read, delete, history, purge, finders, exports).

An id that is not a FHIR id cannot name a stored resource (models refuse such ids), so it is
refused before any SQL and before the audit row that would otherwise record it verbatim
(newlines, kilobytes, or a person's identifier pasted where an id belongs). The message says
what an id may be and never quotes the value.
"""

from __future__ import annotations

from hacs_models import ID_RULE, is_resource_id
from hacs_persistence.errors import ResourceValidationError

__all__ = ["checked_id"]


def checked_id(
    value: object,
    what: str = "resource_id",
    error: type[ResourceValidationError] = ResourceValidationError,
) -> str:
    """``value`` if it is a valid resource id, else ``error`` (a ``ResourceValidationError``)."""
    if not is_resource_id(value):
        raise error(f"{what} must be {ID_RULE}; the value given is not (it is not shown here).")
    assert isinstance(value, str)
    return value
