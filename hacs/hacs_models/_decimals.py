"""Exact FHIR decimals: the literal-keeping float and the extras entry that keeps a literal.

Below the models (``datatypes`` uses it for ``Quantity.value``); ``hacs_models.fhir`` builds
``loads``/``dumps`` and the conversion rules on it.
"""

from decimal import Decimal
from typing import Any

__all__ = ["DECIMAL_KEY", "DecimalLiteral", "decimal_literal", "float_keeps", "same_number"]

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
    if Decimal(value) == Decimal(text):
        return True
    # Or exactly the float the text reads as: a JSON number is a float on its way into a
    # typed field (``66.899999999999991`` arrives as ``66.89999999999999``), and the kept text
    # must give the field its digits back, or the typed columns hold the float's.
    return isinstance(value, Decimal) and value == Decimal(repr(float(text)))
