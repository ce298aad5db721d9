"""FHIR export: a patient's compartment as a collection Bundle, a resource type as NDJSON.

Everything is read through the adapter's ``search`` (permissions, patient scope and audit
apply) in keyset-paginated pages, so memory holds one page at a time when writing to a file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TextIO

from hacs_auth import Actor, get_current_actor
from hacs_models import BaseResource
from hacs_models.fhir import to_fhir
from hacs_persistence.adapter import PostgreSQLAdapter
from hacs_persistence.errors import PermissionDeniedError
from hacs_persistence.interchange._store import compartment_types
from hacs_persistence.search import Page
from hacs_persistence.unit import open_unit

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "export_patient_bundle",
    "export_type_ndjson",
    "iter_patient_compartment",
    "iter_resources",
    "write_patient_bundle",
]

DEFAULT_PAGE_SIZE = 500


def _acting(actor: Actor | None) -> Actor:
    resolved = actor if actor is not None else get_current_actor()
    if not isinstance(resolved, Actor):
        raise PermissionDeniedError("An export needs an actor: pass the acting Actor.")
    return resolved


async def _pages(
    adapter: PostgreSQLAdapter,
    resource_type: str,
    actor: Actor,
    filters: dict[str, Any] | None,
    page_size: int,
) -> AsyncIterator[BaseResource]:
    cursor: str | None = None
    while True:
        page: Page[BaseResource] = await adapter.search(
            resource_type, actor, filters=filters, limit=page_size, cursor=cursor
        )
        for resource in page:
            yield resource
        cursor = page.next_cursor
        if cursor is None:
            return


async def iter_resources(
    adapter: PostgreSQLAdapter,
    resource_type: str,
    actor: Actor | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AsyncIterator[BaseResource]:
    """Every live resource of a type, in id order, one page in memory at a time."""
    async for resource in _pages(adapter, resource_type, _acting(actor), None, page_size):
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
    ``Patient/<id>``. A patient-scoped actor gets the typed rows only: the JSONB table is
    outside every patient compartment for the adapter. ``ResourceNotFoundError`` if the
    patient does not exist.
    """
    acting = _acting(actor)
    patient: BaseResource = await adapter.read("Patient", patient_id, acting)
    yield patient
    async with open_unit(adapter.engine, transactional=False) as unit:
        typed, documents = await compartment_types(
            unit.driver, patient_id, typed=adapter.typed_storage
        )
    for resource_type in typed:
        if resource_type == "Patient" or not adapter.mapping(resource_type).typed:
            continue  # an unregistered subclass type cannot be read back by name
        by_patient: dict[str, Any] = {"patient_id": patient_id}
        async for resource in _pages(adapter, resource_type, acting, by_patient, page_size):
            yield resource
    if acting.patient_ids is not None:
        return
    reference = {"reference": f"Patient/{patient_id}"}
    for resource_type in documents:
        if resource_type == "Patient" or adapter.mapping(resource_type).typed:
            continue
        seen: set[str] = set()
        for element in ("subject", "patient"):
            by_reference: dict[str, Any] = {element: reference}
            async for resource in _pages(adapter, resource_type, acting, by_reference, page_size):
                if resource.id not in seen:
                    seen.add(resource.id)
                    yield resource


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
    head = json.dumps(_bundle_head(), ensure_ascii=False)
    count = 0
    async for resource in iter_patient_compartment(adapter, patient_id, actor, page_size=page_size):
        # The head is written with the first entry, after the patient was found: a missing
        # patient leaves ``out`` untouched.
        out.write(f'{head[:-1]}, "entry": [\n' if count == 0 else ",\n")
        out.write(json.dumps(_entry(resource, base_url), ensure_ascii=False))
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

    Returns the number of lines written.
    """
    count = 0
    async for resource in iter_resources(adapter, resource_type, actor, page_size=page_size):
        out.write(json.dumps(to_fhir(resource), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count
