"""FHIR JSON text with exact decimals: ``loads``, ``dumps`` and the ``DecimalLiteral`` number.

FHIR requires a decimal to keep its precision as written (``1.00`` is not ``1.0``, and
``-1.000000000000000000E+245`` is not a 246-digit integer), which a Python float cannot hold.
``loads`` reads every non-integer number whose text a float would not give back as a
``DecimalLiteral``: a float (so arithmetic, comparisons and ``json.dumps`` keep working) that
remembers its literal text. ``dumps`` writes that text back. ``from_fhir`` records such literals
in the extras entry ``DECIMAL_KEY`` of the object that holds them (the stored document keeps the
number as a number, for SQL, and the text beside it); ``to_fhir`` gives them back as
``DecimalLiteral`` while the value is still the same number.
"""

import json
import re
import secrets
from decimal import Decimal
from typing import Any

__all__ = [
    "DECIMAL_KEY",
    "DecimalLiteral",
    "decimal_literal",
    "dumps",
    "float_keeps",
    "loads",
    "same_number",
]

DECIMAL_KEY = "fhir:decimal"
"""Extras entry of an object: element name -> literal text of its decimal (a list of texts, or
None per position, for an array of numbers), kept where a float would not give the text back."""


class DecimalLiteral(float):
    """A FHIR decimal: the nearest float, plus the exact literal text it was written as."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> "DecimalLiteral":
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __reduce__(self) -> tuple[type["DecimalLiteral"], tuple[str]]:
        return DecimalLiteral, (self.text,)


def decimal_literal(text: str) -> float:
    """The number of a JSON literal: a plain float when that keeps it, else a ``DecimalLiteral``."""
    number = float(text)
    return number if float_keeps(text, number) else DecimalLiteral(text)


def float_keeps(text: str, number: float) -> bool:
    """Whether every way hacs stores ``number`` gives ``text`` back.

    A float's repr must be the text; and not ``5.0``: pydantic reads a JSON ``5.0`` into a
    typed ``Decimal`` field as ``Decimal('5')`` (scale lost), so such a literal is kept too.
    """
    return repr(number) == text and not text.endswith(".0")


def same_number(value: Any, text: str) -> bool:
    """Whether ``value`` (a typed field or JSON number) is still the number ``text`` denotes."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    if isinstance(value, float):
        return value == float(text)
    # A Decimal, or an int: PostgreSQL's jsonb gives ``-1e+245`` back as its 246 digits.
    return Decimal(value) == Decimal(text)


def loads(text: str | bytes) -> Any:
    """FHIR JSON text as Python data, decimals exact (see ``DecimalLiteral``)."""
    return json.loads(text, parse_float=decimal_literal)


def dumps(value: Any, **options: Any) -> str:
    """JSON text of FHIR data with every ``DecimalLiteral`` (and ``Decimal``) written exactly.

    ``options`` are ``json.dumps``'s (``ensure_ascii``, ``separators``, ``indent``, ...).
    """
    marker = secrets.token_hex(8)
    found = False

    def literal(item: Any) -> Any:
        nonlocal found
        found = True
        if isinstance(item, Decimal):
            return f"\x00{marker}{item}\x00"
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    text = json.dumps(_mark(value, marker), default=literal, **options)
    if not found and marker not in text:
        return text
    return re.sub(rf'"\\u0000{marker}([^"\\]*)\\u0000"', r"\1", text)


def _mark(value: Any, marker: str) -> Any:
    """``value`` with each ``DecimalLiteral`` as a marker string (the same object if none)."""
    if type(value) is DecimalLiteral:
        return f"\x00{marker}{value.text}\x00"
    if isinstance(value, dict):
        changed = None
        for key, item in value.items():
            marked = _mark(item, marker)
            if marked is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = marked
        return value if changed is None else changed
    if isinstance(value, list):
        marked_items = [_mark(item, marker) for item in value]
        if any(a is not b for a, b in zip(marked_items, value, strict=True)):
            return marked_items
        return value
    return value
