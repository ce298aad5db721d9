"""Audit parameters: who acts, for which request and purpose. Never resource content or PHI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from hacs_auth import Actor

__all__ = ["AuditContext", "audit_context", "audit_params", "current_audit_context"]


@dataclass(frozen=True)
class AuditContext:
    """A request id and purpose of use that land in every audit row written meanwhile."""

    request_id: str | None = None
    purpose_of_use: str | None = None


_EMPTY = AuditContext()
_context: ContextVar[AuditContext] = ContextVar("hacs_audit_context", default=_EMPTY)


def current_audit_context() -> AuditContext:
    """The audit context of the running task."""
    return _context.get()


@contextmanager
def audit_context(
    request_id: str | None = None, purpose_of_use: str | None = None
) -> Iterator[AuditContext]:
    """Tag the audit rows written inside the block with a request id and purpose of use."""
    context = AuditContext(request_id, purpose_of_use)
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def audit_params(actor: Actor | None, action: str, defaults: AuditContext) -> dict[str, Any]:
    """The ``a_*`` parameters of an audited statement."""
    context = _context.get()
    return {
        "a_actor_id": actor.id if actor is not None else None,
        "a_actor_name": actor.name if actor is not None else None,
        "a_actor_role": str(actor.role.value) if actor is not None else None,
        "a_action": action,
        "a_request_id": context.request_id or defaults.request_id,
        "a_purpose": context.purpose_of_use or defaults.purpose_of_use,
    }
