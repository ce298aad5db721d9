"""The :class:`Actor`: who is acting, in which role, with which permissions.

Every HACS operation is performed on behalf of an actor (a clinician, a patient, an AI
agent, a background service...). Permissions are validated against the grammar in
:mod:`hacs_auth.permissions` when the actor is built and compiled once into a
:class:`~hacs_auth.permissions.PermissionSet`, so permission checks stay cheap.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from hacs_auth.errors import InactiveActorError, InsufficientPermissionError
from hacs_auth.permissions import (
    PermissionSet,
    compile_permissions,
    normalize_permissions,
    parse_permission,
)

__all__ = ["Actor", "ActorRole"]


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


def _new_actor_id() -> str:
    """Return a fresh random actor id such as ``actor-1a2b3c4d``."""
    return f"actor-{secrets.token_hex(4)}"


def _utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Actor(BaseModel):
    """An authenticated principal and its permissions.

    Permissions are normalised on construction (invalid ones raise a pydantic
    ``ValidationError``) and compiled once into a private :class:`PermissionSet`.
    Assigning ``actor.permissions = [...]`` re-validates and recompiles; mutating the
    list in place or ``model_copy(update={"permissions": ...})`` does not, so assign a
    new list (or use ``model_validate``) to change permissions.

    Example:
        >>> actor = Actor(name="db-writer", role="system", permissions=["patient:write"])
        >>> actor.can("read", "Patient"), actor.can("delete", "Patient")
        (True, False)
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    id: str = Field(default_factory=_new_actor_id, min_length=1)
    name: str
    role: ActorRole
    permissions: list[str] = Field(default_factory=list)
    is_active: bool = True
    organization: str | None = None
    patient_ids: list[str] | None = Field(
        default=None,
        description="Reserved for patient-scoped access; None means unrestricted.",
    )
    session_id: str | None = None
    created_at: datetime = Field(default_factory=_utc_now)

    _permission_set: PermissionSet = PrivateAttr(default_factory=PermissionSet)

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
    def _check_permissions(cls, value: list[str]) -> list[str]:
        """Validate and normalise permissions through the grammar."""
        return normalize_permissions(value)

    @field_validator("created_at", mode="after")
    @classmethod
    def _check_created_at(cls, value: datetime) -> datetime:
        """Store an aware UTC datetime (naive values are taken to be UTC)."""
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _compile(self) -> Actor:
        """Compile the permission set once (also after ``permissions`` is reassigned)."""
        self._permission_set = compile_permissions(self.permissions)
        return self

    @property
    def permission_set(self) -> PermissionSet:
        """The compiled permission set used by :meth:`can` and :meth:`has_permission`."""
        return self._permission_set

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
        return self.is_active and self._permission_set.implies(perm)

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
        allowed = self._permission_set.allows(resource_type, action)
        return self.is_active and allowed

    def require(self, action: str, resource_type: str) -> None:
        """Raise unless the actor may perform ``action`` on ``resource_type``.

        Raises:
            InactiveActorError: If the actor is deactivated.
            InsufficientPermissionError: If the permission is missing.
        """
        if not self.is_active:
            raise InactiveActorError(self.id)
        if not self._permission_set.allows(resource_type, action):
            perm = parse_permission(f"{resource_type}:{action}")
            raise InsufficientPermissionError(str(perm), self.id)
