"""hacs_tools database tools against a real PostgreSQL: results, actors, permissions, sync twins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import hacs_tools.domains.database as database_tools
from hacs_auth import Actor, AuthManager, acting_as, configure_hacs, require_permission
from hacs_models import Patient
from hacs_tools import (
    HACSResult,
    adelete_resource,
    aread_resource,
    asave_resource,
    asearch_resources,
    aupdate_resource,
    configure_tools,
    delete_resource,
    read_resource,
    save_resource,
    search_resources,
    update_resource,
)
from tests.conftest import db_connect as _connect

PATIENT: dict[str, Any] = {
    "resource_type": "Patient",
    "id": "patient-1234",
    "full_name": "Maria Garcia",
    "gender": "female",
    "birth_date": "1985-03-15",
}


async def _scalar(url: str, sql: str, *args: Any) -> Any:
    conn = await _connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _stored_versions(url: str) -> int:
    return int(await _scalar(url, "SELECT count(*) FROM hacs_core.resource_versions"))


async def _audit_count(url: str, outcome: str, actor_id: str) -> int:
    sql = "SELECT count(*) FROM hacs_audit.audit_events WHERE outcome = $1 AND actor_id = $2"
    return int(await _scalar(url, sql, outcome, actor_id))


@pytest.fixture
def clinician() -> Actor:
    return Actor(
        id="dr_smith",
        name="Dr Smith",
        role="physician",
        permissions=["patient:read", "patient:write", "patient:delete"],
    )


@pytest.fixture
def reader() -> Actor:
    return Actor(id="reader-1", name="Reader", role="researcher", permissions=["patient:read"])


@pytest.fixture
def database_url(database_url: str) -> Iterator[str]:
    """The test's database, configured as the tools' database the way an application does it."""
    with configure_tools(database_url):
        yield database_url


def _failed(result: HACSResult, error: str) -> None:
    assert result.success is False, result
    assert result.error == error, result
    assert result.message


# -- round trip --------------------------------------------------------------------------------


async def test_async_tools_round_trip_as_current_actor(database_url: str, clinician: Actor) -> None:
    with acting_as(clinician):
        saved = await asave_resource(PATIENT)
        assert saved.success, saved
        assert saved.error is None
        assert saved.actor_id == "dr_smith"
        assert saved.data is not None
        assert saved.data["resource"]["id"] == "patient-1234"
        assert saved.data["resource"]["version"] == 1

        read = await aread_resource("patient-1234", "Patient")
        assert read.success, read
        assert read.message == "Patient patient-1234 retrieved"
        assert read.data is not None
        resource = read.data["resource"]
        assert resource["resource_type"] == "Patient"
        assert resource["full_name"] == "Maria Garcia"
        assert resource["gender"] == "female"
        assert resource["birth_date"] == "1985-03-15"  # JSON mode: a string, not a date
        assert resource["active"] is True

        changed = {**resource, "full_name": "Maria Garcia Lopez"}
        updated = await aupdate_resource(changed, expected_version=1)
        assert updated.success, updated
        assert updated.data is not None
        assert updated.data["resource"]["version"] == 2

        found = await asearch_resources("Patient", filters={"gender": "female"})
        assert found.success, found
        assert found.data is not None
        assert found.data["count"] == 1
        assert found.data["next_cursor"] is None
        assert found.data["resources"][0]["full_name"] == "Maria Garcia Lopez"

        deleted = await adelete_resource("patient-1234", "Patient")
        assert deleted.success, deleted
        assert deleted.data == {"resource_type": "Patient", "id": "patient-1234", "version": 3}

        gone = await aread_resource("patient-1234", "Patient")
        _failed(gone, "not_found")
        assert gone.data is not None and gone.data["deleted"] is True
    assert await _stored_versions(database_url) == 3


async def test_save_accepts_a_model_and_stamps_it(database_url: str, clinician: Actor) -> None:
    patient = Patient(full_name="Ana Lima", gender="female")
    with acting_as(clinician):
        saved = await asave_resource(patient)
        assert saved.success, saved
        assert patient.version == 1  # like adapter.save: the object is now the stored one
        patient.full_name = "Ana Lima Souza"
        again = await asave_resource(patient, "Patient")
        assert again.success, again
        assert again.data is not None and again.data["resource"]["version"] == 2


async def test_search_pages_with_cursor(database_url: str, clinician: Actor) -> None:
    with acting_as(clinician):
        for n in range(3):
            patient = {"resource_type": "Patient", "id": f"patient-{n}", "full_name": f"P {n}"}
            assert (await asave_resource(patient)).success
        first = await asearch_resources("Patient", limit=2)
        assert first.success and first.data is not None
        assert [r["id"] for r in first.data["resources"]] == ["patient-0", "patient-1"]
        assert first.data["next_cursor"]
        second = await asearch_resources("Patient", limit=2, cursor=first.data["next_cursor"])
        assert second.success and second.data is not None
        assert [r["id"] for r in second.data["resources"]] == ["patient-2"]
        assert second.data["count"] == 1
        assert second.data["next_cursor"] is None


# -- sync twins --------------------------------------------------------------------------------


async def test_sync_tools_inside_a_running_loop_see_the_current_actor(
    database_url: str, clinician: Actor
) -> None:
    asyncio.get_running_loop()  # the guide's case: a sync tool called from async code
    with acting_as(clinician):
        saved = save_resource(PATIENT)
        assert saved.success, saved
        assert saved.actor_id == "dr_smith"
        read = read_resource(
            resource_id="patient-1234",
            resource_type="Patient",
            actor_id="dr_smith",
        )
        assert read.success, read
        assert read.data is not None and read.data["resource"]["full_name"] == "Maria Garcia"
        updated = update_resource({**read.data["resource"], "gender": "other"})
        assert updated.success, updated
        found = search_resources("Patient", {"gender": "other"})
        assert found.data is not None and found.data["count"] == 1
        assert delete_resource("patient-1234", "Patient").success
    # The writes were made by the current actor, as the version history records.
    changed_by = await _scalar(
        database_url,
        "SELECT array_agg(DISTINCT changed_by) FROM hacs_core.resource_versions",
    )
    assert changed_by == ["dr_smith"]


async def test_sync_tools_without_a_running_loop(database_url: str, clinician: Actor) -> None:
    def in_plain_thread() -> tuple[HACSResult, HACSResult]:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # really no loop here: the asyncio.run path
        with configure_hacs(current_actor=clinician):  # this thread's own context only
            saved = save_resource(PATIENT)
            read = read_resource("patient-1234", "Patient")
        return saved, read

    with acting_as(None):  # the thread sets its own actor; nothing is inherited
        saved, read = await asyncio.to_thread(in_plain_thread)
    assert saved.success, saved
    assert read.success, read
    assert read.actor_id == "dr_smith"
    assert read.data is not None and read.data["resource"]["id"] == "patient-1234"


async def test_guide_pattern_require_permission_then_sync_read(
    database_url: str, clinician: Actor
) -> None:
    with acting_as(clinician):
        assert (await asave_resource(PATIENT)).success

    @require_permission("patient:read")
    async def get_patient(patient_id: str, **kwargs: Any) -> HACSResult:
        return read_resource(
            resource_id=patient_id,
            resource_type="Patient",
            actor_id=kwargs["claims"]["user_id"],
        )

    token = AuthManager().create_access_token(
        user_id="dr_martinez", role="physician", permissions=["patient:read"]
    )
    with acting_as(None):
        result = await get_patient("patient-1234", token=token)
    assert result.success, result
    assert result.actor_id == "dr_martinez"
    assert result.message == "Patient patient-1234 retrieved"
    assert result.data is not None
    assert result.data["resource"]["full_name"] == "Maria Garcia"
    assert result.data["resource"]["gender"] == "female"


# -- refusals ----------------------------------------------------------------------------------

_NO_ACTOR_CALLS = {
    "save": lambda: save_resource(PATIENT),
    "read": lambda: read_resource("patient-1234", "Patient"),
    "update": lambda: update_resource(PATIENT, 1),
    "delete": lambda: delete_resource("patient-1234", "Patient"),
    "search": lambda: search_resources("Patient"),
}


@pytest.mark.parametrize("name", sorted(_NO_ACTOR_CALLS))
async def test_no_current_actor_is_refused_and_nothing_is_written(
    database_url: str, name: str
) -> None:
    with acting_as(None):
        result = _NO_ACTOR_CALLS[name]()
    _failed(result, "no_actor")
    assert result.actor_id is None
    assert await _stored_versions(database_url) == 0
    # Refused before any connection: not even an audit row.
    assert await _scalar(database_url, "SELECT count(*) FROM hacs_audit.audit_events") == 0


async def test_actor_id_must_be_the_current_actor(database_url: str, clinician: Actor) -> None:
    with acting_as(clinician):
        mismatch = await asave_resource(PATIENT, actor_id="dr_evil")
        _failed(mismatch, "actor_mismatch")
        assert mismatch.actor_id == "dr_smith"
        assert await _stored_versions(database_url) == 0
        read = await aread_resource("patient-1234", "Patient", "dr_evil")
        _failed(read, "actor_mismatch")
        matching = await asave_resource(PATIENT, actor_id="dr_smith")
        assert matching.success, matching


async def test_missing_permission_is_refused_and_audited(
    database_url: str, reader: Actor, clinician: Actor
) -> None:
    with acting_as(reader):
        denied = await asave_resource(PATIENT)
        _failed(denied, "permission_denied")
        assert denied.actor_id == "reader-1"
        assert denied.data == {"permission": "patient:write"}
        assert await _stored_versions(database_url) == 0
        assert await _audit_count(database_url, "denied", "reader-1") == 1

        deleted = await adelete_resource("patient-1234", "Patient")
        _failed(deleted, "permission_denied")
        assert await _audit_count(database_url, "denied", "reader-1") == 2

    other = Actor(id="nurse-1", name="Nurse", role="nurse", permissions=["observation:read"])
    with acting_as(other):
        _failed(read_resource("patient-1234", "Patient"), "permission_denied")
    assert await _audit_count(database_url, "denied", "nurse-1") == 1
    assert await _audit_count(database_url, "denied", clinician.id) == 0


async def test_not_found(database_url: str, clinician: Actor) -> None:
    with acting_as(clinician):
        result = await aread_resource("patient-nope", "Patient")
        _failed(result, "not_found")
        assert "patient-nope" not in result.message  # ids are data, never in messages
        assert result.data == {"resource_type": "Patient", "id": "patient-nope", "deleted": False}
        deleted = await adelete_resource("patient-nope", "Patient")
        _failed(deleted, "not_found")


async def test_invalid_dict_names_the_field_and_hides_the_value(
    database_url: str, clinician: Actor
) -> None:
    bad = {**PATIENT, "birth_date": "15th of March 1985"}
    with acting_as(clinician):
        result = await asave_resource(bad)
    _failed(result, "validation")
    assert "birth_date" in result.message
    assert "15th of March" not in result.message  # resource content stays out of messages
    assert result.data is not None
    assert [e["field"] for e in result.data["errors"]] == ["birth_date"]
    assert "15th of March" not in repr(result.data)
    assert await _stored_versions(database_url) == 0


async def test_dict_of_another_type_than_declared_fails_validation(
    database_url: str, clinician: Actor
) -> None:
    with acting_as(clinician):
        result = await asave_resource(PATIENT, "Observation")
        _failed(result, "validation")
        assert "resource_type" in result.message
        untyped = await asave_resource({"full_name": "X"})
        _failed(untyped, "validation")
        assert "resource_type" in untyped.message
        not_a_dict = await asave_resource(["Patient"])  # type: ignore[arg-type]
        _failed(not_a_dict, "validation")


async def test_unknown_resource_type_is_a_clear_failure(
    database_url: str, clinician: Actor
) -> None:
    with acting_as(clinician):
        read = await aread_resource("patient-1234", "Patinet")
        _failed(read, "unknown_resource_type")
        assert "'Patinet'" in read.message
        assert "Did you mean 'Patient'" in read.message
        saved = await asave_resource({"resource_type": "Spaceship", "id": "s-1"})
        _failed(saved, "unknown_resource_type")
        searched = await asearch_resources("Spaceship")
        _failed(searched, "unknown_resource_type")


async def test_version_conflicts_tell_the_agent_what_to_do(
    database_url: str, clinician: Actor
) -> None:
    with acting_as(clinician):
        assert (await asave_resource(PATIENT)).success
        again = await asave_resource(PATIENT)
        _failed(again, "version_conflict")
        assert "already exists" in again.message
        assert again.data is not None and again.data["stored_version"] == 1

        stale = await aupdate_resource(PATIENT, expected_version=7)
        _failed(stale, "version_conflict")
        assert stale.data is not None
        assert (stale.data["expected_version"], stale.data["stored_version"]) == (7, 1)

        unversioned = await aupdate_resource(PATIENT)
        _failed(unversioned, "version_conflict")
        assert "expected_version" in unversioned.message
    assert await _stored_versions(database_url) == 1


async def test_bad_search_is_an_invalid_query(database_url: str, clinician: Actor) -> None:
    with acting_as(clinician):
        result = await asearch_resources("Patient", filters={"ssn": "123"})
        _failed(result, "invalid_query")
        assert "ssn" in result.message
        bad_limit = await asearch_resources("Patient", limit=0)
        _failed(bad_limit, "invalid_query")


async def test_unmigrated_database_is_reported(empty_database_url: str, clinician: Actor) -> None:
    with configure_tools(empty_database_url), acting_as(clinician):
        result = await aread_resource("patient-1234", "Patient")
    _failed(result, "schema_not_migrated")


async def test_unreachable_database_is_reported(clinician: Actor) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/hacs"  # port 1: nothing listens
    with configure_tools(url), acting_as(clinician):
        result = await aread_resource("patient-1234", "Patient")
    _failed(result, "database_unavailable")
    assert "secret" not in result.message


# -- unexpected errors -------------------------------------------------------------------------


def _failing_adapter(exc: BaseException) -> Any:
    async def create(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return create


async def test_unexpected_error_is_internal_error_without_its_text(
    monkeypatch: pytest.MonkeyPatch, clinician: Actor
) -> None:
    monkeypatch.setattr(
        database_tools, "create_postgres_adapter", _failing_adapter(RuntimeError("Maria Garcia"))
    )
    with acting_as(clinician):
        result = await aread_resource("patient-1234", "Patient")
    _failed(result, "internal_error")
    assert "RuntimeError" in result.message
    assert "Maria" not in result.message
    assert result.actor_id == "dr_smith"


@pytest.mark.parametrize("exc_type", [asyncio.CancelledError, KeyboardInterrupt])
async def test_cancellation_and_interrupts_are_not_swallowed(
    monkeypatch: pytest.MonkeyPatch, clinician: Actor, exc_type: type[BaseException]
) -> None:
    monkeypatch.setattr(database_tools, "create_postgres_adapter", _failing_adapter(exc_type()))
    with acting_as(clinician), pytest.raises(exc_type):
        await aread_resource("patient-1234", "Patient")


def test_sync_twin_propagates_interrupts_from_its_own_loop(
    monkeypatch: pytest.MonkeyPatch, clinician: Actor
) -> None:
    monkeypatch.setattr(
        database_tools, "create_postgres_adapter", _failing_adapter(KeyboardInterrupt())
    )
    with acting_as(clinician), pytest.raises(KeyboardInterrupt):
        read_resource("patient-1234", "Patient")
