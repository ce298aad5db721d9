"""Who a tool acts as: always the current actor, never one named by the caller.

An agent passes ``actor_id`` as plain text, which proves nothing. The identity that counts is
the current actor (set by ``@require_permission`` from a verified token, or by
``with acting_as(actor):`` / ``with configure_hacs(current_actor=...):``); ``actor_id`` may only
confirm it.
"""

from __future__ import annotations

from hacs_auth import Actor, get_current_actor
from hacs_tools.results import ErrorCode, ToolError

__all__ = ["current_actor_id", "resolve_actor"]


def resolve_actor(actor_id: str | None = None) -> Actor:
    """The current actor, checked against ``actor_id`` when one is given.

    Raises:
        ToolError: ``no_actor`` if nobody is acting (the tool refuses rather than guess);
            ``actor_mismatch`` if ``actor_id`` names someone other than the current actor.
    """
    actor = get_current_actor()
    if actor is None:
        raise ToolError(
            ErrorCode.NO_ACTOR,
            "No current actor: call the tool from a function decorated with "
            "@require_permission, or run it inside `with hacs_auth.acting_as(actor):`.",
        )
    if actor_id is not None and actor_id != actor.id:
        # Naming another actor must never switch identity: that would bypass the token.
        raise ToolError(
            ErrorCode.ACTOR_MISMATCH,
            f"actor_id {actor_id!r} is not the current actor {actor.id!r}; a tool acts only "
            "as the current actor.",
        )
    return actor


def current_actor_id() -> str | None:
    """The id of the current actor, if any (for reporting on a result)."""
    actor = get_current_actor()
    return actor.id if actor is not None else None
