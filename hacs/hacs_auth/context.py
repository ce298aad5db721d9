"""The current actor, held in a :class:`~contextvars.ContextVar` and set only for a scope.

Lower layers (persistence, tools) ask :func:`get_current_actor` who is acting instead of
threading an actor argument through every call. The actor is made current only for a
bounded scope and always restored when the scope ends:

* ``with acting_as(actor): ...`` (also ``with configure_hacs(current_actor=actor): ...``);
* ``@acting_as(actor)`` on a ``def`` or ``async def`` function, for the duration of each call;
* ``@require_permission(...)``, which acts as the verified token's actor.

There is deliberately no "set it and leave it" call: a value left behind would be seen by
whatever runs next on the same thread (a reused ``ThreadPoolExecutor`` worker, say), which
would then act as somebody else. Being a context variable, the value is also isolated per
thread and per asyncio task: a new thread starts with no actor, and a task sees the actor
that was current when it was created, while changes inside it do not leak out.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from enum import Enum
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from hacs_auth.actor import Actor

__all__ = ["acting_as", "configure_hacs", "get_current_actor"]

F = TypeVar("F", bound=Callable[..., Any])

_current_actor: Final[ContextVar[Actor | None]] = ContextVar("hacs_current_actor", default=None)


class _Unset(Enum):
    """Sentinel type for "argument not given" (distinct from an explicit ``None``)."""

    UNSET = "UNSET"


_UNSET: Final = _Unset.UNSET


def get_current_actor() -> Actor | None:
    """Return the actor acting in the current context, or ``None`` if nobody is."""
    return _current_actor.get()


def _check_actor(actor: object) -> Actor | None:
    """Return ``actor`` if it is an :class:`Actor` or ``None``; raise ``TypeError`` otherwise."""
    if actor is not None and not isinstance(actor, Actor):
        raise TypeError(f"Expected an Actor or None, got {type(actor).__name__}.")
    return actor


def _set_current_actor(actor: Actor | None) -> Token[Actor | None]:
    """Make ``actor`` current and return the token that undoes it.

    Private on purpose: every call MUST be paired with :func:`_reset_current_actor` on the
    returned token, in a ``finally`` in the same context, or the actor leaks to whatever
    runs next in this context. Outside ``hacs_auth`` use :class:`acting_as`.

    Raises:
        TypeError: If ``actor`` is neither an :class:`Actor` nor ``None``.
    """
    return _current_actor.set(_check_actor(actor))


def _reset_current_actor(token: Token[Actor | None]) -> None:
    """Restore the actor that was current before the matching :func:`_set_current_actor`."""
    _current_actor.reset(token)


class acting_as:  # lower case: used like a function, ``with acting_as(actor):``
    """Make ``actor`` current for a ``with`` block or for each call of a decorated function.

    The previous actor is restored when the block or call ends, also on an exception, so
    nothing is left behind for the next code on the same thread or task. ``None`` means
    "nobody" inside the scope. Blocks nest, and one object may be entered again after it
    exited; give each concurrently running thread or task its own ``with acting_as(...)``.

    As a decorator it works on ``def`` and ``async def`` functions (for a coroutine the
    actor is current while it runs, not just while it is created); generator functions are
    refused, because a generator would expose the actor to its consumer between items.

    Creating the object does nothing by itself: ``acting_as(actor)`` on its own line sets
    no actor (a ``RuntimeWarning`` says so when the unused object is discarded).

    Raises:
        TypeError: If ``actor`` is neither an :class:`Actor` nor ``None``, or (as a
            decorator) if the function is a generator function.

    Example:
        >>> with acting_as(actor):
        ...     ...  # persistence and tool calls here run as ``actor``
        >>> @acting_as(service_actor)
        ... async def nightly_job() -> None: ...
    """

    __slots__ = ("__weakref__", "_actor", "_origin", "_tokens", "_used")

    def __init__(self, actor: Actor | None) -> None:
        self._actor = _check_actor(actor)
        self._tokens: list[Token[Actor | None]] = []
        self._origin = "acting_as(actor)"
        self._used = False

    @property
    def actor(self) -> Actor | None:
        """The actor this scope makes current."""
        return self._actor

    def __enter__(self) -> Actor | None:
        self._used = True
        self._tokens.append(_set_current_actor(self._actor))
        return self._actor

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _reset_current_actor(self._tokens.pop())

    def __call__(self, func: F) -> F:
        """Decorate ``func`` so that each call runs with this actor current."""
        self._used = True
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"acting_as cannot decorate the generator function {func.__qualname__}: use "
                "`with acting_as(actor):` inside it around the work instead."
            )
        actor = self._actor

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _set_current_actor(actor)
                try:
                    return await func(*args, **kwargs)
                finally:
                    _reset_current_actor(token)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _set_current_actor(actor)
            try:
                return func(*args, **kwargs)
            finally:
                _reset_current_actor(token)

        return cast(F, wrapper)

    def __repr__(self) -> str:
        who = None if self._actor is None else self._actor.id
        return f"acting_as({who!r})"

    def __del__(self) -> None:
        if getattr(self, "_used", True):
            return
        warnings.warn(
            f"{self._origin} was never entered, so no actor was set. Use it as "
            "`with acting_as(actor): ...` or as a decorator.",
            RuntimeWarning,
            stacklevel=2,
        )


def configure_hacs(
    *, current_actor: Actor | _Unset | None = _UNSET
) -> AbstractContextManager[Actor | None]:
    """Return a context manager that configures HACS for the ``with`` block it guards.

    ``with configure_hacs(current_actor=actor): ...`` is the same as
    ``with acting_as(actor): ...``: the actor is current inside the block only and the
    previous one is restored after it.

    It no longer configures anything when called on its own: ``configure_hacs(current_actor=
    actor)`` without ``with`` sets no actor (so nothing can leak to later work on the same
    thread), code that needs an actor then fails with a "no current actor" error, and a
    ``RuntimeWarning`` is issued when the unused object is discarded.

    Args:
        current_actor: The actor the block runs as; ``None`` runs it as nobody; omitted
            leaves the current actor unchanged.

    Raises:
        TypeError: If ``current_actor`` is neither an :class:`Actor` nor ``None``.
    """
    if isinstance(current_actor, _Unset):
        return nullcontext(get_current_actor())
    scope = acting_as(current_actor)
    scope._origin = "configure_hacs(current_actor=...)"
    return scope
