"""``hacs_views.fhir_resources`` kept in step with the stored documents, in the write's transaction.

Stored documents are hacs-shaped (snake_case, typed fields); SQL on FHIR views evaluate FHIRPath
against FHIR JSON. The FHIR JSON is ``to_fhir`` of the model, which only Python has, so every
adapter write (save, update, delete, save_many and so import, purge) also writes, replaces or
removes the resource's row here, in the same transaction as the document: a view never shows
a version the documents do not hold, and a rolled back write leaves both unchanged. A single
save, update or delete does it in its one statement (``snapshot_params`` and the statements'
snapshot CTE); batches and erasure through the statements here.
``hacs views sync`` rebuilds a type's rows as a whole (data written before this existed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from hacs_models import BaseResource
from hacs_models.fhir import dumps, to_fhir
from hacs_persistence.db.unit import Unit
from hacs_persistence.storage.mapping import ResourceMapping

__all__ = [
    "SYNC_UPSERT",
    "forget_patient",
    "patient_of",
    "snapshot_params",
    "snapshot_rows",
    "write_snapshot",
]

# One statement for any number of rows: arrays unnested, an existing row replaced.
# stored_typed: the resource is in its typed table, so compiled views read its typed columns.
_INSERT = (
    "INSERT INTO hacs_views.fhir_resources "
    "(resource_type, id, version, patient_id, resource, stored_typed) "
    "SELECT r.rt, r.id, r.version, r.patient, CAST(r.resource AS jsonb), r.typed "
    "FROM unnest(CAST(:rt AS text[]), CAST(:id AS text[]), CAST(:version AS integer[]), "
    "CAST(:patient AS text[]), CAST(:resource AS text[]), CAST(:typed AS boolean[])) "
    "AS r(rt, id, version, patient, resource, typed) "
    "ON CONFLICT (resource_type, id) DO UPDATE SET version = EXCLUDED.version, "
    "patient_id = EXCLUDED.patient_id, resource = EXCLUDED.resource, "
    "stored_typed = EXCLUDED.stored_typed, synced_at = now()"
)
_UPSERT = text(_INSERT)
# A sync's page: a write that committed a newer version while the sync read (its snapshot row
# inserted after the sync's DELETE) is not replaced by the older document the sync read.
SYNC_UPSERT = text(_INSERT + " WHERE hacs_views.fhir_resources.version <= EXCLUDED.version")
_FORGET_PATIENT = text(
    "DELETE FROM hacs_views.fhir_resources "
    "WHERE patient_id = :patient OR (resource_type = 'Patient' AND id = :patient)"
)


def patient_of(resource_type: str, fhir: Mapping[str, Any], scope: str | None) -> str | None:
    """The patient a resource belongs to: its scope column's value, else its subject/patient."""
    if resource_type == "Patient":
        value = fhir.get("id")
        return value if isinstance(value, str) else None
    if scope is not None:
        return scope
    for element in ("subject", "patient"):
        reference = fhir.get(element)
        if isinstance(reference, dict):
            found = re.fullmatch(r"Patient/([^/]+)", str(reference.get("reference", "")))
            if found:
                return found.group(1)
    return None


def snapshot_rows(
    pairs: Sequence[tuple[ResourceMapping, BaseResource]],
) -> dict[str, list[Any]]:
    """The upsert's array parameters for stored resources (their version set)."""
    keys = ("rt", "id", "version", "patient", "resource", "typed")
    params: dict[str, list[Any]] = {k: [] for k in keys}
    for mapping, resource in pairs:
        fhir = to_fhir(resource)
        params["rt"].append(mapping.resource_type)
        params["id"].append(resource.id)
        params["version"].append(resource.version)
        params["patient"].append(
            patient_of(mapping.resource_type, fhir, mapping.scope_value(resource))
        )
        # Decimals exact; compact UTF-8 is the fast (orjson) path of dumps.
        params["resource"].append(dumps(fhir, separators=(",", ":"), ensure_ascii=False))
        params["typed"].append(mapping.typed)
    return params


# What a new resource is converted with until its statement sets the real meta (never stored).
_UNSTORED_STAMP = {"version": 0, "updated_at": datetime(1970, 1, 1, tzinfo=UTC)}


def _fhir_as_stored(resource: BaseResource) -> dict[str, Any]:
    """``to_fhir`` of the resource as it will be stored: a new one is converted as stored too
    (its id, a ``meta``), with a stand-in version and time that its statement replaces."""
    if resource.version is not None:
        return to_fhir(resource)
    fields = resource.__dict__
    saved = {name: fields[name] for name in _UNSTORED_STAMP}
    fields.update(_UNSTORED_STAMP)
    try:
        return to_fhir(resource)
    finally:
        fields.update(saved)


def snapshot_params(mapping: ResourceMapping, resource: BaseResource) -> dict[str, Any]:
    """The snapshot parameters of a single write's statement (``p_fhir``, ``p_fhir_patient``).

    The statement stores ``p_fhir`` with the ``meta.versionId`` and ``meta.lastUpdated`` it
    writes (``statements.fhir_instant``): the same JSON ``snapshot_rows`` gives once stamped.
    """
    fhir = _fhir_as_stored(resource)
    return {
        "p_fhir": dumps(fhir, separators=(",", ":"), ensure_ascii=False),
        "p_fhir_patient": patient_of(mapping.resource_type, fhir, mapping.scope_value(resource)),
    }


async def write_snapshot(unit: Unit, pairs: Sequence[tuple[ResourceMapping, BaseResource]]) -> None:
    """Write (or replace) the FHIR JSON of just-stored resources, in ``unit``'s transaction."""
    if pairs:
        await unit.execute(_UPSERT, snapshot_rows(pairs))


async def forget_patient(unit: Unit, patient_id: str) -> None:
    """Remove an erased patient's rows (the patient and what belongs to it)."""
    await unit.execute(_FORGET_PATIENT, {"patient": patient_id})
