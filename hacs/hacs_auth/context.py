"""The current actor, held in a :class:`~contextvars.ContextVar`.

Lower layers (persistence, tools) ask :func:`get_current_actor` who is acting instead of
threading an actor argument through every call. Being a context variable, the value is
isolated per thread and per asyncio task: a task sees the actor that was current when it
was created, and changes inside it do not leak out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from enum import Enum
from typing import Final

from hacs_auth.actor import Actor

__all__ = [
    "acting_as",
    "configure_hacs",
    "get_current_actor",
    "reset_current_actor",
    "set_current_actor",
]

_current_actor: Final[ContextVar[Actor | None]] = ContextVar("hacs_current_actor", default=None)


class _Unset(Enum):
    """Sentinel type for "argument not given" (distinct from an explicit ``None``)."""

    UNSET = "UNSET"


_UNSET: Final = _Unset.UNSET


def get_current_actor() -> Actor | None:
    """Return the actor acting in the current context, or ``None`` if nobody is."""
    return _current_actor.get()


def set_current_actor(actor: Actor | None) -> Token[Actor | None]:
    """Make ``actor`` current; pass the returned token to :func:`reset_current_actor`.

    Raises:
        TypeError: If ``actor`` is neither an :class:`Actor` nor ``None``.
    """
    if actor is not None and not isinstance(actor, Actor):
        raise TypeError(f"Expected an Actor or None, got {type(actor).__name__}.")
    return _current_actor.set(actor)


def reset_current_actor(token: Token[Actor | None]) -> None:
    """Restore the actor that was current before the matching :func:`set_current_actor`."""
    _current_actor.reset(token)


@contextmanager
def acting_as(actor: Actor | None) -> Iterator[Actor | None]:
    """Make ``actor`` current inside a ``with`` block, restoring the previous one after.

    Example:
        >>> with acting_as(actor):
        ...     ...  # persistence calls here run as ``actor``
    """
    token = set_current_actor(actor)
    try:
        yield actor
    finally:
        reset_current_actor(token)


def configure_hacs(*, current_actor: Actor | _Unset | None = _UNSET) -> None:
    """Configure HACS for code that is not running inside a decorated function.

    Args:
        current_actor: The actor subsequent calls in this context run as; ``None``
            clears it; omitted leaves it unchanged. Set it before starting threads or
            tasks that should inherit it (new threads start with no actor).
    """
    if not isinstance(current_actor, _Unset):
        set_current_actor(current_actor)
