"""The permission grammar: parsing, normalisation, implication and fast lookup.

A permission is ``resource:action``. ``resource`` is a resource type normalised to
lower case with ``_`` and ``-`` removed (``MedicationRequest``, ``medication_request``
and ``medicationrequest`` are the same), ``*`` (every type) or ``admin`` (also every
type). ``action`` is ``read``, ``write``, ``delete`` or ``*`` (every action).
``write`` implies ``read`` of the same resource type.

:class:`PermissionSet` answers "may I do *action* on *type*?" with a dictionary lookup,
because the check runs on every database call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from hacs_auth.errors import PermissionFormatError

__all__ = [
    "ACTIONS",
    "WILDCARD",
    "Permission",
    "PermissionSet",
    "compile_permissions",
    "normalize_action",
    "normalize_permissions",
    "normalize_resource",
    "parse_permission",
]

WILDCARD: Final = "*"
ADMIN: Final = "admin"
ACTIONS: Final = frozenset({"read", "write", "delete", WILDCARD})
_CONCRETE_ACTIONS: Final = frozenset({"read", "write", "delete"})

# Every action a granted action covers (the implication closure).
_ACTION_CLOSURE: Final[dict[str, frozenset[str]]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"write", "read"}),
    "delete": frozenset({"delete"}),
    WILDCARD: ACTIONS,
}
_RESOURCE_RE: Final = re.compile(r"[a-z][a-z0-9]*")
_RESOURCE_STRIP: Final = str.maketrans("", "", "_-")
_MAX_CACHE: Final = 4096


def _clean_resource(resource: str) -> str | None:
    """Return the canonical resource part, or ``None`` when it has an invalid shape."""
    value = resource.strip().lower().translate(_RESOURCE_STRIP)
    if value == WILDCARD or _RESOURCE_RE.fullmatch(value):
        return value
    return None


def normalize_resource(resource_type: str) -> str:
    """Canonicalise a resource type name so every spelling maps to one key.

    Args:
        resource_type: A class-style or snake-case name, e.g. ``"MedicationRequest"``.

    Returns:
        The lower-case name without ``_``/``-``, e.g. ``"medicationrequest"``
        (``"*"`` is returned unchanged).

    Raises:
        PermissionFormatError: If the name is not an identifier or ``"*"``.
    """
    value = _clean_resource(resource_type) if isinstance(resource_type, str) else None
    if value is None:
        raise PermissionFormatError(
            resource_type, "resource type must be an identifier such as 'Patient' or '*'"
        )
    return value


def normalize_action(action: str) -> str:
    """Canonicalise an action (``" READ "`` -> ``"read"``).

    Raises:
        PermissionFormatError: If the action is not read, write, delete or ``*``.
    """
    value = action.strip().lower() if isinstance(action, str) else None
    if value not in ACTIONS:
        raise PermissionFormatError(action, "action must be one of read, write, delete, '*'")
    return value


def _is_global(resource: str) -> bool:
    """Whether a resource part grants on every resource type (``*`` or ``admin``)."""
    return resource in (WILDCARD, ADMIN)


@dataclass(frozen=True, slots=True)
class Permission:
    """An immutable, normalised ``resource:action`` permission.

    Constructing one validates and normalises both parts, so an instance is always
    well-formed. Use :func:`parse_permission` to build one from a string.
    """

    resource: str
    action: str

    def __post_init__(self) -> None:
        """Validate and normalise both parts."""
        text = f"{self.resource}:{self.action}"
        if not isinstance(self.resource, str) or not isinstance(self.action, str):
            raise PermissionFormatError(text, "both parts must be strings")
        resource = self.resource.strip()
        action = self.action.strip()
        if not resource or not action:
            raise PermissionFormatError(text, "resource and action must both be non-empty")
        clean = _clean_resource(resource)
        if clean is None:
            raise PermissionFormatError(
                text,
                f"resource {resource!r} must be an identifier ([a-z][a-z0-9]* after "
                "lower-casing and removing '_'/'-'), '*' or 'admin'",
            )
        act = action.lower()
        if act not in ACTIONS:
            raise PermissionFormatError(
                text, f"unknown action {action!r}; use read, write, delete or '*'"
            )
        object.__setattr__(self, "resource", clean)
        object.__setattr__(self, "action", act)

    @property
    def is_global(self) -> bool:
        """Whether this permission applies to every resource type."""
        return _is_global(self.resource)

    def implies(self, other: Permission | str) -> bool:
        """Whether holding this permission also grants ``other``.

        ``*``/``admin`` cover every resource type, ``*`` covers every action, and
        ``write`` covers ``read`` on the same resource type.
        """
        target = other if isinstance(other, Permission) else parse_permission(other)
        if not self.is_global and target.resource != self.resource:
            return False
        return target.action in _ACTION_CLOSURE[self.action]

    def __str__(self) -> str:
        """Return the canonical ``resource:action`` string."""
        return f"{self.resource}:{self.action}"


@lru_cache(maxsize=_MAX_CACHE)
def _parse_cached(text: str) -> Permission:
    """Parse a permission string (memoised: the same strings recur constantly)."""
    parts = text.split(":")
    if len(parts) != 2:
        reason = "missing ':' separator" if len(parts) == 1 else "too many ':' separators"
        raise PermissionFormatError(text, reason)
    resource, action = parts
    if not resource.strip() or not action.strip():
        raise PermissionFormatError(text, "resource and action must both be non-empty")
    try:
        return Permission(resource, action)
    except PermissionFormatError as exc:
        raise PermissionFormatError(text, exc.reason) from None


def parse_permission(permission: str | Permission) -> Permission:
    """Parse and normalise a permission string such as ``" Patient : READ "``.

    Args:
        permission: A ``resource:action`` string (a :class:`Permission` is returned as is).

    Returns:
        The normalised :class:`Permission`.

    Raises:
        PermissionFormatError: If the string does not follow the grammar.
    """
    if isinstance(permission, Permission):
        return permission
    if not isinstance(permission, str):
        raise PermissionFormatError(permission, "a permission must be a string")
    return _parse_cached(permission)


def normalize_permissions(permissions: Iterable[str | Permission]) -> list[str]:
    """Validate permissions and return their canonical strings, de-duplicated, in order.

    Raises:
        PermissionFormatError: On the first string that does not follow the grammar.
    """
    if isinstance(permissions, str):
        raise PermissionFormatError(permissions, "expected a list of permissions, not a string")
    seen: dict[str, None] = {}
    for item in permissions:
        seen[str(parse_permission(item))] = None
    return list(seen)


class PermissionSet:
    """A compiled, immutable set of permissions with O(1) ``allows`` checks.

    Build it once (e.g. per actor or per token) and query it many times. Grants are
    expanded up-front through the implication rules and query results are memoised.
    """

    __slots__ = ("_by_resource", "_cache", "_global", "_permissions")

    def __init__(self, permissions: Iterable[str | Permission] = ()) -> None:
        """Compile ``permissions`` (strings are parsed and validated).

        Raises:
            PermissionFormatError: If any permission string is malformed.
        """
        if isinstance(permissions, str):
            raise PermissionFormatError(permissions, "expected a list of permissions, not a string")
        parsed = tuple(dict.fromkeys(parse_permission(p) for p in permissions))
        global_actions: set[str] = set()
        by_resource: dict[str, set[str]] = {}
        for perm in parsed:
            closure = _ACTION_CLOSURE[perm.action]
            if perm.is_global:
                global_actions |= closure
            else:
                by_resource.setdefault(perm.resource, set()).update(closure)
        self._permissions = parsed
        self._global = frozenset(global_actions)
        self._by_resource = {
            res: frozenset(acts | global_actions) for res, acts in by_resource.items()
        }
        self._cache: dict[tuple[str, str], bool] = {}

    @property
    def permissions(self) -> tuple[Permission, ...]:
        """The parsed permissions, de-duplicated, in their original order."""
        return self._permissions

    def allows(self, resource_type: str, action: str) -> bool:
        """Whether ``action`` is allowed on ``resource_type``.

        Args:
            resource_type: Any spelling of the type, e.g. ``"MedicationRequest"``;
                ``"*"`` asks about every type at once.
            action: ``read``, ``write``, ``delete`` or ``*`` (all of them).

        Raises:
            PermissionFormatError: If the resource type or action is malformed.
        """
        key = (resource_type, action)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        resource = normalize_resource(resource_type)
        act = normalize_action(action)
        if _is_global(resource):
            granted = self._global
        else:
            granted = self._by_resource.get(resource, self._global)
        result = act in granted
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[key] = result
        return result

    def implies(self, permission: str | Permission) -> bool:
        """Whether the set grants ``permission`` (a string or :class:`Permission`)."""
        perm = parse_permission(permission)
        return self.allows(perm.resource, perm.action)

    def __contains__(self, permission: object) -> bool:
        """Support ``"patient:read" in permission_set`` (malformed strings are absent)."""
        if not isinstance(permission, str | Permission):
            return False
        try:
            return self.implies(permission)
        except PermissionFormatError:
            return False

    def __iter__(self) -> Iterator[Permission]:
        """Iterate over the parsed permissions."""
        return iter(self._permissions)

    def __len__(self) -> int:
        """Return the number of distinct permissions."""
        return len(self._permissions)

    def __eq__(self, other: object) -> bool:
        """Compare by the granted permissions (order-insensitive)."""
        if not isinstance(other, PermissionSet):
            return NotImplemented
        return frozenset(self._permissions) == frozenset(other._permissions)

    def __hash__(self) -> int:
        """Hash by the granted permissions, consistent with ``__eq__``."""
        return hash(frozenset(self._permissions))

    def __repr__(self) -> str:
        """Show the canonical permission strings."""
        return f"PermissionSet({[str(p) for p in self._permissions]!r})"


@lru_cache(maxsize=1024)
def _compile_cached(permissions: tuple[str, ...]) -> PermissionSet:
    """Compile a tuple of permission strings (memoised across actors and tokens)."""
    return PermissionSet(permissions)


def compile_permissions(permissions: Iterable[str | Permission]) -> PermissionSet:
    """Return a (shared, cached) :class:`PermissionSet` for ``permissions``.

    Actors and tokens with the same permission list share one compiled set, so building
    an actor per request stays cheap.

    Raises:
        PermissionFormatError: If any permission string is malformed.
    """
    if isinstance(permissions, str):
        raise PermissionFormatError(permissions, "expected a list of permissions, not a string")
    items: list[str] = []
    for item in permissions:
        if isinstance(item, Permission):
            items.append(str(item))
        elif isinstance(item, str):
            items.append(item)
        else:
            raise PermissionFormatError(item, "a permission must be a string")
    return _compile_cached(tuple(items))
