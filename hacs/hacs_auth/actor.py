"""The :class:`Actor`: who is acting, in which role, with which permissions.

Every HACS operation is performed on behalf of an actor (a clinician, a patient, an AI
agent, a background service...). Permissions are validated against the grammar in
:mod:`hacs_auth.permissions` when the actor is built and compiled once into a
:class:`~hacs_auth.permissions.PermissionSet`, so permission checks stay cheap.

An actor is immutable: the permissions it is checked against are always the ones it shows.
To grant or revoke, build a new actor (``actor.model_copy(update={"permissions": [...]})``
re-validates and recompiles).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from hacs_auth.errors import InactiveActorError, InsufficientPermissionError
from hacs_auth.permissions import (
    PermissionSet,
    compile_permissions,
    normalize_permissions,
    parse_permission,
)

__all__ = ["PATIENT_FACING_ROLES", "Actor", "ActorRole"]


class ActorRole(StrEnum):
    """The role an actor plays; accepts any letter case (``"SYSTEM"`` -> ``system``).

    Roles describe the actor; they do not grant anything by themselves. Access is
    governed only by the actor's explicit permissions.
    """

    PHYSICIAN = "physician"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    PATIENT = "patient"
    CAREGIVER = "caregiver"
    RESEARCHER = "researcher"
    ADMINISTRATOR = "administrator"
    ADMIN = "admin"
    SYSTEM = "system"
    AGENT = "agent"
    SERVICE = "service"
    GUEST = "guest"

    @classmethod
    def _missing_(cls, value: object) -> ActorRole | None:
        """Match role names case- and whitespace-insensitively."""
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if member.value == key:
                    return member
        return None


# Roles that act for particular patients (themselves, or those they care for): an actor or token
# of these roles must name its patients, because no list would otherwise mean "every patient".
PATIENT_FACING_ROLES: frozenset[ActorRole] = frozenset({ActorRole.PATIENT, ActorRole.CAREGIVER})


def _new_actor_id() -> str:
    """Return a fresh random actor id such as ``actor-1a2b3c4d``."""
    return f"actor-{secrets.token_hex(4)}"


def _utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Actor(BaseModel):
    """An authenticated principal and its permissions; immutable once built.

    Permissions are normalised on construction (invalid ones raise a pydantic
    ``ValidationError``) and compiled once into a :class:`PermissionSet`. The model is
    frozen and its list fields are tuples (lists are accepted as input), so an actor cannot
    be changed in place: ``actor.permissions = [...]`` raises ``ValidationError`` and there
    is no list to ``clear()``. To change an actor, build a new one:
    :meth:`model_copy` with ``update=`` re-validates the result (a bad value raises) and
    recompiles its permissions. Checks always follow the ``permissions`` field the actor
    actually holds.

    Extra keyword arguments are kept (``model_extra``) as descriptive data; they are never
    consulted for an access decision.

    Example:
        >>> actor = Actor(name="db-writer", role="system", permissions=["patient:write"])
        >>> actor.can("read", "Patient"), actor.can("delete", "Patient")
        (True, False)
        >>> reader = actor.model_copy(update={"permissions": ["patient:read"]})
        >>> reader.can("write", "Patient")
        False
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(default_factory=_new_actor_id, min_length=1)
    name: str
    role: ActorRole
    permissions: tuple[str, ...] = ()
    is_active: bool = True
    organization: str | None = None
    patient_ids: tuple[str, ...] | None = Field(
        default=None,
        description=(
            "The patients this actor may reach; None means unrestricted, which the "
            "patient-facing roles (patient, caregiver) may not have."
        ),
    )
    session_id: str | None = None
    created_at: datetime = Field(default_factory=_utc_now)

    # The compiled set and the exact ``permissions`` tuple it was compiled from: a check
    # reuses it only while that tuple is still the actor's (see ``permission_set``).
    _compiled: tuple[tuple[str, ...], PermissionSet] | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        """Reject blank names; an actor must be identifiable in audit logs."""
        value = value.strip()
        if not value:
            raise ValueError("Actor name must be a non-empty string; pass name='<who>'.")
        return value

    @field_validator("permissions", mode="after")
    @classmethod
    def _check_permissions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Validate and normalise permissions through the grammar."""
        return tuple(normalize_permissions(value))

    @field_validator("created_at", mode="after")
    @classmethod
    def _check_created_at(cls, value: datetime) -> datetime:
        """Store an aware UTC datetime (naive values are taken to be UTC)."""
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _compile(self) -> Actor:
        """Refuse an unscoped patient-facing actor; compile the permission set once."""
        if self.patient_ids is None and self.role in PATIENT_FACING_ROLES:
            raise ValueError(
                f"An actor with the patient-facing role {self.role.value!r} must be limited to "
                "its patients: pass patient_ids=[...] (an empty list reaches no patient)."
            )
        self._compiled = (self.permissions, compile_permissions(self.permissions))
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a copy; with ``update``, a fully re-validated one.

        Unlike pydantic's default (which writes ``update`` values unchecked), the updated
        values go through validation, so a copy with new permissions is normalised and
        recompiled and an invalid value raises ``ValidationError``. Unknown keys become
        extra data, as on construction.
        """
        if not update:
            return super().model_copy(deep=deep)
        data: dict[str, Any] = {**self.__dict__, **(self.__pydantic_extra__ or {})}
        if deep:
            data = copy.deepcopy(data)
        data.update(update)
        clone = self.model_validate(data)
        # Keep model_dump(exclude_unset=True) meaning what it meant on the original.
        clone.__pydantic_fields_set__.intersection_update(
            self.__pydantic_fields_set__ | set(update)
        )
        return clone

    @property
    def permission_set(self) -> PermissionSet:
        """The compiled permission set used by :meth:`can` and :meth:`has_permission`.

        Always the compilation of the actor's current ``permissions``: the cached set is
        used only while it was compiled from that very tuple, otherwise (an actor built
        without validation, e.g. by ``model_construct``) it is compiled afresh.
        """
        permissions = self.permissions
        compiled = self._compiled
        if compiled is not None and compiled[0] is permissions:
            return compiled[1]
        fresh = compile_permissions(permissions)
        if isinstance(permissions, tuple):
            self._compiled = (permissions, fresh)
        return fresh

    def has_permission(self, permission: str) -> bool:
        """Whether the actor holds ``permission``, directly or via a wildcard/implication.

        Args:
            permission: A ``resource:action`` string such as ``"patient:read"``.

        Returns:
            False for an inactive actor, otherwise the permission decision.

        Raises:
            PermissionFormatError: If ``permission`` is malformed.
        """
        perm = parse_permission(permission)
        return self.is_active and self.permission_set.implies(perm)

    def can(self, action: str, resource_type: str) -> bool:
        """Whether the actor may perform ``action`` on ``resource_type``.

        Args:
            action: ``read``, ``write``, ``delete`` or ``*``.
            resource_type: The resource class name, e.g. ``"Patient"`` or
                ``"MedicationRequest"`` (any spelling the grammar normalises).

        Returns:
            False for an inactive actor, otherwise the permission decision.

        Raises:
            PermissionFormatError: If ``action`` or ``resource_type`` is malformed.
        """
        allowed = self.permission_set.allows(resource_type, action)
        return self.is_active and allowed

    def require(self, action: str, resource_type: str) -> None:
        """Raise unless the actor may perform ``action`` on ``resource_type``.

        Raises:
            InactiveActorError: If the actor is deactivated.
            InsufficientPermissionError: If the permission is missing.
        """
        if not self.is_active:
            raise InactiveActorError(self.id)
        if not self.permission_set.allows(resource_type, action):
            perm = parse_permission(f"{resource_type}:{action}")
            raise InsufficientPermissionError(str(perm), self.id)
