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

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .._time import to_utc

__all__ = [
    "camel_case_key",
    "camel_case_keys",
    "format_date",
    "format_datetime",
    "format_decimal",
    "snake_case_key",
    "snake_case_keys",
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


def format_decimal(value: Decimal) -> int | float:
    """A decimal as a JSON number: an int when integral, else a float (as JsonDecimal dumps)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def snake_case_keys(value: Any) -> Any:
    """Copy of a JSON value with every object key converted by ``snake_case_key``."""
    if isinstance(value, dict):
        return _snake_dict(value)
    if isinstance(value, list):
        return _snake_list(value)
    return value


def _snake_dict(data: dict[str, Any]) -> dict[str, Any]:
    # Hot path of bulk imports: plain loops and a dict lookup per key, no per-key function call.
    out: dict[str, Any] = {}
    names = _SNAKE_NAMES
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
            out[name] = _snake_list(value)
        else:
            out[name] = value
    return out


def _snake_list(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in items:
        if isinstance(value, dict):
            out.append(_snake_dict(value))
        elif isinstance(value, list):
            out.append(_snake_list(value))
        else:
            out.append(value)
    return out


def camel_case_keys(value: Any) -> Any:
    """Copy of a JSON value with every object key converted by ``camel_case_key``.

    Python values a caller may have put into untyped data are written as FHIR JSON too:
    datetimes (UTC), dates and decimals.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {camel_case_key(k): camel_case_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_case_keys(item) for item in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format_decimal(value)
    return value
