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

__all__ = ["TypedPath", "typed_path"]


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


def typed_path(resource_type: str, path: str) -> TypedPath | None:
    """The typed column that ``path`` (at the resource's root) maps onto, if any."""
    paths = _PARSED.get(resource_type)
    return None if paths is None else paths.get(parse(path))
