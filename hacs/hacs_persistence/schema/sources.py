"""How a typed key column is derived from a resource.

A source is a small function from a resource (any object with attributes, or a dict) to a column
value. Tables declare their sources on the columns (see ``key_column``); the mapping layer applies
them. Nothing here knows about pydantic: sources only read attributes and keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Source",
    "attr",
    "coalesce",
    "coding",
    "fhir_text",
    "parse_reference",
    "participant_ref",
    "present",
    "primary_name",
    "ref_id",
    "text_of",
]

Source = Callable[[Any], Any]


def _get(obj: Any, key: str | int) -> Any:
    # Sources run for every saved resource (bulk imports: hundreds of thousands), so the common
    # cases come first and avoid abstract-base-class checks: a declared field sits in the
    # object's __dict__; extras and plain dicts fall back to the slower lookups.
    if obj is None:
        return None
    if type(key) is int:
        if isinstance(obj, (list, tuple)):
            return obj[key] if -len(obj) <= key < len(obj) else None
        return None
    if type(obj) is dict:
        return obj.get(key)
    try:
        return obj.__dict__[key]
    except (AttributeError, KeyError):
        pass
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, str(key), None)


def attr(*path: str | int) -> Source:
    """Follow attribute names and list indexes: ``attr("address", 0, "city")``."""
    if len(path) == 1:
        (only,) = path

        def single(resource: Any) -> Any:
            return _get(resource, only)

        return single

    def source(resource: Any) -> Any:
        value = resource
        for key in path:
            value = _get(value, key)
            if value is None:
                return None
        return value

    return source


def present(source: Source) -> Source:
    """True when ``source`` gives a value, else None (e.g. a date that implies a flag)."""

    def check(resource: Any) -> Any:
        return True if source(resource) is not None else None

    return check


def coalesce(*sources: Source) -> Source:
    """The first source that gives a value other than None."""

    def source(resource: Any) -> Any:
        for candidate in sources:
            value = candidate(resource)
            if value is not None:
                return value
        return None

    return source


def parse_reference(reference: str | None) -> tuple[str, str] | None:
    """Split ``Type/id`` (also ``.../Type/id`` and ``Type/id/_history/n``) into (type, id)."""
    if not reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def _reference_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    ref = _get(value, "reference")
    return ref if isinstance(ref, str) else None


def ref_id(*path: str | int, target: str = "Patient") -> Source:
    """The id of the reference at ``path`` when it points at a ``target`` resource."""
    get = attr(*path)

    def source(resource: Any) -> Any:
        parsed = parse_reference(_reference_string(get(resource)))
        return parsed[1] if parsed and parsed[0] == target else None

    return source


def participant_ref(field: str, target: str = "Patient") -> Source:
    """The id of the first ``target`` reference among ``field[*].actor`` (e.g. Appointment)."""

    def source(resource: Any) -> Any:
        for participant in _get(resource, field) or ():
            parsed = parse_reference(_reference_string(_get(participant, "actor")))
            if parsed and parsed[0] == target:
                return parsed[1]
        return None

    return source


def coding(*path: str | int, part: str) -> Source:
    """A part (system, code, display) of the first coding of the CodeableConcept at ``path``.

    When the path ends at a list of CodeableConcepts, the first one is used.
    """
    get = attr(*path)

    def source(resource: Any) -> Any:
        concept = get(resource)
        if isinstance(concept, (list, tuple)):
            concept = concept[0] if concept else None
        codings = _get(concept, "coding") or ()
        for item in codings:
            value = _get(item, part)
            if value is not None:
                return value
        return None

    return source


def text_of(*path: str | int) -> Source:
    """The text of a CodeableConcept: its ``text``, else its first coding's display."""
    get = attr(*path)
    display = coding(*path, part="display")

    def source(resource: Any) -> Any:
        concept = get(resource)
        if isinstance(concept, str):
            return concept
        text = _get(concept, "text")
        return text if text is not None else display(resource)

    return source


def primary_name(part: str) -> Source:
    """A part of the person's official name (else their first name): ``family`` or ``given``."""

    def source(resource: Any) -> Any:
        names = _get(resource, "name") or ()
        chosen = next((n for n in names if _get(n, "use") == "official"), None)
        if chosen is None and names:
            chosen = names[0]
        value = _get(chosen, part)
        if part == "given" and value is not None:
            return list(value)
        return value

    return source


def fhir_text(field: str) -> Source:
    """A top-level element's text exactly as the resource's FHIR JSON gives it (a dateTime with
    its offset and fraction digits), or None when it is absent or not a string.

    The typed column beside a ``timestamptz`` one: views map ``effective.ofType(dateTime)`` onto
    it without reading the document (``hacs_persistence.views.typed``).
    """
    from hacs_models.fhir import fhir_element

    def source(resource: Any) -> Any:
        if field not in getattr(type(resource), "model_fields", ()):
            return None
        value = fhir_element(resource, field)
        return value if isinstance(value, str) else None

    return source
