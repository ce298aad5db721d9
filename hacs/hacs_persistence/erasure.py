"""Erasure and retention: purge a patient's compartment; age out audit rows.

A purge removes the patient, every typed row that points at it (``patient_id``), every JSONB
document whose ``subject`` or ``patient`` is that patient, and all their versions, in one
transaction. The audit trail keeps its rows (they hold ids, never content) and gains one row for
the purge. Audit retention runs inside the database (``hacs_audit.apply_retention``), the only
path by which the append-only trigger lets a row go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Interval, Table, Text, bindparam, cast, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from hacs_persistence.schema import TYPED_TABLES, ResourceDocumentTable, ResourceVersionTable
from hacs_persistence.unit import Unit

__all__ = ["PurgeReport", "apply_retention", "purge_compartment"]

VERSIONS: Table = ResourceVersionTable.__table__  # type: ignore[assignment]
DOCUMENTS: Table = ResourceDocumentTable.__table__  # type: ignore[assignment]


@dataclass
class PurgeReport:
    """What a purge removed: resources per type and version rows."""

    patient_id: str
    resources: dict[str, int] = field(default_factory=dict)
    versions: int = 0

    @property
    def total(self) -> int:
        """Resources removed, all types together."""
        return sum(self.resources.values())


@cache
def _delete_where_patient(table: Table) -> Any:
    """Delete the rows of a typed table that belong to patient ``p_patient``."""
    column = table.c.id if table.name == "patients" else table.c.patient_id
    return (
        delete(table)
        .where(column == bindparam("p_patient", type_=Text))
        .returning(table.c.resource_type, table.c.id)
    )


@cache
def _delete_documents_referencing() -> Any:
    """Delete the JSONB documents whose top-level element ``p_probe`` (jsonb) matches."""
    return (
        delete(DOCUMENTS)
        .where(DOCUMENTS.c.document.op("@>")(cast(bindparam("p_probe", type_=Text), JSONB)))
        .returning(DOCUMENTS.c.resource_type, DOCUMENTS.c.id)
    )


@cache
def _delete_versions() -> Any:
    """Delete every version of the (``p_types``, ``p_ids``) pairs; returns one row each."""
    pairs = select(
        func.unnest(bindparam("p_types", type_=ARRAY(Text))).label("resource_type"),
        func.unnest(bindparam("p_ids", type_=ARRAY(Text))).label("id"),
    ).subquery("pairs")
    return (
        delete(VERSIONS)
        .where(VERSIONS.c.resource_type == pairs.c.resource_type, VERSIONS.c.id == pairs.c.id)
        .returning(VERSIONS.c.version)
    )


async def purge_compartment(unit: Unit, patient_id: str) -> PurgeReport:
    """Delete the patient's compartment and all its versions (in the unit's transaction)."""
    report = PurgeReport(patient_id)
    removed: list[tuple[str, str]] = []
    await unit.driver.execute("SET CONSTRAINTS ALL DEFERRED")
    for resource_type, table_cls in TYPED_TABLES.items():
        table: Table = table_cls.__table__  # type: ignore[assignment]
        if resource_type == "Patient" or "patient_id" not in table.c:
            continue
        rows = await unit.fetch(_delete_where_patient(table), {"p_patient": patient_id})
        removed.extend((r["resource_type"], r["id"]) for r in rows)
    for reference_key in ("subject", "patient"):
        probe = json.dumps({reference_key: {"reference": f"Patient/{patient_id}"}})
        rows = await unit.fetch(_delete_documents_referencing(), {"p_probe": probe})
        removed.extend((r["resource_type"], r["id"]) for r in rows)
    patients: Table = TYPED_TABLES["Patient"].__table__  # type: ignore[assignment]
    rows = await unit.fetch(_delete_where_patient(patients), {"p_patient": patient_id})
    removed.extend((r["resource_type"], r["id"]) for r in rows)
    if removed:
        versions = await unit.fetch(
            _delete_versions(),
            {"p_types": [t for t, _ in removed], "p_ids": [i for _, i in removed]},
        )
        report.versions = len(versions)
    for resource_type, _ in removed:
        report.resources[resource_type] = report.resources.get(resource_type, 0) + 1
    return report


async def apply_retention(unit: Unit, max_age: timedelta, requested_by: str) -> int:
    """Remove audit rows older than ``max_age`` (at least a day) through the database function."""
    row = await unit.fetchrow(_RETENTION, {"p_age": max_age, "p_by": requested_by})
    return int(row[0])


# The retention function is defined by revision 0003; calling it is the only way rows go.
_RETENTION = select(
    func.hacs_audit.apply_retention(
        bindparam("p_age", type_=Interval), bindparam("p_by", type_=Text)
    )
)
