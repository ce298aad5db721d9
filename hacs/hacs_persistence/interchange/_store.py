"""The SQL of imports and exports: stored versions, document comparison, identifier lookups.

Every statement is SQLAlchemy Core built from the table objects, with bound parameters only,
compiled once per storage mapping and run through a unit of work (``Unit.fetch``). Each one
takes the actor's patient scope as ``p_patients`` (NULL: not scoped) in its WHERE clause, so a
row outside the actor's patients is never found: it behaves exactly like a missing one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from hacs_persistence.db.unit import Unit
from hacs_persistence.interchange._references import AMBIGUOUS, _Ambiguous
from hacs_persistence.interchange._sources import Criterion
from hacs_persistence.limits import MAPPING_CACHE_SIZE
from hacs_persistence.schema import TYPED_TABLES, ResourceDocumentTable
from hacs_persistence.storage.columns import STAMP_FIELDS
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import current_documents, stored_in_scope

__all__ = [
    "ENVELOPE_KEYS",
    "compartment_types",
    "criteria_shape",
    "find_by_identifier",
    "stored_versions",
    "unchanged_ids",
]

# Storage envelope in every stored document (the statements stamp it); left out when comparing
# content.
ENVELOPE_KEYS = list(STAMP_FIELDS)

FALLBACK: Table = ResourceDocumentTable.__table__  # type: ignore[assignment]


def _text(name: str) -> Any:
    return bindparam(name, type_=Text)


def _texts(name: str) -> Any:
    return bindparam(name, type_=ARRAY(Text))


# --- stored versions and the "unchanged" comparison --------------------------------------------


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def _stored_versions_statement(mapping: ResourceMapping) -> Select[Any]:
    table = mapping.table
    return select(
        table.c.id, table.c.version, table.c.deleted_at.is_not(None).label("deleted")
    ).where(
        table.c.resource_type == _text("p_rt"),
        table.c.id == any_(_texts("p_ids")),
        stored_in_scope(mapping),
    )


async def stored_versions(
    unit: Unit, mapping: ResourceMapping, ids: Sequence[str], allowed: Sequence[str] | None
) -> dict[str, tuple[int, bool]]:
    """id -> (current version, deleted) of the stored resources among ``ids``.

    Rows outside ``allowed`` (the actor's patients; None: not scoped) are not returned.
    """
    rows = await unit.fetch(
        _stored_versions_statement(mapping),
        {"p_rt": mapping.resource_type, "p_ids": list(ids), "p_patients": _scope(allowed)},
    )
    return {row["id"]: (row["version"], row["deleted"]) for row in rows}


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def _unchanged_statement(mapping: ResourceMapping) -> Select[Any]:
    table = mapping.table
    source, document = current_documents(mapping)
    given = (
        func.unnest(_texts("p_ids"), _texts("p_docs"))
        .table_valued(column("id", Text), column("doc", Text))
        .render_derived(name="n")
    )
    envelope = _texts("p_envelope")
    stored = document.op("-", return_type=JSONB)(envelope)
    offered = cast(given.c.doc, JSONB).op("-", return_type=JSONB)(envelope)
    return (
        select(given.c.id)
        .select_from(given.join(source, table.c.id == given.c.id))
        .where(
            table.c.resource_type == _text("p_rt"),
            stored_in_scope(mapping),
            stored.op("=", is_comparison=True)(offered),
        )
    )


async def unchanged_ids(
    unit: Unit,
    mapping: ResourceMapping,
    documents: Sequence[tuple[str, str]],
    allowed: Sequence[str] | None,
) -> set[str]:
    """Ids whose stored document equals the given JSON document, storage envelope aside.

    The comparison is JSONB equality in the database, so key order and number spelling do not
    matter and no stored document travels back to Python. Rows outside ``allowed`` never match.
    """
    if not documents:
        return set()
    rows = await unit.fetch(
        _unchanged_statement(mapping),
        {
            "p_ids": [resource_id for resource_id, _ in documents],
            "p_docs": [doc for _, doc in documents],
            "p_rt": mapping.resource_type,
            "p_envelope": ENVELOPE_KEYS,
            "p_patients": _scope(allowed),
        },
    )
    return {row["id"] for row in rows}


# --- identifier lookups ------------------------------------------------------------------------


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


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def _identifier_statement(mapping: ResourceMapping) -> Select[Any]:
    table = mapping.table
    source, document = current_documents(mapping)
    probes = cast(_texts("p_probes"), ARRAY(JSONB))
    return (
        select(table.c.id, cast(document["identifier"], Text).label("identifier"))
        .select_from(source)
        .where(
            table.c.resource_type == _text("p_rt"),
            table.c.deleted_at.is_(None),
            stored_in_scope(mapping),
            document.op("@>", is_comparison=True)(any_(probes)),
        )
    )


async def find_by_identifier(
    unit: Unit,
    mapping: ResourceMapping,
    criteria: Sequence[Criterion],
    allowed: Sequence[str] | None,
) -> dict[Criterion, str | _Ambiguous]:
    """Live stored resources of one type matched by identifier criteria (JSONB containment).

    Only rows in ``allowed`` (the actor's patients; None: not scoped) can match: an identifier
    of another patient's resource is not found, exactly like one that does not exist.
    """
    if not criteria:
        return {}
    rows = await unit.fetch(
        _identifier_statement(mapping),
        {
            "p_rt": mapping.resource_type,
            "p_probes": [_probe(c) for c in criteria],
            "p_patients": _scope(allowed),
        },
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


def criteria_shape(criteria: Sequence[Criterion]) -> str:
    """What an identifier look-up asked, for its audit row: the systems, never the values.

    ``search=identifier;systems=(any),http://hl7.org/fhir/sid/us-npi;criteria=3``; ``(any)``
    is a criterion without a system, ``(none)`` one for identifiers without a system.
    """
    systems = sorted(
        {"(any)" if system is None else system or "(none)" for _type, system, _value in criteria}
    )
    return f"search=identifier;systems={','.join(systems)};criteria={len(criteria)}"


# --- the compartment of a patient --------------------------------------------------------------


@cache
def _typed_compartment_statement() -> Any:
    patients = _texts("p_patients")
    selects = []
    for table_cls in TYPED_TABLES.values():
        table = table_cls.__table__
        assert isinstance(table, Table)
        if "patient_id" not in table.c:
            continue
        selects.append(
            select(table.c.resource_type)
            .distinct()
            .where(
                table.c.patient_id == _text("p_patient"),
                table.c.deleted_at.is_(None),
                or_(patients.is_(None), table.c.patient_id == any_(patients)),
            )
        )
    return union(*selects)


@cache
def _document_compartment_statement() -> Select[Any]:
    document = FALLBACK.c.document
    return (
        select(FALLBACK.c.resource_type)
        .distinct()
        .where(
            FALLBACK.c.deleted_at.is_(None),
            or_(
                document.op("@>", is_comparison=True)(cast(_text("p_subject"), JSONB)),
                document.op("@>", is_comparison=True)(cast(_text("p_patient_ref"), JSONB)),
            ),
        )
    )


async def compartment_types(
    unit: Unit, patient_id: str, *, typed: bool, allowed: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """Resource types with live rows about a patient: (in typed tables, in the JSONB table).

    Typed rows point at their patient in ``patient_id``; JSONB documents reference
    ``Patient/<id>`` in their top-level ``subject`` or ``patient``. A patient-scoped actor
    (``allowed`` not None) only learns about typed rows of its own patients: the JSONB table
    is outside every patient compartment.
    """
    typed_types: set[str] = set()
    if typed:
        rows = await unit.fetch(
            _typed_compartment_statement(),
            {"p_patient": patient_id, "p_patients": _scope(allowed)},
        )
        typed_types = {row["resource_type"] for row in rows}
    if allowed is not None:
        return sorted(typed_types), []
    reference = {"reference": f"Patient/{patient_id}"}
    rows = await unit.fetch(
        _document_compartment_statement(),
        {
            "p_subject": json.dumps({"subject": reference}),
            "p_patient_ref": json.dumps({"patient": reference}),
        },
    )
    return sorted(typed_types), sorted(row["resource_type"] for row in rows)


# --- audit ------------------------------------------------------------------------------------


def _scope(allowed: Sequence[str] | None) -> list[str] | None:
    return None if allowed is None else list(allowed)
