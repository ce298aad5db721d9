"""Element-name conversion between FHIR JSON (camelCase) and hacs (snake_case).

FHIR element names are ``[a-z][A-Za-z0-9]*``, optionally with a leading ``_`` (the extension
holder of a primitive element: ``_birthDate``). For those names the conversion is a bijection:
``snake_case_key`` puts ``_`` before every capital and lower-cases it (``valueBase64Binary`` ->
``value_base64_binary``, ``truthTP`` -> ``truth_t_p``) and ``camel_case_key`` undoes it. A key of
any other shape (it has a capital first letter, an inner ``_``, or characters other than letters
and digits) is returned unchanged by ``snake_case_key``; ``camel_case_key`` only converts keys of
the exact snake_case shape produced above and returns every other key unchanged. So a non-FHIR
key that already has snake_case shape (``fhir_comments``, from DSTU2 JSON) comes back camelCase.

Both functions are cached: FHIR data uses a few hundred distinct names, so each is converted once.
"""

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .._time import to_utc
from ._json import DECIMAL_KEY, DecimalLiteral, float_keeps, same_number

__all__ = [
    "camel_case_key",
    "camel_case_keys",
    "format_date",
    "format_datetime",
    "number_and_text",
    "snake_case_key",
    "snake_case_keys",
    "with_literals",
]

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_CAMEL_CHARS = _LOWER | _UPPER | _DIGITS
_SNAKE_CHARS = _LOWER | _DIGITS
_NAME_CACHE_SIZE = 8192
_SNAKE_NAMES: dict[str, str] = {}
"""snake_case_key results by key (a plain dict: cheaper per lookup than the lru_cache call)."""


@lru_cache(maxsize=4096)
def snake_case_key(key: str) -> str:
    """``birthDate`` -> ``birth_date``, ``_birthDate`` -> ``_birth_date``; others unchanged."""
    body = key[1:] if key[:1] == "_" else key
    if not body or body[0] not in _LOWER or not _CAMEL_CHARS.issuperset(body):
        return key
    if _SNAKE_CHARS.issuperset(body):
        return key  # a single lower-case word: the same in both conventions
    parts = [key[: len(key) - len(body)]]
    for char in body:
        if char in _UPPER:
            parts.append("_")
            parts.append(char.lower())
        else:
            parts.append(char)
    return "".join(parts)


@lru_cache(maxsize=4096)
def camel_case_key(key: str) -> str:
    """``birth_date`` -> ``birthDate``, ``_birth_date`` -> ``_birthDate``; others unchanged."""
    body = key[1:] if key[:1] == "_" else key
    if "_" not in body:
        return key
    words = body.split("_")
    if any(not word or word[0] not in _LOWER for word in words):
        return key  # not a shape snake_case_key produces ("a__b", "a_1", trailing "_")
    if not all(_SNAKE_CHARS.issuperset(word) for word in words):
        return key
    prefix = key[: len(key) - len(body)]
    return prefix + words[0] + "".join(word[0].upper() + word[1:] for word in words[1:])


def format_datetime(value: datetime) -> str:
    """A FHIR dateTime/instant in UTC: ``2024-03-05T14:30:15Z`` (fraction only when non-zero)."""
    text = to_utc(value).isoformat()  # always ends in "+00:00"
    text = text[:-6]
    if "." in text:
        text = text.rstrip("0")
    return text + "Z"


def format_date(value: date) -> str:
    """A FHIR date: ``2001-02-03``."""
    return value.isoformat()


def number_and_text(value: Any) -> tuple[Any, str | None]:
    """A source number as the JSON number hacs keeps, and its literal text if a float loses it."""
    if type(value) is DecimalLiteral:
        return float(value), value.text
    if isinstance(value, Decimal) and value.is_finite():  # ijson reads non-integers so
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0 and "E" not in str(value):
            return int(value), None
        text = str(value)
        number = float(text)
        return number, None if float_keeps(text, number) else text
    return value, None


def snake_case_keys(value: Any) -> Any:
    """Copy of a JSON value with every object key converted by ``snake_case_key``.

    Decimals (``DecimalLiteral`` from ``loads``, or ``Decimal``) become plain floats; where a
    float would not give the literal text back, the text is kept in the object's ``DECIMAL_KEY``
    entry (element name -> text, or a list of texts for an array of numbers).
    """
    if isinstance(value, dict):
        return _snake_dict(value)
    if isinstance(value, list):
        return _snake_list(value)[0]
    return number_and_text(value)[0]


def _snake_dict(data: dict[str, Any]) -> dict[str, Any]:
    # Hot path of bulk imports: plain loops and a dict lookup per key, no per-key function call.
    out: dict[str, Any] = {}
    names = _SNAKE_NAMES
    literals: dict[str, Any] | None = None
    for key, value in data.items():
        name = names.get(key)
        if name is None:
            name = snake_case_key(key)
            if len(names) < _NAME_CACHE_SIZE:
                names[key] = name
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, dict):
            out[name] = _snake_dict(value)
        elif isinstance(value, list):
            items, texts = _snake_list(value)
            out[name] = items
            if texts is not None:
                if literals is None:
                    literals = {}
                literals[name] = texts
        elif isinstance(value, float | Decimal):
            number, text = number_and_text(value)
            out[name] = number
            if text is not None:
                if literals is None:
                    literals = {}
                literals[name] = text
        else:
            out[name] = value
    if literals is not None:
        out[DECIMAL_KEY] = literals
    return out


def _snake_list(items: list[Any]) -> tuple[list[Any], list[str | None] | None]:
    out: list[Any] = []
    texts: list[str | None] | None = None
    for position, value in enumerate(items):
        if isinstance(value, dict):
            out.append(_snake_dict(value))
        elif isinstance(value, list):
            out.append(_snake_list(value)[0])
        elif isinstance(value, float | Decimal):
            number, text = number_and_text(value)
            out.append(number)
            if text is not None:
                if texts is None:
                    texts = [None] * len(items)
                texts[position] = text
        else:
            out.append(value)
    return out, texts


def with_literals(
    out: dict[str, Any], literals: Any, key_of: Callable[[str], str] = camel_case_key
) -> dict[str, Any]:
    """``out`` (FHIR JSON of one object) with its recorded decimal literals put back.

    ``literals`` is a ``DECIMAL_KEY`` entry with snake_case element names; a literal is used only
    while the element still holds the number it denotes (a changed value wins).
    """
    if not isinstance(literals, dict):
        return out
    for name, text in literals.items():
        key = key_of(name)
        current = out.get(key)
        if isinstance(text, str):
            if same_number(current, text):
                out[key] = DecimalLiteral(text)
        elif isinstance(text, list) and isinstance(current, list) and len(current) == len(text):
            out[key] = [
                DecimalLiteral(t) if isinstance(t, str) and same_number(item, t) else item
                for item, t in zip(current, text, strict=True)
            ]
    return out


def camel_case_keys(value: Any) -> Any:
    """Copy of a JSON value with every object key converted by ``camel_case_key``.

    Python values a caller may have put into untyped data are written as FHIR JSON too:
    datetimes (UTC), dates and decimals.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        out = {camel_case_key(k): camel_case_keys(v) for k, v in value.items() if k != DECIMAL_KEY}
        literals = value.get(DECIMAL_KEY)
        return out if literals is None else with_literals(out, literals)
    if isinstance(value, list):
        return [camel_case_keys(item) for item in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Decimal) and value.is_finite():
        number, text = number_and_text(value)
        return number if text is None else DecimalLiteral(text)
    return value
