"""Tests for ``hacs_auth.actor``: ActorRole and Actor."""

from __future__ import annotations

import contextlib
import copy
import pickle
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
    assert actor.permissions == ()
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
    assert actor.permissions == ("patient:read", "medicationrequest:write")
    assert actor.can("read", "MedicationRequest")
    assert actor.model_dump()["permissions"] == ("patient:read", "medicationrequest:write")
    assert actor.model_dump(mode="json")["permissions"] == [
        "patient:read",
        "medicationrequest:write",
    ]


def test_inactive_actor_can_do_nothing() -> None:
    actor = Actor(id="root", name="root", role="admin", permissions=["admin:*"], is_active=False)
    assert not actor.can("read", "Patient")
    assert not actor.can("*", "*")
    assert not actor.has_permission("patient:read")
    with pytest.raises(InactiveActorError, match="actor is inactive") as info:
        actor.require("read", "Patient")
    assert info.value.actor_id == actor.id
    reactivated = actor.model_copy(update={"is_active": True})
    assert reactivated.can("delete", "Observation")
    assert not actor.can("delete", "Observation")


def test_require() -> None:
    actor = Actor(id="u-1", name="u", role="nurse", permissions=["patient:read"])
    actor.require("read", "Patient")
    with pytest.raises(InsufficientPermissionError) as info:
        actor.require("write", "Patient")
    assert info.value.permission == "patient:write"
    assert info.value.actor_id == "u-1"
    assert "u-1" not in str(info.value) and "patient:write" in str(info.value)


def test_permission_set_compiled_once() -> None:
    actor = Actor(name="x", role="agent", permissions=["patient:read"])
    compiled = actor.permission_set
    assert isinstance(compiled, PermissionSet)
    actor.can("read", "Patient")
    actor.has_permission("patient:read")
    assert actor.permission_set is compiled  # not rebuilt per call


def test_actor_is_frozen() -> None:
    actor = Actor(name="x", role="agent", permissions=["patient:read"], department="icu")
    for field, value in [
        ("permissions", ["observation:write"]),
        ("is_active", False),
        ("patient_ids", ["p-1"]),
        ("role", "admin"),
        ("department", "er"),  # extra attributes are frozen too
        ("brand_new", 1),
    ]:
        with pytest.raises(ValidationError, match="frozen"):
            setattr(actor, field, value)
    assert actor.permissions == ("patient:read",)
    assert actor.model_extra == {"department": "icu"}
    assert actor.can("read", "Patient")


def test_permissions_cannot_be_revoked_in_place() -> None:
    # Regression (finding 7): clearing the list used to leave the compiled grants active,
    # so the actor showed no permissions yet was still allowed to read.
    actor = Actor(name="x", role="agent", permissions=["patient:read"], patient_ids=["p-1"])
    with contextlib.suppress(AttributeError):
        actor.permissions.clear()  # type: ignore[attr-defined]
    assert actor.permission_set == PermissionSet(actor.permissions)  # checked == shown
    assert actor.can("read", "Patient") is bool(actor.permissions)

    assert isinstance(actor.permissions, tuple)
    assert isinstance(actor.patient_ids, tuple)
    with pytest.raises(AttributeError):
        actor.permissions.clear()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        actor.patient_ids.append("p-2")  # type: ignore[attr-defined]
    assert actor.permissions == ("patient:read",)
    assert actor.patient_ids == ("p-1",)
    assert actor.can("read", "Patient")


def test_model_copy_update_revalidates_and_recompiles() -> None:
    # Regression (finding 7): model_copy(update=...) used to keep the old compiled set.
    actor = Actor(id="u-1", name="x", role="agent", permissions=["patient:write"], team="night")
    revoked = actor.model_copy(update={"permissions": []})
    assert not revoked.can("read", "Patient")
    assert not revoked.has_permission("patient:read")
    assert revoked.permissions == ()
    with pytest.raises(InsufficientPermissionError):
        revoked.require("read", "Patient")
    assert actor.can("write", "Patient")  # the original is untouched

    changed = actor.model_copy(update={"permissions": ["Observation:Write"], "team": "day"})
    assert changed.permissions == ("observation:write",)
    assert changed.can("read", "Observation")
    assert not changed.can("read", "Patient")
    assert changed.permission_set == PermissionSet(["observation:write"])
    assert (changed.id, changed.created_at) == (actor.id, actor.created_at)
    assert changed.model_extra == {"team": "day"}

    deactivated = actor.model_copy(update={"is_active": False})
    assert not deactivated.can("read", "Patient")
    scoped = actor.model_copy(update={"patient_ids": ["p-1"]}, deep=True)
    assert scoped.patient_ids == ("p-1",)

    with pytest.raises(ValidationError):
        actor.model_copy(update={"permissions": ["observation:fly"]})
    with pytest.raises(ValidationError):
        actor.model_copy(update={"permissions": "admin:*"})  # a string is not a list
    with pytest.raises(ValidationError):
        actor.model_copy(update={"role": "wizard"})


def test_model_copy_keeps_fields_set() -> None:
    actor = Actor(name="x", role="agent")
    assert actor.model_copy().model_dump(exclude_unset=True) == {"name": "x", "role": "agent"}
    copied = actor.model_copy(update={"session_id": "s-1"}, deep=True)
    assert copied.model_dump(exclude_unset=True) == {
        "name": "x",
        "role": "agent",
        "session_id": "s-1",
    }
    assert actor.model_copy(deep=True) == actor


def test_check_follows_current_fields_even_without_validation() -> None:
    # Regression (finding 7): the decision must come from the permissions the actor holds,
    # not from a set compiled from an earlier value.
    actor = Actor(name="x", role="agent", permissions=["patient:read"])
    object.__setattr__(actor, "permissions", ())  # bypasses the frozen check
    assert not actor.can("read", "Patient")
    assert not actor.has_permission("patient:read")

    perms = ["patient:read"]  # model_construct skips validation: the list stays a list
    built = Actor.model_construct(
        name="x",
        role=ActorRole.AGENT,
        permissions=perms,  # type: ignore[arg-type]
    )
    assert built.can("read", "Patient")
    perms.clear()
    assert not built.can("read", "Patient")


def test_equality_and_hash() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    a = Actor(id="a", name="a", role="agent", permissions=["patient:read"], created_at=when)
    b = Actor(id="a", name="a", role="agent", permissions=("Patient:Read",), created_at=when)
    c = a.model_copy(update={"permissions": ["patient:write"]})
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert {a, b, c} == {a, c}
    assert a.model_copy(update={"permissions": ["patient:read"]}) == a
    assert copy.deepcopy(a) == a
    assert pickle.loads(pickle.dumps(a)) == a


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
    assert actor.patient_ids == ("p-1", "p-2")
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
    assert Actor.model_validate(actor.model_dump()) == actor
    scoped = Actor(name="x", role="agent", patient_ids=["p-1"], ward="3B")
    again = Actor.model_validate_json(scoped.model_dump_json())
    assert again == scoped
    assert again.patient_ids == ("p-1",)
    assert again.model_extra == {"ward": "3B"}


@pytest.mark.parametrize("role", ["patient", "caregiver", "PATIENT"])
def test_patient_facing_actor_without_patients_is_refused(role: str) -> None:
    with pytest.raises(ValidationError, match="must be limited to its patients"):
        Actor(name="pat", role=role, permissions=["*:read"])
    scoped = Actor(name="pat", role=role, permissions=["*:read"], patient_ids=["p-1"])
    assert scoped.patient_ids == ("p-1",)
    with pytest.raises(ValidationError, match="must be limited to its patients"):
        scoped.model_copy(update={"patient_ids": None})
    assert Actor(name="pat", role=role, patient_ids=[]).patient_ids == ()


def test_staff_actor_without_patients_stays_unrestricted() -> None:
    assert Actor(name="dr", role="physician").patient_ids is None
