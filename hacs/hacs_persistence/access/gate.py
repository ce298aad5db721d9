"""The access gate: the one place that decides who may do what on which rows, and audits it.

Every path of the library that reaches hacs tables (adapters, bulk saves, repositories, FHIR
import and export, the agent tools through the adapter) goes through an :class:`AccessGate`:

- :meth:`AccessGate.actor` resolves the acting :class:`~hacs_auth.Actor` (the argument, else the
  one made current with ``acting_as``); there is no anonymous access.
- :meth:`AccessGate.authorize` checks a permission (``observation:write``) and audits a refusal.
- :meth:`AccessGate.scope` gives the patient ids a patient-scoped actor may reach for a storage
  mapping (``None``: not scoped). Callers compile it into the SQL of the statement as the
  ``p_patients`` parameter, for reads *and* for the stored row of writes, so the check and the
  access are one statement (no read-then-write race).
- :meth:`AccessGate.record` writes an audit row through a connection of its own in autocommit:
  the row survives whatever the caller's transaction does next. Successful single-statement
  calls outside a caller's transaction write their audit row in the same statement instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from hacs_auth import Actor, get_current_actor
from hacs_persistence.access.audit import AuditContext, audit_params
from hacs_persistence.db.unit import open_unit
from hacs_persistence.errors import PermissionDeniedError
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import audit_insert

__all__ = ["AUDIT_ID_LIMIT", "AccessGate", "audited_ids"]

# An audit row lists at most this many returned ids; past it, the count and a digest of the ids.
AUDIT_ID_LIMIT = 1000


def audited_ids(ids: Iterable[str | None]) -> list[str]:
    """The distinct non-null ids of a result, in first-seen order (what an audit row lists)."""
    return list(dict.fromkeys(i for i in ids if i is not None))


class AccessGate:
    """Permission, patient scope and audit for one engine (shared by everything built on it)."""

    def __init__(self, engine: AsyncEngine, defaults: AuditContext | None = None) -> None:
        self.engine = engine
        self.defaults = defaults or AuditContext()

    # -- who -------------------------------------------------------------------------------

    @staticmethod
    def actor(actor: Actor | None) -> Actor:
        """The acting actor: ``actor``, else the current one (``acting_as``); never nobody."""
        resolved = actor if actor is not None else get_current_actor()
        if resolved is None:
            raise PermissionDeniedError(
                "No actor: pass the acting Actor, or run the call inside "
                "`with hacs_auth.acting_as(actor):`."
            )
        if not isinstance(resolved, Actor):
            raise PermissionDeniedError(
                f"actor must be a hacs Actor, not {type(resolved).__name__}."
            )
        return resolved

    def params(self, actor: Actor | None, action: str) -> dict[str, Any]:
        """The ``a_*`` audit parameters of a statement run for ``actor``."""
        return audit_params(actor, action, self.defaults)

    # -- may it ----------------------------------------------------------------------------

    async def authorize(
        self,
        actor: Actor,
        permission_action: str,
        resource_type: str,
        resource_id: str | None,
        audit_action: str,
    ) -> None:
        """Refuse (audited as denied) an inactive actor or one without the permission."""
        if actor.is_active and actor.can(permission_action, resource_type):
            return
        permission = f"{resource_type.lower()}:{permission_action}"
        reason = "is inactive" if not actor.is_active else f"lacks {permission}"
        await self.record(actor, audit_action, resource_type, resource_id, "denied", reason)
        raise PermissionDeniedError(
            f"The actor {reason}; {audit_action} of {resource_type} refused.",
            actor_id=actor.id,
            permission=permission,
        )

    async def require_admin(
        self, actor: Actor, audit_action: str, resource_type: str, resource_id: str | None
    ) -> None:
        """Refuse (audited as denied) an actor without ``admin:*``."""
        if actor.is_active and actor.has_permission("admin:*"):
            return
        await self.record(actor, audit_action, resource_type, resource_id, "denied")
        raise PermissionDeniedError(
            f"The actor needs admin:* for {audit_action}.",
            actor_id=actor.id,
            permission="admin:*",
        )

    # -- on which rows ---------------------------------------------------------------------

    async def scope(
        self,
        actor: Actor,
        mapping: ResourceMapping,
        audit_action: str,
        resource_id: str | None = None,
    ) -> list[str] | None:
        """The patient ids a patient-scoped actor may reach in ``mapping`` (None: not scoped).

        Types outside every patient compartment are refused to scoped actors (audited).
        """
        if actor.patient_ids is None:
            return None
        if mapping.scope_column is None:
            await self.record(
                actor, audit_action, mapping.resource_type, resource_id, "denied", "patient scope"
            )
            raise PermissionDeniedError(
                f"The actor is limited to its patients; {mapping.resource_type} is not in a "
                "patient compartment.",
                actor_id=actor.id,
            )
        return list(actor.patient_ids)

    async def check_new_row(
        self,
        actor: Actor,
        mapping: ResourceMapping,
        resource: Any,
        audit_action: str,
        allowed: Sequence[str] | None,
    ) -> None:
        """A patient-scoped actor may only write resources that stay in its compartment."""
        if allowed is None:
            return
        if mapping.scope_value(resource) not in allowed:
            await self.record(
                actor, audit_action, mapping.resource_type, resource.id, "denied", "patient scope"
            )
            raise PermissionDeniedError(
                f"The actor may not write this {mapping.resource_type}: it is outside the "
                "actor's patients.",
                actor_id=actor.id,
            )

    # -- what happened ---------------------------------------------------------------------

    async def record(
        self,
        actor: Actor | None,
        action: str,
        resource_type: str | None,
        resource_id: str | None,
        outcome: str,
        detail: str | None = None,
        count: int | None = None,
        resource_ids: Sequence[str] | None = None,
        patient_ids: Iterable[str | None] | None = None,
    ) -> None:
        """Write one audit row in a transaction of its own (it outlives the caller's).

        Raises (translated) if the row cannot be written: a caller must not hand out data
        whose audit row is missing.
        """
        params = self.audit_params(
            actor, action, resource_type, resource_id, outcome, detail, count, resource_ids,
            patient_ids,
        )  # fmt: skip
        async with open_unit(self.engine, transactional=False) as unit:
            await unit.fetchrow(audit_insert(), params)

    def audit_params(
        self,
        actor: Actor | None,
        action: str,
        resource_type: str | None,
        resource_id: str | None,
        outcome: str,
        detail: str | None = None,
        count: int | None = None,
        resource_ids: Sequence[str] | None = None,
        patient_ids: Iterable[str | None] | None = None,
    ) -> dict[str, Any]:
        """The parameters of ``statements.audit_insert()`` for one audit row, for a caller
        that writes it in the transaction of its own change (``record`` writes it alone)."""
        ids = audited_ids(resource_ids or ())
        if len(ids) > AUDIT_ID_LIMIT:
            # Too many to list: the count and a digest that proves which ids they were.
            digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
            summary = f"ids={len(ids)};sha256={digest}"
            detail = f"{detail};{summary}" if detail else summary
            ids = []
        params = self.params(actor, action)
        params.update(
            p_rt=resource_type,
            p_rid=resource_id,
            p_outcome=outcome,
            p_detail=detail,
            p_count=count,
            p_rids=ids or None,
            p_pids=audited_ids(patient_ids or ()) or None,
        )
        return params
