"""The SQL of imports and exports: stored versions, document comparison, identifier lookups.

Statements run on the asyncpg connection beneath a unit of work. Table names come from the
SQLAlchemy metadata (never from input); every value is a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hacs_persistence.errors import translate_database_error
from hacs_persistence.interchange._references import AMBIGUOUS, _Ambiguous
from hacs_persistence.interchange._sources import Criterion
from hacs_persistence.mapping import ResourceMapping
from hacs_persistence.schema import TYPED_TABLES, ResourceDocumentTable, ResourceVersionTable
from hacs_persistence.unit import DRIVER_ERRORS

__all__ = [
    "ENVELOPE_KEYS",
    "compartment_types",
    "find_by_identifier",
    "stored_versions",
    "unchanged_ids",
]

# Storage envelope in every stored document; left out when comparing content.
ENVELOPE_KEYS = ["version", "created_at", "updated_at"]


def _name(table: Any) -> str:
    return f'"{table.schema or "public"}"."{table.name}"'


_VERSIONS = _name(ResourceVersionTable.__table__)
_FALLBACK = _name(ResourceDocumentTable.__table__)


async def _fetch(driver: Any, sql: str, *args: Any) -> list[Any]:
    try:
        return list(await driver.fetch(sql, *args))
    except DRIVER_ERRORS as exc:
        raise translate_database_error(exc) from exc


def _current_documents(mapping: ResourceMapping) -> tuple[str, str]:
    """FROM clause and document expression of the current, live-or-deleted rows of a mapping."""
    if mapping.typed:
        source = (
            f"{_name(mapping.table)} t JOIN {_VERSIONS} v ON v.resource_type = t.resource_type "
            "AND v.id = t.id AND v.version = t.version"
        )
        return source, "v.document"
    return f"{_FALLBACK} t", "t.document"


async def stored_versions(
    driver: Any, mapping: ResourceMapping, ids: Sequence[str]
) -> dict[str, tuple[int, bool]]:
    """id -> (current version, deleted) of the stored resources among ``ids``."""
    rows = await _fetch(
        driver,
        f"SELECT id, version, deleted_at IS NOT NULL AS deleted FROM {_name(mapping.table)} "
        "WHERE resource_type = $1 AND id = ANY($2::text[])",
        mapping.resource_type,
        list(ids),
    )
    return {row["id"]: (row["version"], row["deleted"]) for row in rows}


async def unchanged_ids(
    driver: Any, mapping: ResourceMapping, documents: Sequence[tuple[str, str]]
) -> set[str]:
    """Ids whose stored document equals the given JSON document, storage envelope aside.

    The comparison is JSONB equality in the database, so key order and number spelling do not
    matter and no stored document travels back to Python.
    """
    if not documents:
        return set()
    source, document = _current_documents(mapping)
    rows = await _fetch(
        driver,
        f"SELECT n.id FROM unnest($1::text[], $2::text[]) AS n(id, doc) JOIN {source} "
        f"ON t.id = n.id AND t.resource_type = $3 "
        f"WHERE ({document} - $4::text[]) = (n.doc::jsonb - $4::text[])",
        [resource_id for resource_id, _ in documents],
        [doc for _, doc in documents],
        mapping.resource_type,
        ENVELOPE_KEYS,
    )
    return {row["id"] for row in rows}


def _probe(criterion: Criterion) -> str:
    _type, system, value = criterion
    item = {"value": value} if not system else {"system": system, "value": value}
    return json.dumps({"identifier": [item]})


def _matches(identifiers: Any, criterion: Criterion) -> bool:
    _type, system, value = criterion
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for item in identifiers if isinstance(identifiers, list) else ():
        if not isinstance(item, dict) or item.get("value") != value:
            continue
        if system is None or (item.get("system") or "") == system:
            return True
    return False


async def find_by_identifier(
    driver: Any, mapping: ResourceMapping, criteria: Sequence[Criterion]
) -> dict[Criterion, str | _Ambiguous]:
    """Live stored resources of one type matched by identifier criteria (JSONB containment)."""
    if not criteria:
        return {}
    source, document = _current_documents(mapping)
    rows = await _fetch(
        driver,
        f"SELECT t.id, ({document} -> 'identifier')::text AS identifier FROM {source} "
        f"WHERE t.resource_type = $1 AND t.deleted_at IS NULL "
        f"AND {document} @> ANY($2::jsonb[])",
        mapping.resource_type,
        [_probe(c) for c in criteria],
    )
    found: dict[Criterion, str | _Ambiguous] = {}
    parsed = [(row["id"], json.loads(row["identifier"] or "null")) for row in rows]
    for criterion in criteria:
        ids = {resource_id for resource_id, idents in parsed if _matches(idents, criterion)}
        if len(ids) == 1:
            found[criterion] = ids.pop()
        elif ids:
            found[criterion] = AMBIGUOUS
    return found


async def compartment_types(
    driver: Any, patient_id: str, *, typed: bool
) -> tuple[list[str], list[str]]:
    """Resource types with live rows about a patient: (in typed tables, in the JSONB table).

    Typed rows point at their patient in ``patient_id``; JSONB documents reference
    ``Patient/<id>`` in their top-level ``subject`` or ``patient``.
    """
    typed_types: set[str] = set()
    if typed:
        selects = []
        for table_cls in TYPED_TABLES.values():
            table = table_cls.__table__
            if "patient_id" in table.c:
                selects.append(
                    f"(SELECT DISTINCT resource_type FROM {_name(table)} "
                    "WHERE patient_id = $1 AND deleted_at IS NULL)"
                )
        rows = await _fetch(driver, " UNION ".join(selects), patient_id)
        typed_types = {row["resource_type"] for row in rows}
    reference = {"reference": f"Patient/{patient_id}"}
    rows = await _fetch(
        driver,
        f"SELECT DISTINCT resource_type FROM {_FALLBACK} WHERE deleted_at IS NULL "
        "AND (document @> $1::jsonb OR document @> $2::jsonb)",
        json.dumps({"subject": reference}),
        json.dumps({"patient": reference}),
    )
    return sorted(typed_types), sorted(row["resource_type"] for row in rows)
