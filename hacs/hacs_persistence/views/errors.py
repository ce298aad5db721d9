"""The typed error of the views package."""

from __future__ import annotations

from hacs_persistence.errors import HacsPersistenceError

__all__ = ["ViewDefinitionError"]


class ViewDefinitionError(HacsPersistenceError, ValueError):
    """A ViewDefinition that is invalid, unsupported, or whose data breaks its declared shape.

    Raised when a definition is parsed or compiled (bad structure, bad FHIRPath, unknown
    constant, mismatched ``unionAll`` columns) and when its rows are read (a non-collection
    column with several values, a ``where`` path that is not boolean).
    """
