"""Where a view's FHIRPath is a typed column, and under which condition the two are equal.

A view over a resource type with a typed table reads its rows from that table; a column whose
path is listed here comes from the typed column (and the table's indexes serve filters on it),
every other column from the resource's FHIR JSON in ``hacs_views.fhir_resources``. A typed column
is used only where it provably holds the FHIRPath's value: ``inexact_when`` says on which rows
it does not, and those read the document. ``tests/test_views_typed.py``
checks every entry against the JSON compilation on the shared FHIR data.
"""

from __future__ import annotations

from dataclasses import dataclass

from hacs_persistence.schema.core import OBSERVATION_VIEW_FALLBACK
from hacs_persistence.views.fhirpath import Node, parse

__all__ = ["TypedPath", "backfill_statement", "typed_path"]


@dataclass(frozen=True)
class TypedPath:
    """A typed column that equals a FHIRPath's value (as its view column type) on most rows.

    Attributes:
        column: The typed table's column.
        inexact_when: SQL on the typed row (bare column names), never NULL: the rows where the
            column is not the path's value and the view reads the document (None: no such row).
        numeric: Numeric (view type decimal); else text (string and date/time types).
    """

    column: str
    inexact_when: str | None = None
    numeric: bool = False


# The resource's key: the typed table's primary key.
_KEY = {"getResourceKey()": TypedPath("id"), "id": TypedPath("id")}
_FALLBACK = OBSERVATION_VIEW_FALLBACK
_PATHS: dict[str, dict[str, TypedPath]] = {
    "Observation": {
        # CodedMixin's code: the first coding of `code` that has a code (sources.coding), which
        # is FHIRPath's first() over code.coding.code.
        "code.coding.code.first()": TypedPath("code"),
        "code.coding.system.first()": TypedPath("code_system"),
        # parse_reference of subject; revision 0011 makes getReferenceKey read references the
        # same way.
        "subject.getReferenceKey(Patient)": TypedPath("patient_id", _FALLBACK["patient_id"]),
        # value_numeric is valueQuantity.value or valueInteger: a unit proves a Quantity.
        "value.ofType(Quantity).value": TypedPath(
            "value_numeric", _FALLBACK["value_numeric"], numeric=True
        ),
        # value_unit is exactly valueQuantity.unit (NULL: no Quantity, or one without a unit).
        "value.ofType(Quantity).unit": TypedPath("value_unit"),
        "status": TypedPath("status"),
        # effective_text is effectiveDateTime's text (revision 0011).
        "effective.ofType(dateTime)": TypedPath("effective_text", _FALLBACK["effective_text"]),
    },
}
_PARSED: dict[str, dict[Node, TypedPath]] = {
    resource: {parse(path): typed for path, typed in {**_KEY, **paths}.items()}
    for resource, paths in _PATHS.items()
}


# Typed columns a row can lack while its FHIR JSON has the value: a row stored before the column
# existed (revision 0011 back-filled only rows that had FHIR JSON then) or written by SQL outside
# the adapter. Such a row is inexact and every view reads its document, which is correct but
# slow; a sync, which writes the documents, fills these columns from them.
_BACKFILL: dict[str, tuple[str, dict[str, str]]] = {
    "Observation": ('"hacs_core"."observations"', {"effective_text": "effectiveDateTime"}),
}


def backfill_statement(resource_type: str) -> str | None:
    """SQL filling the type's document-derived typed columns where NULL (None: there are none).

    Only rows whose document in ``hacs_views.fhir_resources`` is the typed row's (``stored_typed``)
    and has the field as a string; the column keeps the text exactly as the document has it.
    """
    entry = _BACKFILL.get(resource_type)
    if entry is None:
        return None
    table, columns = entry
    sets = ", ".join(f"{c} = COALESCE(t.{c}, r.resource ->> '{f}')" for c, f in columns.items())
    missing = " OR ".join(
        f"(t.{c} IS NULL AND jsonb_typeof(r.resource -> '{f}') = 'string')"
        for c, f in columns.items()
    )
    return (
        f"UPDATE {table} AS t SET {sets} FROM hacs_views.fhir_resources AS r "
        f"WHERE r.resource_type = t.resource_type AND r.id = t.id AND r.stored_typed "
        f"AND ({missing})"
    )


def typed_path(resource_type: str, path: str) -> TypedPath | None:
    """The typed column that ``path`` (at the resource's root) maps onto, if any."""
    paths = _PARSED.get(resource_type)
    return None if paths is None else paths.get(parse(path))
