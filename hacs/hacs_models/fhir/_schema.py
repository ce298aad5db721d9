"""What each model field holds, computed once per class, and the FHIR date/time rules.

A field's annotation is reduced to a ``FieldKind`` (str, bool, date, nested model, list of ...).
``conform`` checks a FHIR JSON value against a kind *without* pydantic's lax coercions
("1" -> 1, "true" -> True, a date string -> a datetime at midnight, a naive time read as local
time): a value the typed field can hold exactly is returned ready for validation, anything else
comes back as ``Unfit``, optionally with a stand-in (the approximation the typed field gets).
"""

import re
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from math import isfinite
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .._time import to_utc
from ..base import BaseResource
from ..core import PersonResource
from ._keys import camel_case_key, format_datetime

__all__ = [
    "ANY",
    "ENVELOPE_FIELDS",
    "FieldKind",
    "ModelPlan",
    "Unfit",
    "approximate",
    "conform",
    "conform_model",
    "kind_of",
    "plan_for",
    "top_level_fhir_name",
]

ENVELOPE_FIELDS = frozenset({"created_at", "updated_at", "version"})
"""Storage envelope of every resource: never FHIR elements."""


@dataclass(frozen=True, slots=True)
class FieldKind:
    """The shape of a field: ``tag`` plus the list item kind / model class / literal choices."""

    tag: str
    item: "FieldKind | None" = None
    model: type[BaseModel] | None = None
    choices: frozenset[tuple[type, Any]] = frozenset()


ANY = FieldKind("any")
_STR = FieldKind("str")
_BOOL = FieldKind("bool")
_INT = FieldKind("int")
_FLOAT = FieldKind("float")
_DECIMAL = FieldKind("decimal")
_DATE = FieldKind("date")
_DATETIME = FieldKind("datetime")
_DICT = FieldKind("dict")
_SCALARS: dict[Any, FieldKind] = {
    str: _STR,
    bool: _BOOL,
    int: _INT,
    float: _FLOAT,
    Decimal: _DECIMAL,
    datetime: _DATETIME,
    date: _DATE,
    Any: ANY,
}


def kind_of(annotation: Any) -> FieldKind:
    """Reduce a field annotation to its FieldKind (unknown shapes are ``ANY``: not checked)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return kind_of(args[0])
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        return kind_of(members[0]) if len(members) == 1 else ANY
    if origin is Literal:
        return FieldKind("literal", choices=frozenset((type(a), a) for a in args))
    if origin is list:
        return FieldKind("list", item=kind_of(args[0]) if args else ANY)
    if origin is dict:
        return _DICT
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return FieldKind("model", model=annotation)
    scalar = _SCALARS.get(annotation)
    return scalar if scalar is not None else ANY


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """Per model class: its FHIR-facing typed fields and their FHIR element names."""

    fields: dict[str, FieldKind]
    """Typed fields that are FHIR elements, in declaration order (resources: ``id`` first)."""
    fhir_names: dict[str, str]
    """FHIR element name of each field in ``fields``."""
    reserved: frozenset[str] = field(default=frozenset())
    """Model fields that are not FHIR elements (envelope, ``resource_type``, ``full_name``)."""
    is_resource: bool = False
    is_person: bool = False


_TOP_LEVEL_TO_FHIR = {"business_version": "version", "_business_version": "_version"}
_ENCOUNTER_TO_FHIR = {**_TOP_LEVEL_TO_FHIR, "encounter_class": "class"}


def top_level_fhir_name(resource_type: str, key: str) -> str:
    """FHIR name of a top-level hacs key, with the ``version``/``class`` renames applied."""
    table = _ENCOUNTER_TO_FHIR if resource_type == "Encounter" else _TOP_LEVEL_TO_FHIR
    renamed = table.get(key)
    return renamed if renamed is not None else camel_case_key(key)


@cache
def plan_for(cls: type[BaseModel]) -> ModelPlan:
    """The plan of a model class (computed once per class)."""
    is_resource = issubclass(cls, BaseResource)
    is_person = issubclass(cls, PersonResource)
    reserved: set[str] = set()
    if is_resource:
        reserved |= ENVELOPE_FIELDS | {"resource_type"}
    if is_person:
        reserved.add("full_name")
    fields: dict[str, FieldKind] = {}
    if is_resource:
        fields["id"] = _STR
    for name, info in cls.model_fields.items():
        if name not in reserved and name not in fields:
            fields[name] = kind_of(info.annotation)
    type_name = cls.model_fields["resource_type"].default if is_resource else None
    if is_resource and isinstance(type_name, str):
        names = {name: top_level_fhir_name(type_name, name) for name in fields}
    else:
        names = {name: camel_case_key(name) for name in fields}
    return ModelPlan(fields, names, frozenset(reserved), is_resource, is_person)


# --- FHIR date and dateTime -------------------------------------------------------------------

_EXACT_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_EXACT_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})\Z"
)
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_LOOSE_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?\Z"
)


def _parse_exact_datetime(text: str) -> datetime | None:
    """A dateTime/instant with seconds and zone (fraction <= 6 digits), else None."""
    if not _EXACT_DATETIME.match(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _parse_exact_date(text: str) -> date | None:
    if not _EXACT_DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _approximate_datetime(text: str) -> datetime | None:
    """The start of the period a partial or imprecise dateTime denotes, in UTC.

    "1978" -> 1978-01-01T00:00Z, "1978-12" -> 1978-12-01T00:00Z, "2015-02-07" -> midnight UTC;
    a time without zone is read as UTC, a fraction beyond microseconds is truncated.
    """
    loose = _LOOSE_DATETIME.match(text)
    try:
        if loose:
            year, month, day, hour, minute, second, fraction, zone = loose.groups()
            micro = int((fraction or "")[:6].ljust(6, "0"))
            tz: timezone = UTC
            if zone and zone != "Z":
                sign = -1 if zone[0] == "-" else 1
                offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
                tz = timezone(sign * offset)
            parts = (int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
            return datetime(*parts, micro, tzinfo=tz).astimezone(UTC)
        partial = _PARTIAL_DATE.fullmatch(text)
        if partial:
            year, month, day = partial.groups()
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return None


def _approximate_date(text: str) -> date | None:
    """The first day of a partial date ("1978" -> 1978-01-01); a dateTime's own date part."""
    partial = _PARTIAL_DATE.match(text)
    if partial is None:
        return None
    rest = text[partial.end() :]
    if rest and not (partial.group(3) and rest[0] == "T"):
        return None
    year, month, day = partial.groups()
    try:
        return date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None


def approximate(kind: FieldKind, original: Any) -> date | datetime | None:
    """The stand-in a typed field gets for an original it cannot hold exactly, or None."""
    if not isinstance(original, str):
        return None
    if kind.tag == "datetime":
        return _approximate_datetime(original)
    if kind.tag == "date":
        return _approximate_date(original)
    return None


# --- conform: strict check of a FHIR value against a kind ------------------------------------


class Unfit:
    """A value the typed field cannot hold exactly; ``standin`` is its approximation, if any."""

    __slots__ = ("standin",)

    def __init__(self, standin: Any = None) -> None:
        self.standin = standin


_UNFIT = Unfit()


def conform(kind: FieldKind, value: Any, original_key: str) -> Any:
    """``value`` ready for validation (datetimes parsed, nested models conformed) or Unfit.

    Never mutates ``value``: nested model dicts are copied, and a nested field that does not
    fit moves into that copy's ``original_key`` entry (its stand-in, if any, stays in place).
    """
    tag = kind.tag
    if value is None:
        return _UNFIT  # null is not FHIR JSON for a single element; keep it verbatim
    if tag == "str":
        return value if isinstance(value, str) else _UNFIT
    if tag == "model":
        if type(value) is not dict or not value or kind.model is None:
            return _UNFIT
        return conform_model(kind.model, value, original_key)
    if tag == "list":
        if type(value) is not list or not value or kind.item is None:
            return _UNFIT  # FHIR has no empty arrays; an empty one is kept verbatim
        item_kind = kind.item
        items = []
        for item in value:
            conformed = conform(item_kind, item, original_key)
            if type(conformed) is Unfit:
                return _UNFIT  # list positions cannot hold partial data: keep the whole list
            items.append(conformed)
        return items
    if tag == "datetime":
        if not isinstance(value, str):
            return _UNFIT
        parsed = _parse_exact_datetime(value)
        if parsed is not None:
            instant = to_utc(parsed)
            if format_datetime(instant) == value:
                return instant
            # Another offset or more fraction digits than the UTC form keeps: the typed field
            # holds the instant, the text as written is kept to be given back (FHIR: as given).
            return Unfit(instant)
        return Unfit(_approximate_datetime(value))
    if tag == "date":
        if not isinstance(value, str):
            return _UNFIT
        exact = _parse_exact_date(value)
        if exact is not None:
            return exact
        return Unfit(_approximate_date(value))
    if tag == "bool":
        return value if type(value) is bool else _UNFIT
    if tag == "int":
        return value if type(value) is int else _UNFIT
    if tag in ("decimal", "float"):
        if type(value) is int or (type(value) is float and isfinite(value)):
            return value
        if tag == "decimal" and type(value) is Decimal and value.is_finite():
            return value
        return _UNFIT
    if tag == "literal":
        return value if (type(value), value) in kind.choices else _UNFIT
    if tag == "dict":
        return value if type(value) is dict and value else _UNFIT
    return value  # ANY


def conform_model(cls: type[BaseModel], data: dict[str, Any], original_key: str) -> Any:
    """Copy of a model's (snake_case) data with every typed field conformed."""
    plan = plan_for(cls)
    out = dict(data)
    originals: dict[str, Any] | None = None
    for name, kind in plan.fields.items():
        if name not in data:
            continue
        value = data[name]
        conformed = conform(kind, value, original_key)
        if type(conformed) is Unfit:
            if originals is None:
                originals = {}
            originals[name] = value
            if conformed.standin is None:
                del out[name]
            else:
                out[name] = conformed.standin
        elif conformed is not value:
            out[name] = conformed
    if originals is not None:
        out[original_key] = originals
    return out
