"""Token revocation as verification sees it: a snapshot of revoked tokens and actors, kept fresh.

``hacs_auth`` holds no database code. Verification consults a :class:`RevocationList`;
:class:`CachedRevocationList` keeps an in-memory :class:`RevocationSnapshot` that a subclass loads
from wherever revocations are stored (``hacs_persistence.access.revocations`` reads it) and
reloads once it is older than the staleness (``HACS_REVOCATION_TTL`` seconds, default 30). So a
revocation reaches every process within that time, and the revoking process at once. When the
snapshot cannot be loaded, verification refuses the token (fail closed): a token is never accepted
on the grounds that nobody could say whether it was revoked.
"""

from __future__ import annotations

import abc
import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, cast, runtime_checkable

from hacs_auth.errors import AuthConfigurationError, RevocationUnavailableError, TokenRevokedError

__all__ = [
    "DEFAULT_REVOCATION_TTL",
    "REVOCATION_TTL_ENV_VAR",
    "CachedRevocationList",
    "RevocationList",
    "RevocationSnapshot",
    "get_revocation_list",
    "revocation_ttl_from_env",
    "set_revocation_list",
]

REVOCATION_TTL_ENV_VAR: Final = "HACS_REVOCATION_TTL"
DEFAULT_REVOCATION_TTL: Final = timedelta(seconds=30)


def revocation_ttl_from_env() -> timedelta:
    """The staleness from ``HACS_REVOCATION_TTL`` (seconds, ``0`` = check on every verification).

    Raises:
        AuthConfigurationError: If the variable is set to something other than a number >= 0.
    """
    raw = os.environ.get(REVOCATION_TTL_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_REVOCATION_TTL
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise AuthConfigurationError(
            f"{REVOCATION_TTL_ENV_VAR} must be a number of seconds >= 0 (default "
            f"{DEFAULT_REVOCATION_TTL.total_seconds():.0f}); fix or unset it."
        )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class RevocationSnapshot:
    """What is revoked: token ids, and per actor the time before which its tokens were issued.

    Attributes:
        jtis: Revoked ``jti`` values.
        actors: Actor id -> POSIX time; a token of that actor with ``iat`` before it is revoked.
    """

    jtis: frozenset[str] = frozenset()
    actors: Mapping[str, float] = field(default_factory=dict)

    def refusal(self, claims: Mapping[str, Any]) -> str | None:
        """Why the token with these (verified) claims is revoked, or ``None`` if it is not."""
        jti = claims.get("jti")
        if isinstance(jti, str) and jti in self.jtis:
            return "the token has been revoked"
        cutoff = self.actors.get(str(claims.get("user_id")))
        if cutoff is not None:
            issued = claims.get("iat")
            if not isinstance(issued, (int, float)) or issued < cutoff:
                return "every token of its actor issued before a revocation time has been revoked"
        return None

    def merged(self, other: RevocationSnapshot) -> RevocationSnapshot:
        """Both snapshots' revocations (for an actor, the later cutoff wins)."""
        actors = dict(self.actors)
        for actor_id, cutoff in other.actors.items():
            actors[actor_id] = max(cutoff, actors.get(actor_id, cutoff))
        return RevocationSnapshot(self.jtis | other.jtis, actors)


@runtime_checkable
class RevocationList(Protocol):
    """What :meth:`hacs_auth.AuthManager.verify_token` asks before it accepts a token."""

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise ``TokenRevokedError`` (revoked) or ``RevocationUnavailableError`` (unknown)."""
        ...

    async def check_async(self, claims: Mapping[str, Any]) -> None:
        """The same as :meth:`check`, without blocking the event loop to refresh."""
        ...


class CachedRevocationList(abc.ABC):
    """A :class:`RevocationList` over a snapshot reloaded once it is older than ``ttl``.

    Subclasses implement :meth:`load` (blocking) and may override :meth:`load_async`. Revocations
    made through this object (:meth:`note_jti`, :meth:`note_actor`) count at once, also before
    the next reload.

    Args:
        ttl: How stale the snapshot may be; default ``$HACS_REVOCATION_TTL`` or 30 s.
        clock: Monotonic seconds (a parameter so tests need not sleep).
    """

    def __init__(
        self, ttl: timedelta | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start with no snapshot: the first check loads one."""
        self.ttl = revocation_ttl_from_env() if ttl is None else ttl
        if self.ttl < timedelta(0):
            raise AuthConfigurationError("The revocation ttl must be >= 0 seconds.")
        self._clock = clock
        self._loaded: RevocationSnapshot | None = None  # as last read from the store
        self._loaded_at = 0.0
        self._local = RevocationSnapshot()  # revoked through this object since it was built
        # What checks use: loaded + local, merged when either changes (not at every check).
        self._effective = RevocationSnapshot()
        self._lock = threading.Lock()

    @abc.abstractmethod
    def load(self) -> RevocationSnapshot:
        """Read the current revocations from their store (may block)."""

    async def load_async(self) -> RevocationSnapshot:
        """Read the current revocations without blocking the loop (default: in a thread)."""
        return await asyncio.to_thread(self.load)

    def _stale(self) -> bool:
        age = self._clock() - self._loaded_at
        return self._loaded is None or age >= self.ttl.total_seconds()

    def _install(self, snapshot: RevocationSnapshot, started: float) -> RevocationSnapshot:
        with self._lock:
            self._loaded = snapshot
            self._loaded_at = started
            self._effective = snapshot.merged(self._local)
            return self._effective

    def refresh(self) -> RevocationSnapshot:
        """Reload now; raise ``RevocationUnavailableError`` if the store cannot be read."""
        started = self._clock()
        try:
            snapshot = self.load()
        except Exception as exc:  # any failure to read means "unknown": refuse, never accept
            raise RevocationUnavailableError() from exc
        return self._install(snapshot, started)

    async def refresh_async(self) -> RevocationSnapshot:
        """:meth:`refresh` for async code."""
        started = self._clock()
        try:
            snapshot = await self.load_async()
        except Exception as exc:  # any failure to read means "unknown": refuse, never accept
            raise RevocationUnavailableError() from exc
        return self._install(snapshot, started)

    def current(self) -> RevocationSnapshot | None:
        """The snapshot in use with this object's own revocations, or ``None`` when stale."""
        with self._lock:
            return None if self._stale() else self._effective

    def check(self, claims: Mapping[str, Any]) -> None:
        """Refuse a revoked token, reloading the snapshot first when it is stale."""
        snapshot = self.current() or self.refresh()
        reason = snapshot.refusal(claims)
        if reason is not None:
            raise TokenRevokedError(reason)

    async def check_async(self, claims: Mapping[str, Any]) -> None:
        """:meth:`check` for async code (reloads without blocking the loop)."""
        snapshot = self.current() or await self.refresh_async()
        reason = snapshot.refusal(claims)
        if reason is not None:
            raise TokenRevokedError(reason)

    def note_jti(self, jti: str) -> None:
        """Count ``jti`` as revoked in this process from now on (it was stored elsewhere)."""
        self._note(RevocationSnapshot(frozenset({jti})))

    def note_actor(self, actor_id: str, before: datetime) -> None:
        """Count the actor's tokens issued before ``before`` as revoked in this process."""
        self._note(RevocationSnapshot(actors={actor_id: before.timestamp()}))

    def _note(self, revoked: RevocationSnapshot) -> None:
        with self._lock:
            self._local = self._local.merged(revoked)
            self._effective = self._effective.merged(revoked)


_lock = threading.Lock()
# Until set_revocation_list() decides otherwise, the process consults the revocations of the
# database hacs is configured for: a deployment that forgets to switch checks on must not get
# tokens that outlive a revocation.
_CONFIGURED: Final = object()
_default: RevocationList | object | None = _CONFIGURED


def _configured_list() -> RevocationList | None:
    """The database-backed list of the configured database (``hacs_persistence``), if present."""
    try:
        from hacs_persistence.access.revocations import DatabaseRevocationList
    except ImportError:  # hacs_auth used without the persistence layer: nothing to consult
        return None
    return DatabaseRevocationList()


def get_revocation_list() -> RevocationList | None:
    """The process-wide revocation list that managers without one of their own consult.

    By default the revocations stored in the configured database (``DATABASE_URL``, else
    ``HACS_DATABASE_URL``, else the embedded server), created on first use; whatever
    :func:`set_revocation_list` installed otherwise.
    """
    global _default
    with _lock:
        if _default is _CONFIGURED:
            _default = _configured_list()
        return cast("RevocationList | None", _default)


def set_revocation_list(revocations: RevocationList | None) -> None:
    """Install ``revocations`` for every :class:`~hacs_auth.AuthManager` without its own list.

    ``access.revocations.enable_revocation_checks`` installs the database-backed one
    for a given database. ``None`` turns process-wide revocation checks off: only for code that
    verifies tokens without any hacs database.
    """
    global _default
    if revocations is not None and not isinstance(revocations, RevocationList):
        raise TypeError(f"Expected a RevocationList or None, got {type(revocations).__name__}.")
    with _lock:
        _default = revocations
