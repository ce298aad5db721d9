"""FHIR export: a patient's compartment as a collection Bundle, a resource type as NDJSON.

Everything goes through the adapter's access gate: read permission on every exported type is
checked (a refusal is audited as denied) before anything is read, a patient-scoped actor's
patient ids are part of the SQL of every page, and every page of resources gets its audit row,
written through ``gate.record`` on a connection of its own *before* the page is handed out. So
no resource leaves the library without an audit row, and a rollback of the caller's
transaction cannot take that row away. Pages are keyset-paginated (``build_search``), so memory
holds one page at a time when writing to a file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from hacs_auth import Actor
from hacs_models import BaseResource
from hacs_models import fhir as fhir_json
from hacs_models.fhir import is_known_resource_type, to_fhir, unknown_resource_type
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import (
    ResourceNotFoundError,
    StoredDocumentError,
)
from hacs_persistence.ids import checked_id
from hacs_persistence.interchange._store import compartment_types
from hacs_persistence.query.search import build_search, describe_shape, next_cursor, parse_filters
from hacs_persistence.storage.codec import codec_for
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import statements_for

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPORT",
    "export_patient_bundle",
    "export_type_ndjson",
    "iter_patient_compartment",
    "iter_resources",
    "write_patient_bundle",
]

DEFAULT_PAGE_SIZE = 500
# The audit action of every export row: refusals (denied), a missing patient (not_found) and
# one success row per page of resources handed out.
EXPORT = "export"


@dataclass(frozen=True)
class _Query:
    """One exported type and its filter; ``kind`` names the export in the audit detail."""

    kind: str
    mapping: ResourceMapping
    filters: Mapping[str, Any] | None
    allowed: list[str] | None
    # The patient a compartment export is about (its rows' patient, for the audit row).
    patient: str | None = None

    @property
    def shape(self) -> str:
        """What is asked, for the audit rows: type, field names and operators, never values.

        ``export=patient;types=Observation;filters=patient_id:eq;order_by=id;scope=patients``
        """
        shape, _values = parse_filters(self.mapping, self.filters)
        described = describe_shape(shape, "id", self.allowed is not None)
        return f"export={self.kind};types={self.mapping.resource_type};{described}"


async def _permit(
    adapter: PostgreSQLAdapter, actor: Actor, resource_type: str, resource_id: str | None
) -> tuple[ResourceMapping, list[str] | None]:
    """Read permission and patient scope of one type (refusals audited as denied)."""
    mapping = adapter.mapping(resource_type)
    await adapter.gate.authorize(actor, "read", mapping.resource_type, resource_id, EXPORT)
    allowed = await adapter.gate.scope(actor, mapping, EXPORT, resource_id)
    return mapping, allowed


async def _validated(
    adapter: PostgreSQLAdapter, actor: Actor, query: _Query, rows: Sequence[tuple[str, str]]
) -> list[BaseResource]:
    """The page's documents as models; an invalid one stops the export, its id audited."""
    codec = codec_for(query.mapping)
    resources = []
    for position, (resource_id, document) in enumerate(rows, start=1):
        try:
            resources.append(codec.load(document, codec.model, position=position, page=True))
        except StoredDocumentError as exc:
            await adapter.gate.record(
                actor,
                EXPORT,
                query.mapping.resource_type,
                resource_id,
                "error",
                f"stored document invalid;{query.shape}",
            )
            raise exc from None
    return resources


async def _page(
    adapter: PostgreSQLAdapter, actor: Actor, query: _Query, page_size: int, cursor: str | None
) -> tuple[list[tuple[str, str, str | None]], str | None]:
    """One (id, document, patient) page of a query and the next cursor; the actor's patients
    are in the statement's WHERE. Read in the caller's transaction if one is open, else
    perhaps on a read replica (the page's audit row goes to the primary either way)."""
    plan = build_search(
        query.mapping, query.filters, None, page_size, cursor, query.allowed, audited=False
    )
    async with adapter._unit(reader=actor) as unit:
        rows = await unit.fetch(plan.statement, plan.params)
    page = [(row["id"], row["document"], row["patient_ref"]) for row in rows[: plan.limit]]
    return page, next_cursor(plan, rows)


async def _audit_page(
    adapter: PostgreSQLAdapter,
    actor: Actor,
    query: _Query,
    page: int,
    ids: Sequence[str],
    patients: Sequence[str | None],
) -> None:
    """The success row of one page: what was asked (names, never values) and the ids.

    Past ``AUDIT_ID_LIMIT`` ids the gate records their count and a sha256 of the sorted ids.
    """
    await adapter.gate.record(
        actor,
        EXPORT,
        query.mapping.resource_type,
        None,
        "success",
        f"{query.shape};page={page}",
        count=len(set(ids)),
        resource_ids=ids,
        patient_ids=patients,
    )


async def _export(
    adapter: PostgreSQLAdapter,
    actor: Actor,
    query: _Query,
    page_size: int,
    seen: set[str] | None = None,
) -> AsyncIterator[BaseResource]:
    """The resources of a query, each page audited before any of it is yielded.

    ``seen``: ids already exported for this type (skipped, and not listed again).
    """
    number = 0
    cursor: str | None = None
    while True:
        rows, cursor = await _page(adapter, actor, query, page_size, cursor)
        if seen is not None:
            rows = [row for row in rows if row[0] not in seen]
            seen.update(row[0] for row in rows)
        if rows:
            number += 1
            resources = await _validated(adapter, actor, query, [(i, d) for i, d, _ in rows])
            patients = [query.patient] if query.patient else [p for _, _, p in rows]
            # Written (and committed on its own connection) before the page leaves.
            await _audit_page(adapter, actor, query, number, [i for i, _, _ in rows], patients)
            for resource in resources:
                yield resource
        if cursor is None:
            return


async def iter_resources(
    adapter: PostgreSQLAdapter,
    resource_type: str,
    actor: Actor | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AsyncIterator[BaseResource]:
    """Every live resource of a type the actor may read, in id order, one page at a time.

    Needs read permission on the type (refused and audited as denied otherwise, before any
    read). A patient-scoped actor gets its patients' resources only, and types outside every
    patient compartment are refused to it. Each page is audited before it is yielded.
    """
    acting = adapter.gate.actor(actor)
    mapping, allowed = await _permit(adapter, acting, resource_type, None)
    query = _Query("ndjson", mapping, None, allowed)
    async for resource in _export(adapter, acting, query, page_size):
        yield resource


async def iter_patient_compartment(
    adapter: PostgreSQLAdapter,
    patient_id: str,
    actor: Actor | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AsyncIterator[BaseResource]:
    """The Patient, then every live resource that belongs to it, type by type.

    Typed rows belong to the patient through their ``patient_id`` column; resources of types
    without a typed table when their top-level ``subject`` or ``patient`` is
    ``Patient/<id>``. A patient-scoped actor gets the typed rows of its own patients only: the
    JSONB table is outside every patient compartment. Read permission on every type of the
    compartment is checked before anything is yielded. ``ResourceNotFoundError`` if the
    patient does not exist or is outside the actor's patients (audited as not found / denied).
    """
    patient_id = checked_id(patient_id, "patient_id")
    acting = adapter.gate.actor(actor)
    patient_mapping, allowed = await _permit(adapter, acting, "Patient", patient_id)
    patient_query = _Query("patient", patient_mapping, {"id": patient_id}, allowed, patient_id)
    first, _cursor = await _page(adapter, acting, patient_query, 1, None)
    if not first:
        await _record_missing(adapter, acting, patient_mapping, patient_id, allowed)
        raise ResourceNotFoundError("Patient", patient_id)
    async with adapter._unit(reader=acting) as unit:
        typed, documents = await compartment_types(
            unit, patient_id, typed=adapter.typed_storage, allowed=allowed
        )
    reference = {"reference": f"Patient/{patient_id}"}
    queries: list[_Query] = []
    for resource_type in typed:
        if resource_type == "Patient" or not adapter.mapping(resource_type).typed:
            continue  # an unregistered subclass type cannot be read back by name
        mapping, scope = await _permit(adapter, acting, resource_type, None)
        queries.append(_Query("patient", mapping, {"patient_id": patient_id}, scope, patient_id))
    for resource_type in documents:
        if resource_type == "Patient" or adapter.mapping(resource_type).typed:
            continue
        mapping, scope = await _permit(adapter, acting, resource_type, None)
        for element in ("subject", "patient"):
            queries.append(_Query("patient", mapping, {element: reference}, scope, patient_id))
    # Every permission held: the patient's page is audited and handed out, then the others.
    (patient,) = await _validated(adapter, acting, patient_query, [(first[0][0], first[0][1])])
    await _audit_page(adapter, acting, patient_query, 1, [patient_id], [patient_id])
    yield patient
    # A document may name the patient as both subject and patient: exported once.
    seen: dict[str, set[str]] = {}
    for query in queries:
        already = (
            None if query.mapping.typed else seen.setdefault(query.mapping.resource_type, set())
        )
        async for resource in _export(adapter, acting, query, page_size, already):
            yield resource


async def _record_missing(
    adapter: PostgreSQLAdapter,
    actor: Actor,
    mapping: ResourceMapping,
    patient_id: str,
    allowed: list[str] | None,
) -> None:
    """Audit a patient that was not found: denied when it exists outside the actor's patients."""
    params = {"p_rt": mapping.resource_type, "p_id": patient_id, "p_patients": allowed}
    async with adapter._unit(reader=actor) as unit:
        stored = await unit.fetchrow(statements_for(mapping).current_version, params)
    hidden = stored is not None and stored["deleted_at"] is None and not stored["in_scope"]
    await adapter.gate.record(
        actor, EXPORT, mapping.resource_type, patient_id, "denied" if hidden else "not_found"
    )


def _bundle_head() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"resourceType": "Bundle", "type": "collection", "timestamp": now}


def _entry(resource: BaseResource, base_url: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if base_url:
        entry["fullUrl"] = f"{base_url.rstrip('/')}/{resource.resource_type}/{resource.id}"
    entry["resource"] = to_fhir(resource)
    return entry


async def export_patient_bundle(
    adapter: PostgreSQLAdapter,
    patient_id: str,
    actor: Actor | None = None,
    *,
    base_url: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """The patient's compartment as a FHIR ``collection`` Bundle (see ``iter_patient_compartment``).

    Entries get a ``fullUrl`` (``{base_url}/Type/id``) only when ``base_url`` is given. For a
    large compartment prefer ``write_patient_bundle``, which does not build the Bundle in memory.
    """
    bundle = _bundle_head()
    bundle["entry"] = [
        _entry(resource, base_url)
        async for resource in iter_patient_compartment(
            adapter, patient_id, actor, page_size=page_size
        )
    ]
    return bundle


async def write_patient_bundle(
    adapter: PostgreSQLAdapter,
    patient_id: str,
    out: TextIO,
    actor: Actor | None = None,
    *,
    base_url: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> int:
    """Write the Bundle of ``export_patient_bundle`` to ``out`` as it is read; entries written."""
    head = fhir_json.dumps(_bundle_head(), ensure_ascii=False)
    count = 0
    async for resource in iter_patient_compartment(adapter, patient_id, actor, page_size=page_size):
        # The head is written with the first entry, after the patient was found: a missing
        # patient leaves ``out`` untouched.
        out.write(f'{head[:-1]}, "entry": [\n' if count == 0 else ",\n")
        out.write(fhir_json.dumps(_entry(resource, base_url), ensure_ascii=False))
        count += 1
    out.write("\n]}\n")
    return count


async def export_type_ndjson(
    adapter: PostgreSQLAdapter,
    resource_type: str,
    actor: Actor | None,
    out: TextIO,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> int:
    """Write every live resource of a type as FHIR NDJSON (one ``to_fhir`` JSON per line).

    Returns the number of lines written. A type hacs does not know (neither FHIR R4 nor a hacs
    model: a typo) raises ``UnknownResourceTypeError`` naming the closest one, rather than
    exporting nothing.
    """
    if not is_known_resource_type(resource_type):
        raise unknown_resource_type(resource_type)
    count = 0
    async for resource in iter_resources(adapter, resource_type, actor, page_size=page_size):
        out.write(fhir_json.dumps(to_fhir(resource), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count
