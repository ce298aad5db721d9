"""Ids are FHIR ids (``[A-Za-z0-9\\-.]{1,64}``): anything else is refused before SQL, unquoted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from hacs_auth import acting_as
from hacs_models import Observation, Patient, is_resource_id, new_resource_id
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import InvalidQueryError, ResourceValidationError
from hacs_persistence.interchange import iter_patient_compartment
from hacs_persistence.query.repositories import repository_for, session_scope
from hacs_tools import configure_tools
from hacs_tools.domains.database import adelete_resource, aread_resource
from tests.factories import ADMIN

MARK = "Vexmoriant"
BAD_IDS = [
    f"pat\n{MARK}",
    MARK + "x" * 4096,
    f"{MARK} space",
    f"{MARK}/slash",
    f"{MARK}\x00nul",
    f"{MARK}é",
    f"{MARK}_under",
    "",
    "a" * 65,
]
GOOD_IDS = [
    "patient-704ac73d",
    new_resource_id("Observation"),
    str(uuid.uuid4()),
    "A.b-9",
    "x" * 64,
]


def test_models_accept_fhir_ids_and_refuse_others_without_quoting_them() -> None:
    for good in GOOD_IDS:
        assert Patient(id=good).id == good and is_resource_id(good)
    for bad in BAD_IDS:
        assert not is_resource_id(bad)
        with pytest.raises(ValidationError) as caught:
            Patient(id=bad)
        assert MARK not in str(caught.value) and "1-64 characters" in str(caught.value)
        patient = Patient()
        with pytest.raises(ValidationError) as caught:
            patient.id = bad
        assert MARK not in str(caught.value)


async def _audit_text(db: asyncpg.Connection) -> str:
    rows = await db.fetch("SELECT * FROM hacs_audit.audit_events")
    return "\n".join(str(dict(row)) for row in rows)


async def test_adapter_entries_refuse_bad_ids_before_sql_and_audit(
    adapter: Any, db: asyncpg.Connection
) -> None:
    patient = await adapter.save(Patient(id="patient-704ac73d"), ADMIN)
    before = await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events")
    calls: list[Callable[[str], Awaitable[Any]]] = [
        lambda bad: adapter.read(Patient, bad, ADMIN),
        lambda bad: adapter.delete(Patient, bad, ADMIN),
        lambda bad: adapter.history(Patient, bad, ADMIN),
        lambda bad: adapter.read_version(Patient, bad, 1, ADMIN),
        lambda bad: adapter.purge_patient(bad, ADMIN),
        lambda bad: adapter.acting_as(ADMIN).read(Observation, bad),
        lambda bad: adapter.save(Patient.model_construct(id=bad, resource_type="Patient"), ADMIN),
    ]
    for call in calls:
        for bad in BAD_IDS:
            with pytest.raises(ResourceValidationError) as caught:
                await call(bad)
            assert MARK not in str(caught.value)
            assert "1-64 characters" in str(caught.value)
    assert await db.fetchval("SELECT count(*) FROM hacs_audit.audit_events") == before
    assert MARK not in await _audit_text(db)
    # Good ids still work.
    assert (await adapter.read(Patient, patient.id, ADMIN)).id == patient.id
    for good in GOOD_IDS:
        saved = await adapter.save(Observation(id=good, status="final", code={"text": "x"}), ADMIN)
        assert (await adapter.read(Observation, saved.id, ADMIN)).id == good


async def test_repositories_tools_and_exports_refuse_bad_ids(
    database_url: str, db: asyncpg.Connection
) -> None:
    adapter = await create_postgres_adapter(database_url)
    try:
        for bad in BAD_IDS[:3]:
            with pytest.raises(ResourceValidationError) as caught:
                async for _ in iter_patient_compartment(adapter, bad, ADMIN):
                    pass
            assert MARK not in str(caught.value)
    finally:
        await adapter.close()
    async with session_scope(database_url) as session:
        patients = repository_for(session, "Patient", ADMIN)
        observations = repository_for(session, "Observation", ADMIN)
        for bad in BAD_IDS[:4]:
            for call in (
                patients.get(bad),
                patients.exists(bad),
                patients.document(bad),
                observations.for_patient(bad),
            ):
                with pytest.raises(InvalidQueryError) as caught:
                    await call
                assert MARK not in str(caught.value)
    with acting_as(ADMIN), configure_tools(database_url):
        for bad in BAD_IDS[:4]:
            for tool in (aread_resource, adelete_resource):
                result = await tool(bad, "Patient")
                assert not result.success and result.error == "validation"
                assert MARK not in result.message
    assert MARK not in await _audit_text(db)
