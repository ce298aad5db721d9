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

from sqlalchemy import Table

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


def _name(table: Table) -> str:
    # Identifiers come from the metadata, never from input.
    return f'"{table.schema or "public"}"."{table.name}"'


async def purge_compartment(unit: Unit, patient_id: str) -> PurgeReport:
    """Delete the patient's compartment and all its versions (in the unit's transaction)."""
    report = PurgeReport(patient_id)
    removed: list[tuple[str, str]] = []
    await unit.driver.execute("SET CONSTRAINTS ALL DEFERRED")
    for resource_type, table_cls in TYPED_TABLES.items():
        table: Table = table_cls.__table__  # type: ignore[assignment]
        if resource_type == "Patient" or "patient_id" not in table.c:
            continue
        rows = await unit.driver.fetch(
            f"DELETE FROM {_name(table)} WHERE patient_id = $1 RETURNING resource_type, id",
            patient_id,
        )
        removed.extend((r["resource_type"], r["id"]) for r in rows)
    for reference_key in ("subject", "patient"):
        probe = json.dumps({reference_key: {"reference": f"Patient/{patient_id}"}})
        rows = await unit.driver.fetch(
            f"DELETE FROM {_name(DOCUMENTS)} WHERE document @> $1::jsonb "
            "RETURNING resource_type, id",
            probe,
        )
        removed.extend((r["resource_type"], r["id"]) for r in rows)
    patients: Table = TYPED_TABLES["Patient"].__table__  # type: ignore[assignment]
    rows = await unit.driver.fetch(
        f"DELETE FROM {_name(patients)} WHERE id = $1 RETURNING resource_type, id", patient_id
    )
    removed.extend((r["resource_type"], r["id"]) for r in rows)
    if removed:
        deleted = await unit.driver.fetchval(
            f"WITH gone AS (DELETE FROM {_name(VERSIONS)} v "
            "USING unnest($1::text[], $2::text[]) AS r(resource_type, id) "
            "WHERE v.resource_type = r.resource_type AND v.id = r.id RETURNING 1) "
            "SELECT count(*) FROM gone",
            [t for t, _ in removed],
            [i for _, i in removed],
        )
        report.versions = int(deleted)
    for resource_type, _ in removed:
        report.resources[resource_type] = report.resources.get(resource_type, 0) + 1
    return report


async def apply_retention(unit: Unit, max_age: timedelta, requested_by: str) -> int:
    """Remove audit rows older than ``max_age`` (at least a day) through the database function."""
    removed = await unit.driver.fetchval(
        "SELECT hacs_audit.apply_retention($1::interval, $2)", max_age, requested_by
    )
    return int(removed)
