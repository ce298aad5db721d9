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

import orjson

from .._decimals import DECIMAL_KEY, DecimalLiteral, decimal_literal, float_keeps, same_number

__all__ = [
    "DECIMAL_KEY",
    "DecimalLiteral",
    "decimal_literal",
    "dumps",
    "float_keeps",
    "loads",
    "same_number",
]


def loads(text: str | bytes) -> Any:
    """FHIR JSON text as Python data, decimals exact (see ``DecimalLiteral``)."""
    return json.loads(text, parse_float=decimal_literal)


def dumps(value: Any, **options: Any) -> str:
    """JSON text of FHIR data with every ``DecimalLiteral`` (and ``Decimal``) written exactly.

    ``options`` are ``json.dumps``'s (``ensure_ascii``, ``separators``, ``indent``, ...).
    Compact UTF-8 text (``separators=(",", ":"), ensure_ascii=False``: what is stored and
    exported) is written by orjson, in C: the marker pass below costs several times the
    encoding itself, which made it a fifth of an import. orjson hands each ``DecimalLiteral``
    (a float subclass) to ``_fragment``, which writes its literal text. Numbers may be spelt
    differently (``1e-7`` for ``1e-07``), never changed; what orjson refuses (integers past
    64 bits, non-string keys, lone surrogates, other types) takes the ``json`` path, so the
    result and the errors are ``json.dumps``'s.
    """
    if options == _COMPACT_UTF8:
        try:
            return orjson.dumps(value, default=_fragment, option=_ORJSON_OPTIONS).decode()
        except orjson.JSONEncodeError:
            pass
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


_COMPACT_UTF8: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}
# Dates and dataclasses go to _fragment (and so to the json path and its TypeError), as json.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _fragment(item: Any) -> orjson.Fragment:
    if type(item) is DecimalLiteral:
        return orjson.Fragment(item.text)
    if isinstance(item, Decimal) and item.is_finite():
        return orjson.Fragment(str(item))
    raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")


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
