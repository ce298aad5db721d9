"""Reference resolution inside imported FHIR JSON: identifier indexes and reference slots."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from hacs_persistence.interchange._sources import Criterion, identifiers_of

__all__ = ["AMBIGUOUS", "IdentifierIndex", "reference_slots"]


class _Ambiguous:
    """Marker of a criterion that matches more than one resource (never resolved)."""

    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS: Final = _Ambiguous()


class IdentifierIndex:
    """Resource ids by (type, identifier system, value), also by (type, any system, value)."""

    def __init__(self) -> None:
        self._ids: defaultdict[Criterion, set[str]] = defaultdict(set)

    def add(self, resource_type: str, resource_id: str, resource: dict[str, Any]) -> None:
        """Index the identifiers of one resource."""
        for system, value in identifiers_of(resource):
            self._ids[(resource_type, system, value)].add(resource_id)
            self._ids[(resource_type, None, value)].add(resource_id)

    def update(self, other: IdentifierIndex) -> None:
        """Add every identifier of another index (a file's, once the file has been read)."""
        for key, ids in other._ids.items():
            self._ids[key].update(ids)

    def lookup(self, criterion: Criterion, exclude: str | None = None) -> str | _Ambiguous | None:
        """The one id matching ``criterion`` (not counting ``exclude``), AMBIGUOUS, or None."""
        ids = self._ids.get(criterion)
        if not ids:
            return None
        if exclude is not None and exclude in ids:
            if len(ids) == 1:
                return None
            ids = ids - {exclude}
        if len(ids) > 1:
            return AMBIGUOUS
        return next(iter(ids))

    def __len__(self) -> int:
        return len(self._ids)


def reference_slots(resource: dict[str, Any], full_urls: dict[str, str]) -> list[dict[str, Any]]:
    """The Reference objects of a resource whose ``reference`` may need rewriting.

    Those are ``urn:`` references, conditional references (``Type?...``) and references equal
    to the fullUrl of an entry of the same Bundle. A Bundle resource stored whole keeps its
    references: they resolve inside it.
    """
    if resource.get("resourceType") == "Bundle":
        return []
    found: list[dict[str, Any]] = []
    _collect(resource, full_urls, found)
    return found


def _collect(node: dict[str, Any] | list[Any], full_urls: dict[str, str], found: list[Any]) -> None:
    # Recursive with exact type checks: four times faster than a generic walk, and JSON from
    # json.loads is only ever dicts, lists and scalars.
    if type(node) is dict:
        reference = node.get("reference")
        if type(reference) is str and (
            reference.startswith("urn:") or "?" in reference or reference in full_urls
        ):
            found.append(node)
        values: Iterable[Any] = node.values()
    else:
        values = node
    for value in values:
        kind = type(value)
        if kind is dict or kind is list:
            _collect(value, full_urls, found)
