"""Erasure and retention: purge a patient's compartment; age out audit rows.

Both run inside the database, in functions that run with their owner's rights, so that the
application role (which may not ``DELETE``) can use them once the owner grants ``EXECUTE``:

* ``hacs_admin.purge_patient`` (revision 0004) removes the patient's compartment found from the
  stored documents: the patient, every row attributed to them (typed ``patient_id``, a JSONB
  document's top-level ``subject``/``patient``), every other resource whose document names them
  anywhere (nested references, rows imported before the patient with a NULL foreign key, Bundles
  that hold their resources) and, transitively, what references those; with every version of
  all of them, and the old versions of other patients' resources that still named them. The
  audit trail keeps its rows (ids, never content); the function itself writes the purge's row
  (the hacs actor passed in ``p_audit``, and the database role that ran it).
* ``hacs_audit.apply_retention`` (revision 0003) is the only path by which the append-only
  trigger lets an audit row go. Since revision 0012 it detaches and drops the monthly partitions
  of ``audit_events`` that end at or before the cutoff, deletes rows only in the month that
  straddles it (and in the DEFAULT partition), and counts both in what it returns and records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Interval, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import JSONB

from hacs_persistence.db.unit import Unit
from hacs_persistence.storage.codec import audit_row

__all__ = ["PurgeReport", "apply_retention", "purge_compartment"]


@dataclass
class PurgeReport:
    """What a purge removed.

    ``resources``: resources removed per type; ``versions``: their version rows (all of them);
    ``foreign_versions``: old version rows of resources kept because they now belong to someone
    else (e.g. an Observation moved to another patient) that named this patient's compartment;
    ``kept_references``: ``Type/id`` of resources of other patients that still reference the
    erased compartment (kept; their foreign keys to erased rows are set to NULL).
    """

    patient_id: str
    resources: dict[str, int] = field(default_factory=dict)
    versions: int = 0
    foreign_versions: int = 0
    kept_references: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Resources removed, all types together."""
        return sum(self.resources.values())

    @classmethod
    def from_result(cls, patient_id: str, result: Any) -> PurgeReport:
        """The report of ``hacs_admin.purge_patient``'s jsonb result (text or decoded)."""
        data: dict[str, Any] = json.loads(result) if isinstance(result, (str, bytes)) else result
        return cls(
            patient_id,
            resources={str(k): int(v) for k, v in (data.get("resources") or {}).items()},
            versions=int(data.get("versions") or 0),
            foreign_versions=int(data.get("foreign_versions") or 0),
            kept_references=[str(r) for r in data.get("kept_references") or ()],
        )


# Both functions are defined by revisions (0004 and 0003); calling them is the only way rows go.
_PURGE = select(
    func.hacs_admin.purge_patient(
        bindparam("p_patient", type_=Text), bindparam("p_audit", type_=JSONB), type_=JSONB
    )
)
_RETENTION = select(
    func.hacs_audit.apply_retention(
        bindparam("p_age", type_=Interval), bindparam("p_by", type_=Text)
    )
)


async def purge_compartment(
    unit: Unit, patient_id: str, audit: Mapping[str, Any] | None = None
) -> PurgeReport:
    """Delete the patient's compartment and all its versions (in the unit's transaction).

    ``audit``: who asks, as the ``a_*`` parameters of the call (``AccessGate.params``), for
    the audit row the database function writes (as the columns they fill; its action is
    always ``purge``).
    """
    who = {} if audit is None else audit_row(audit)
    who.pop("action", None)
    row = await unit.fetchrow(_PURGE, {"p_patient": patient_id, "p_audit": who})
    return PurgeReport.from_result(patient_id, row[0])


async def apply_retention(unit: Unit, max_age: timedelta, requested_by: str) -> int:
    """Remove audit rows older than ``max_age`` (at least a day) through the database function.

    Whole months go as partitions (detached and dropped), the straddling month row by row; the
    result is the number of rows removed either way.
    """
    row = await unit.fetchrow(_RETENTION, {"p_age": max_age, "p_by": requested_by})
    return int(row[0])
