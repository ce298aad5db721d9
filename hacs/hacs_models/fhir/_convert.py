"""to_fhir / from_fhir: hacs resources <-> FHIR R4 JSON (the rules are in the package docstring)."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from ..base import BaseResource, registered_resource_types
from ..core import PersonResource
from ._json import DECIMAL_KEY, DecimalLiteral
from ._keys import (
    camel_case_key,
    camel_case_keys,
    format_date,
    format_datetime,
    number_and_text,
    snake_case_keys,
    with_literals,
)
from ._schema import (
    FieldKind,
    approximate,
    conform_model,
    plan_for,
    top_level_fhir_name,
)

__all__ = [
    "ABSENT_KEY",
    "FULL_NAME_EXTENSION_URL",
    "ORIGINAL_KEY",
    "fhir_element",
    "from_fhir",
    "to_fhir",
]

ORIGINAL_KEY = "fhir:original"
"""Extras entry of a resource or datatype: field name -> FHIR value the typed field cannot hold."""

ABSENT_KEY = "fhir:absent"
"""Extras entry of a resource: field name -> default the model filled in for a missing element."""

FULL_NAME_EXTENSION_URL = "urn:hacs:fhir:extension:full-name"
"""Extension carrying ``full_name`` when it is not derivable from ``name`` (hacs-only field)."""

_RESERVED_EXTRAS = (ORIGINAL_KEY, ABSENT_KEY, DECIMAL_KEY)
_MISSING: Any = object()
_MAX_REPAIRS = 20
# FHIR's own element order for the common resource elements, so output reads naturally.
_LEADING_ELEMENTS = ("implicit_rules", "language", "text", "contained", "extension")
_SERVER_META = frozenset({"version_id", "_version_id", "last_updated", "_last_updated"})
_TOP_LEVEL_FROM_FHIR = {"version": "business_version", "_version": "_business_version"}
_ENCOUNTER_FROM_FHIR = {**_TOP_LEVEL_FROM_FHIR, "class": "encounter_class"}


# --- hacs -> FHIR -----------------------------------------------------------------------------


def to_fhir(resource: BaseResource) -> dict[str, Any]:
    """The resource as FHIR R4 JSON (camelCase element names, ``resourceType`` first).

    A stored resource (``version`` set) gets ``meta.versionId`` and ``meta.lastUpdated``; the
    storage envelope (``created_at``, ``updated_at``, ``version``) is never a top-level element.
    """
    resource_type = resource.resource_type
    extras = resource.__pydantic_extra__ or {}
    absent = extras.get(ABSENT_KEY)
    if not isinstance(absent, dict):
        absent = {}
    body = _emit_model(resource, absent, resource_type)
    out: dict[str, Any] = {"resourceType": resource_type}
    stored = resource.version is not None
    if stored:
        body.pop("id", None)
        out["id"] = resource.id  # a stored resource always has its real id
    elif "id" in body:
        out["id"] = body.pop("id")
    meta = extras.get("meta")
    if stored:
        meta = dict(camel_case_keys(meta)) if isinstance(meta, dict) else {}
        meta["versionId"] = str(resource.version)
        meta["lastUpdated"] = format_datetime(resource.updated_at)
        out["meta"] = meta
    elif meta is not None:
        out["meta"] = camel_case_keys(meta)
    for key in _LEADING_ELEMENTS:
        if key in extras:
            out[top_level_fhir_name(resource_type, key)] = camel_case_keys(extras[key])
    out.update(body)
    if isinstance(resource, PersonResource):
        _emit_full_name(resource, out)
    return out


def _emit_model(
    obj: BaseModel, absent: Mapping[str, Any], resource_type: str | None = None
) -> dict[str, Any]:
    """FHIR JSON of a model's typed fields and extras (resources: minus the leading elements)."""
    plan = plan_for(type(obj))
    values = obj.__dict__
    extras = obj.__pydantic_extra__ or {}
    originals = extras.get(ORIGINAL_KEY)
    if not isinstance(originals, dict):
        originals = None
    out: dict[str, Any] = {}
    names = plan.fhir_names
    for name, kind in plan.fields.items():
        emitted = _emit_field(kind, name, values.get(name), absent, originals)
        if emitted is not _MISSING:
            out[names[name]] = emitted
    if originals is not None:
        for name, original in originals.items():
            if name not in plan.fields:  # a source element colliding with a non-FHIR field
                out[_fhir_key(resource_type, name)] = camel_case_keys(original)
    skip = (*_LEADING_ELEMENTS, "meta") if plan.is_resource else ()
    for key, value in extras.items():
        if (key in _RESERVED_EXTRAS and isinstance(value, dict)) or key in skip:
            continue
        out[_fhir_key(resource_type, key)] = camel_case_keys(value)
    literals = extras.get(DECIMAL_KEY)
    if isinstance(literals, dict):
        with_literals(out, literals, lambda name: names.get(name) or _fhir_key(resource_type, name))
    return out


def _emit_field(
    kind: FieldKind,
    name: str,
    value: Any,
    absent: Mapping[str, Any],
    originals: Mapping[str, Any] | None,
) -> Any:
    """FHIR JSON of one typed field: its value, or the original it was imported as."""
    emitted = _emit_value(kind, value)
    if absent and name in absent and emitted == absent[name]:
        emitted = _MISSING  # still the default the model filled in: not a source element
    if originals is not None and name in originals:
        original = originals[name]
        if emitted is _MISSING or emitted == _standin_json(kind, original):
            emitted = camel_case_keys(original)
        # else the field was changed after import: the new value wins over the original
    return emitted


def fhir_element(resource: BaseResource, name: str) -> Any:
    """The FHIR JSON ``to_fhir`` gives a top-level typed field of ``resource`` (None: absent).

    For the typed columns that hold an element exactly as FHIR has it (a dateTime's text with
    its offset and digits), without converting the whole resource.
    """
    kind = plan_for(type(resource)).fields[name]
    extras = resource.__pydantic_extra__ or {}
    absent = extras.get(ABSENT_KEY)
    originals = extras.get(ORIGINAL_KEY)
    emitted = _emit_field(
        kind,
        name,
        resource.__dict__.get(name),
        absent if isinstance(absent, dict) else {},
        originals if isinstance(originals, dict) else None,
    )
    return None if emitted is _MISSING else emitted


def _fhir_key(resource_type: str | None, key: str) -> str:
    """FHIR name of an extras key: top-level renames for resources, plain camelCase inside."""
    if resource_type is None:
        return camel_case_key(key)
    return top_level_fhir_name(resource_type, key)


def _emit_value(kind: FieldKind, value: Any) -> Any:
    """FHIR JSON of a typed field's value; _MISSING for None and empty lists/objects."""
    if value is None:
        return _MISSING
    tag = kind.tag
    if tag == "model" or isinstance(value, BaseModel):
        if not isinstance(value, BaseModel):
            return camel_case_keys(value) if value != {} else _MISSING
        emitted = _emit_model(value, {})
        return emitted if emitted else _MISSING
    if tag == "list":
        if not value:
            return _MISSING
        item_kind = kind.item
        assert item_kind is not None
        return [_emit_item(item_kind, item) for item in value]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Decimal):
        number, text = number_and_text(value)
        return number if text is None else DecimalLiteral(text)
    converted = camel_case_keys(value)
    return _MISSING if converted == {} or converted == [] else converted


def _emit_item(kind: FieldKind, item: Any) -> Any:
    """A list item: like _emit_value, but an item is never dropped (positions are kept)."""
    emitted = _emit_value(kind, item)
    if emitted is _MISSING:
        return {} if isinstance(item, BaseModel) else camel_case_keys(item)
    return emitted


def _standin_json(kind: FieldKind, original: Any) -> Any:
    """The JSON of the stand-in from_fhir put in a typed field for ``original``, or _MISSING."""
    standin = approximate(kind, original)
    return _MISSING if standin is None else _emit_value(kind, standin)


def _derived_full_name(person: PersonResource) -> str | None:
    """The full_name PersonResource derives from ``name`` (official name, else the first)."""
    if not person.name:
        return None
    chosen = next((n for n in person.name if n.use == "official"), person.name[0])
    return chosen.display_text()


def _emit_full_name(person: PersonResource, out: dict[str, Any]) -> None:
    """Carry full_name in an extension when ``name`` alone would not give it back."""
    full_name = person.full_name
    if full_name is None or full_name == _derived_full_name(person):
        return
    extension = {"url": FULL_NAME_EXTENSION_URL, "valueString": full_name}
    existing = out.get("extension")
    out["extension"] = [*existing, extension] if isinstance(existing, list) else [extension]


# --- FHIR -> hacs -----------------------------------------------------------------------------


def from_fhir(data: Mapping[str, Any]) -> BaseResource:
    """A hacs resource from FHIR R4 JSON, of the class registered for its ``resourceType``.

    Types without a hacs model become a plain ``BaseResource`` that keeps every element. The
    result is new and unstored (``version`` None); ``meta`` is kept minus versionId/lastUpdated.
    """
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError(f"FHIR resource without a string resourceType: {resource_type!r}")
    cls = registered_resource_types().get(resource_type, BaseResource)
    plan = plan_for(cls)
    renames = _ENCOUNTER_FROM_FHIR if resource_type == "Encounter" else _TOP_LEVEL_FROM_FHIR
    # The renamed FHIR names (version, class) are their own snake_case, so renaming after the
    # conversion is the same; the decimal literals recorded at the top level follow the renames.
    converted = snake_case_keys({k: v for k, v in data.items() if k != "resourceType"})
    source: dict[str, Any] = {renames.get(k, k): v for k, v in converted.items()}
    literals = source.get(DECIMAL_KEY)
    if isinstance(literals, dict):
        source[DECIMAL_KEY] = {renames.get(k, k): v for k, v in literals.items()}
    colliding = {key: source.pop(key) for key in plan.reserved if key in source}
    meta = source.get("meta")
    if isinstance(meta, dict) and not _SERVER_META.isdisjoint(meta):
        kept = {k: v for k, v in meta.items() if k not in _SERVER_META}
        if kept:
            source["meta"] = kept
        else:
            del source["meta"]
    full_name = _pop_full_name(source) if plan.is_person else None
    prepared = conform_model(cls, source, ORIGINAL_KEY)
    if colliding:
        prepared.setdefault(ORIGINAL_KEY, {}).update(colliding)
    if full_name is not None:
        prepared["full_name"] = full_name
    prepared["resource_type"] = resource_type
    resource = _validate(cls, prepared, source)
    absent: dict[str, Any] = {}
    values = resource.__dict__
    for name, kind in plan.fields.items():
        if name not in prepared:
            emitted = _emit_value(kind, values.get(name))
            if emitted is not _MISSING:
                absent[name] = emitted
    if absent:
        assert resource.__pydantic_extra__ is not None
        resource.__pydantic_extra__[ABSENT_KEY] = absent
    return resource


def _pop_full_name(source: dict[str, Any]) -> str | None:
    """Remove and return the value of the hacs full-name extension, if present."""
    extensions = source.get("extension")
    if not isinstance(extensions, list):
        return None
    found: str | None = None
    kept = []
    for item in extensions:
        if (
            isinstance(item, dict)
            and item.get("url") == FULL_NAME_EXTENSION_URL
            and isinstance(item.get("value_string"), str)
            and found is None
        ):
            found = item["value_string"]
        else:
            kept.append(item)
    if found is None:
        return None
    if kept:
        source["extension"] = kept
    else:
        del source["extension"]
    return found


def _validate(
    cls: type[BaseResource], prepared: dict[str, Any], source: dict[str, Any]
) -> BaseResource:
    """Validate; a typed field failing a model rule moves (as its original) into the extras."""
    for _attempt in range(_MAX_REPAIRS):
        try:
            return cls.model_validate(prepared)
        except ValidationError as exc:
            repaired = False
            for error in exc.errors():
                repaired |= _evict(cls, prepared, source, error["loc"])
            if not repaired:
                raise
    return cls.model_validate(prepared)


def _evict(
    cls: type[BaseModel],
    prepared: dict[str, Any],
    source: dict[str, Any],
    loc: tuple[int | str, ...],
) -> bool:
    """Move the typed field an error points into from ``prepared`` to its original-values bag.

    Walks the error location through typed fields and nested models; the innermost typed field
    that still exists is evicted whole, its original taken from ``source`` (the same path).
    """
    node, node_source, node_cls = prepared, source, cls
    owner: tuple[dict[str, Any], dict[str, Any], str] | None = None
    index = 0
    while index < len(loc):
        key = loc[index]
        if not isinstance(key, str) or key not in node:
            break
        kind = plan_for(node_cls).fields.get(key)
        if kind is None:
            break
        owner = (node, node_source, key)
        value, value_source = node[key], node_source.get(key, _MISSING)
        index += 1
        if kind.tag == "list" and index < len(loc):
            position = loc[index]
            if not (
                isinstance(position, int)
                and isinstance(value, list)
                and isinstance(value_source, list)
                and position < len(value)
            ):
                break
            value, value_source = value[position], value_source[position]
            kind = kind.item if kind.item is not None else kind
            index += 1
        if kind.tag == "model" and kind.model is not None and isinstance(value, dict):
            if not isinstance(value_source, dict):
                break
            node, node_source, node_cls = value, value_source, kind.model
            continue
        break
    if owner is None:
        return False
    owner_data, owner_source, name = owner
    current = owner_data.pop(name)
    bag = owner_data.setdefault(ORIGINAL_KEY, {})
    if name not in bag:
        bag[name] = owner_source.get(name, current)
    return True
