"""Tests for ``hacs_auth.actor``: ActorRole and Actor."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from hacs_auth import (
    Actor,
    ActorRole,
    InactiveActorError,
    InsufficientPermissionError,
    PermissionFormatError,
    PermissionSet,
)


def test_db_writer_reads_and_writes_only_its_types() -> None:
    actor = Actor(
        name="db-writer", role="system", permissions=["patient:write", "observation:write"]
    )
    assert actor.role is ActorRole.SYSTEM
    for resource_type in ("Patient", "Observation"):
        assert actor.can("read", resource_type)
        assert actor.can("write", resource_type)
        assert not actor.can("delete", resource_type)
    for resource_type in ("Encounter", "MedicationRequest", "Condition"):
        for action in ("read", "write", "delete"):
            assert not actor.can(action, resource_type)
    assert actor.has_permission("patient:read")
    assert actor.has_permission("Observation:WRITE")
    assert not actor.has_permission("patient:delete")
    assert not actor.has_permission("*:read")


def test_defaults() -> None:
    before = datetime.now(UTC)
    actor = Actor(name="n", role="nurse")
    assert re.fullmatch(r"actor-[0-9a-f]{8}", actor.id)
    assert Actor(name="n", role="nurse").id != actor.id
    assert actor.permissions == []
    assert actor.is_active is True
    assert actor.organization is None
    assert actor.patient_ids is None
    assert actor.session_id is None
    assert actor.created_at.tzinfo is not None
    assert actor.created_at.utcoffset() == timedelta(0)
    assert before <= actor.created_at <= datetime.now(UTC)
    assert not actor.can("read", "Patient")


@pytest.mark.parametrize("role", ["physician", "PHYSICIAN", " Physician ", ActorRole.PHYSICIAN])
def test_role_is_case_insensitive(role: str) -> None:
    assert Actor(name="dr", role=role).role is ActorRole.PHYSICIAN


def test_role_enum_members() -> None:
    expected = {
        "physician",
        "nurse",
        "pharmacist",
        "patient",
        "caregiver",
        "researcher",
        "administrator",
        "admin",
        "system",
        "agent",
        "service",
        "guest",
    }
    assert {r.value for r in ActorRole} == expected
    assert ActorRole("Agent") is ActorRole.AGENT
    assert str(ActorRole.AGENT) == "agent"
    assert f"{ActorRole.AGENT}" == "agent"
    with pytest.raises(ValueError):
        ActorRole("wizard")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": "system"},  # name missing
        {"name": "x"},  # role missing
        {"name": "", "role": "system"},
        {"name": "   ", "role": "system"},
        {"name": "x", "role": "wizard"},
        {"name": "x", "role": "system", "id": ""},
    ],
)
def test_required_fields_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Actor(**kwargs)


@pytest.mark.parametrize("bad", ["patient:fly", "patient", "patient:read:x", ":read", "9x:read"])
def test_bad_permission_rejected_at_construction(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Actor(name="x", role="agent", permissions=["patient:read", bad])
    message = str(info.value)
    assert repr(bad) in message
    assert "resource:action" in message
    errors = info.value.errors()
    assert errors[0]["loc"] == ("permissions",)
    assert isinstance(errors[0]["ctx"]["error"], PermissionFormatError)


def test_permissions_normalised_and_deduplicated() -> None:
    actor = Actor(
        name="x",
        role="agent",
        permissions=[" Patient : READ ", "medication_request:write", "patient:read"],
    )
    assert actor.permissions == ["patient:read", "medicationrequest:write"]
    assert actor.can("read", "MedicationRequest")
    assert actor.model_dump()["permissions"] == ["patient:read", "medicationrequest:write"]


def test_inactive_actor_can_do_nothing() -> None:
    actor = Actor(id="root", name="root", role="admin", permissions=["admin:*"], is_active=False)
    assert not actor.can("read", "Patient")
    assert not actor.can("*", "*")
    assert not actor.has_permission("patient:read")
    with pytest.raises(InactiveActorError, match="'root' is inactive") as info:
        actor.require("read", "Patient")
    assert info.value.actor_id == actor.id
    actor.is_active = True
    assert actor.can("delete", "Observation")


def test_require() -> None:
    actor = Actor(id="u-1", name="u", role="nurse", permissions=["patient:read"])
    actor.require("read", "Patient")
    with pytest.raises(InsufficientPermissionError) as info:
        actor.require("write", "Patient")
    assert info.value.permission == "patient:write"
    assert info.value.actor_id == "u-1"
    assert "u-1" in str(info.value) and "patient:write" in str(info.value)


def test_permission_set_compiled_once_and_refreshed_on_assignment() -> None:
    actor = Actor(name="x", role="agent", permissions=["patient:read"])
    compiled = actor.permission_set
    assert isinstance(compiled, PermissionSet)
    actor.can("read", "Patient")
    actor.has_permission("patient:read")
    assert actor.permission_set is compiled  # not rebuilt per call

    actor.permissions = ["Observation:Write"]
    assert actor.permissions == ["observation:write"]
    assert actor.permission_set is not compiled
    assert actor.can("read", "Observation")
    assert not actor.can("read", "Patient")

    with pytest.raises(ValidationError):
        actor.permissions = ["observation:fly"]
    assert actor.can("read", "Observation")


def test_has_permission_rejects_malformed_query() -> None:
    actor = Actor(name="x", role="agent", permissions=["*:*"])
    with pytest.raises(PermissionFormatError):
        actor.has_permission("patient")
    with pytest.raises(PermissionFormatError):
        actor.can("fly", "Patient")


def test_extra_fields_allowed_and_optional_fields() -> None:
    actor = Actor(
        name="Dr X",
        role="physician",
        organization="General Hospital",
        patient_ids=["p-1", "p-2"],
        session_id="s-1",
        department="cardiology",
    )
    assert actor.organization == "General Hospital"
    assert actor.patient_ids == ["p-1", "p-2"]
    assert actor.session_id == "s-1"
    assert actor.model_extra == {"department": "cardiology"}


def test_created_at_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    aware = Actor(name="x", role="agent", created_at=datetime(2024, 1, 1, 12, tzinfo=plus_two))
    assert aware.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert aware.created_at.utcoffset() == timedelta(0)
    naive = Actor(name="x", role="agent", created_at=datetime(2024, 1, 1, 12))
    assert naive.created_at == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_round_trip_through_json() -> None:
    actor = Actor(name="x", role="service", permissions=["patient:write"])
    clone = Actor.model_validate_json(actor.model_dump_json())
    assert clone == actor
    assert clone.can("read", "Patient")
