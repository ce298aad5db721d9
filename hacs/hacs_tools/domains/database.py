"""Database tools for agents: save, read, update, delete, search (by filter or similarity) and
list the history of resources, as the current actor.

Each tool returns a :class:`~hacs_tools.results.HACSResult` and never raises (except
``KeyboardInterrupt``, ``SystemExit`` and task cancellation, which must reach the caller).
Resources go in as dicts or models and come back as JSON-mode dicts. Every ``a*`` coroutine has a
synchronous twin that runs it through :func:`hacs_tools.runner.run_sync`, so the twins also work
inside a running event loop.

Arguments are checked before a connection is opened, so a refused or malformed call never touches
the database. Each call then opens an adapter and closes it when done: asyncpg connections belong
to one event loop, and the sync twins run each call on a loop of its own.

No tool takes a connection parameter (URL, host, port, user, password): the database is the one
the application configured (:func:`hacs_tools.configure_tools`, else the environment), so the text
an agent puts in a tool call cannot send it to another server, database or role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hacs_auth import Actor
from hacs_models import (
    ID_RULE,
    BaseResource,
    UnknownResourceTypeError,
    get_model_class,
    is_resource_id,
)
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_tools.actors import current_actor_id, resolve_actor
from hacs_tools.configuration import tool_configuration
from hacs_tools.results import (
    ErrorCode,
    HACSResult,
    ToolError,
    failure_from_exception,
    success,
)
from hacs_tools.runner import run_sync

__all__ = [
    "adelete_resource",
    "aread_resource",
    "aresource_history",
    "asave_resource",
    "asearch_resources",
    "asearch_similar_resources",
    "aupdate_resource",
    "delete_resource",
    "read_resource",
    "resource_history",
    "save_resource",
    "search_resources",
    "search_similar_resources",
    "update_resource",
]

ResourceInput = Mapping[str, Any] | BaseResource
"""A resource as a tool accepts it: a dict with a ``resource_type`` or a hacs model."""


# -- shared machinery ----------------------------------------------------------------------


async def _guarded(
    operation: str, actor_id: str | None, call: Callable[[Actor], Awaitable[HACSResult]]
) -> HACSResult:
    """Run ``call`` as the resolved current actor, turning any failure into a result."""
    try:
        return await call(resolve_actor(actor_id))
    except Exception as exc:  # BaseException (cancellation, interrupts) deliberately passes
        return failure_from_exception(exc, operation=operation, actor_id=current_actor_id())


async def _open_adapter() -> PostgreSQLAdapter:
    """An adapter for the configured database: the only place a tool chooses where to connect."""
    configuration = tool_configuration()
    return await create_postgres_adapter(
        configuration.database_url, kind=configuration.kind, **configuration.settings
    )


def _model_class(resource_type: object) -> type[BaseResource]:
    if not isinstance(resource_type, str):
        kind = type(resource_type).__name__
        raise UnknownResourceTypeError(
            f"resource_type must be a type name such as 'Patient', not {kind}."
        )
    return get_model_class(resource_type)


def _check_id(resource_id: object) -> str:
    if not is_resource_id(resource_id):
        # The value is not quoted: it may be (or carry) a person's identifier.
        raise ToolError(ErrorCode.VALIDATION, f"resource_id must be {ID_RULE}.")
    assert isinstance(resource_id, str)
    return resource_id


def _to_model(resource: object, resource_type: str | None) -> BaseResource:
    """The resource as a validated model of its registered class.

    A dict is validated by the class of its ``resource_type`` (or of ``resource_type``), so a
    bad field fails here with its name, before anything is sent to the database.
    """
    if isinstance(resource, BaseResource):
        if resource_type is not None and resource_type != resource.resource_type:
            raise ToolError(
                ErrorCode.VALIDATION,
                f"resource_type {resource_type!r} does not match the {resource.resource_type} "
                "resource given.",
            )
        return resource
    if not isinstance(resource, Mapping):
        raise ToolError(
            ErrorCode.VALIDATION,
            f"resource must be a dict or a hacs resource, not {type(resource).__name__}.",
        )
    type_name = resource_type if resource_type is not None else resource.get("resource_type")
    if type_name is None:
        raise ToolError(
            ErrorCode.VALIDATION,
            "resource_type is required: include it in the resource or pass resource_type=.",
        )
    # A dict whose own resource_type differs from the argument fails model validation,
    # which names the resource_type field.
    return _model_class(type_name).model_validate(dict(resource))


def _dump(resource: BaseResource) -> dict[str, Any]:
    return resource.model_dump(mode="json")


# -- read ----------------------------------------------------------------------------------


async def aread_resource(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Read the current version of a resource.

    Args:
        resource_id: The resource's id, e.g. ``"patient-1234"``.
        resource_type: Its type, e.g. ``"Patient"``.
        actor_id: Optional check that the current actor is who the caller thinks it is.

    Returns:
        On success ``data={"resource": {...}}`` (JSON-mode dict); on failure an error such
        as ``not_found`` or ``permission_denied``.
    """

    async def call(actor: Actor) -> HACSResult:
        cls = _model_class(resource_type)
        _check_id(resource_id)
        async with await _open_adapter() as adapter:
            resource = await adapter.read(cls, resource_id, actor)
        return success(
            f"{resource.resource_type} {resource.id} retrieved",
            {"resource": _dump(resource)},
            actor_id=actor.id,
        )

    return await _guarded("read_resource", actor_id, call)


def read_resource(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`aread_resource`; also works in a running loop (blocking it)."""
    return run_sync(aread_resource(resource_id, resource_type, actor_id))


# -- save ----------------------------------------------------------------------------------


async def asave_resource(
    resource: ResourceInput,
    resource_type: str | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """Create a resource (or store a new version of one that carries its ``version``).

    Args:
        resource: A dict with a ``resource_type`` (validated by that type's model) or a hacs
            model. A model passed in is stamped with its stored version, as by
            ``adapter.save``, so saving it again updates it.
        resource_type: The type of a dict without one, or a check of the given type.
        actor_id: Optional check that the current actor is who the caller thinks it is.

    Returns:
        On success ``data={"resource": {...}}`` with the stored id and version; on failure
        e.g. ``validation`` (naming the field), ``version_conflict`` or ``permission_denied``.
    """

    async def call(actor: Actor) -> HACSResult:
        model = _to_model(resource, resource_type)
        async with await _open_adapter() as adapter:
            saved = await adapter.save(model, actor)
        return success(
            f"{saved.resource_type} {saved.id} saved (version {saved.version})",
            {"resource": _dump(saved)},
            actor_id=actor.id,
        )

    return await _guarded("save_resource", actor_id, call)


def save_resource(
    resource: ResourceInput,
    resource_type: str | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`asave_resource`; also works in a running loop (blocking it)."""
    return run_sync(asave_resource(resource, resource_type, actor_id))


# -- update --------------------------------------------------------------------------------


async def aupdate_resource(
    resource: ResourceInput,
    expected_version: int | None = None,
    actor_id: str | None = None,
    *,
    resource_type: str | None = None,
) -> HACSResult:
    """Replace a stored resource with a new version (optimistic concurrency).

    Args:
        resource: The complete new resource, as a dict or a hacs model.
        expected_version: The version the change is based on; defaults to the resource's own
            ``version``. A stale version fails with ``version_conflict``.
        actor_id: Optional check that the current actor is who the caller thinks it is.
        resource_type: The type of a dict without one, or a check of the given type.

    Returns:
        On success ``data={"resource": {...}}`` with the new version.
    """

    async def call(actor: Actor) -> HACSResult:
        model = _to_model(resource, resource_type)
        async with await _open_adapter() as adapter:
            updated = await adapter.update(model, actor, expected_version=expected_version)
        return success(
            f"{updated.resource_type} {updated.id} updated (version {updated.version})",
            {"resource": _dump(updated)},
            actor_id=actor.id,
        )

    return await _guarded("update_resource", actor_id, call)


def update_resource(
    resource: ResourceInput,
    expected_version: int | None = None,
    actor_id: str | None = None,
    *,
    resource_type: str | None = None,
) -> HACSResult:
    """Synchronous :func:`aupdate_resource`; also works in a running loop (blocking it)."""
    return run_sync(
        aupdate_resource(
            resource,
            expected_version,
            actor_id,
            resource_type=resource_type,
        )
    )


# -- delete --------------------------------------------------------------------------------


async def adelete_resource(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Soft-delete a resource: it disappears from reads and searches, its history remains.

    Returns:
        On success ``data={"resource_type", "id", "version"}`` (the tombstone's version).
    """

    async def call(actor: Actor) -> HACSResult:
        cls = _model_class(resource_type)
        _check_id(resource_id)
        async with await _open_adapter() as adapter:
            version = await adapter.delete(cls, resource_id, actor)
        type_name = cls.type_name()
        return success(
            f"{type_name} {resource_id} deleted (version {version})",
            {"resource_type": type_name, "id": resource_id, "version": version},
            actor_id=actor.id,
        )

    return await _guarded("delete_resource", actor_id, call)


def delete_resource(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`adelete_resource`; also works in a running loop (blocking it)."""
    return run_sync(adelete_resource(resource_id, resource_type, actor_id))


# -- search --------------------------------------------------------------------------------


async def asearch_resources(
    resource_type: str,
    filters: Mapping[str, Any] | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """One page of live resources of a type matching ``filters``.

    Args:
        resource_type: The type to search, e.g. ``"Patient"``.
        filters: ``{"field": value}`` or ``{"field__op": value}``; see
            ``hacs_persistence.query.search`` for fields and operators.
        order_by: A field, ``-field`` for descending; defaults to ``id``.
        limit: Page size (default 50, at most 1000).
        cursor: The ``next_cursor`` of the previous page.
        actor_id: Optional check that the current actor is who the caller thinks it is.

    Returns:
        On success ``data={"resources": [...], "next_cursor": str | None, "count": n}``;
        a bad filter, sort key or cursor fails with ``invalid_query``.
    """

    async def call(actor: Actor) -> HACSResult:
        cls = _model_class(resource_type)
        async with await _open_adapter() as adapter:
            page = await adapter.search(
                cls, actor, filters=filters, order_by=order_by, limit=limit, cursor=cursor
            )
        more = "; more on the next page (pass next_cursor)" if page.next_cursor else ""
        return success(
            f"Found {len(page.items)} {cls.type_name()} resource(s){more}",
            {
                "resources": [_dump(item) for item in page.items],
                "next_cursor": page.next_cursor,
                "count": len(page.items),
            },
            actor_id=actor.id,
        )

    return await _guarded("search_resources", actor_id, call)


def search_resources(
    resource_type: str,
    filters: Mapping[str, Any] | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`asearch_resources`; also works in a running loop (blocking it)."""
    return run_sync(asearch_resources(resource_type, filters, order_by, limit, cursor, actor_id))


# -- similarity search ---------------------------------------------------------------------


async def asearch_similar_resources(
    resource_type: str,
    vector: Sequence[float] | str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """The ``k`` resources of a type nearest to ``vector`` (cosine distance), nearest first.

    Args:
        resource_type: A type with embeddings, e.g. ``"MemoryBlock"``.
        vector: The query embedding; text only when the tools' adapter has an embedder.
        k: How many to return (pgvector's iterative scan returns ``k`` when ``k`` match).
        filters: The ``search_resources`` filter grammar, applied in the same query.
        actor_id: Optional check that the current actor is who the caller thinks it is.

    Returns:
        On success ``data={"results": [{"resource": {...}, "distance": d}], "count": n}``.
    """

    async def call(actor: Actor) -> HACSResult:
        cls = _model_class(resource_type)
        async with await _open_adapter() as adapter:
            found = await adapter.search_similar(cls, vector, actor, k, filters=filters)
        return success(
            f"Found {len(found)} similar {cls.type_name()} resource(s)",
            {
                "results": [
                    {"resource": _dump(item), "distance": distance} for item, distance in found
                ],
                "count": len(found),
            },
            actor_id=actor.id,
        )

    return await _guarded("search_similar_resources", actor_id, call)


def search_similar_resources(
    resource_type: str,
    vector: Sequence[float] | str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`asearch_similar_resources`; also works in a running loop (blocking it)."""
    return run_sync(asearch_similar_resources(resource_type, vector, k, filters, actor_id))


# -- history -------------------------------------------------------------------------------


async def aresource_history(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Every stored version of a resource, newest first (a delete is ``operation="delete"``).

    A patient-scoped actor sees only the versions that belonged to its patients.

    Returns:
        On success ``data={"versions": [{"version", "operation", "changed_at", "changed_by",
        "resource"}], "count": n}``.
    """

    async def call(actor: Actor) -> HACSResult:
        cls = _model_class(resource_type)
        _check_id(resource_id)
        async with await _open_adapter() as adapter:
            entries = await adapter.history(cls, resource_id, actor)
        versions = [
            {
                "version": entry.version,
                "operation": entry.operation,
                "changed_at": entry.changed_at.isoformat(),
                "changed_by": entry.changed_by,
                "resource": _dump(entry.resource),
            }
            for entry in entries
        ]
        return success(
            f"{cls.type_name()} {resource_id}: {len(versions)} version(s)",
            {"versions": versions, "count": len(versions)},
            actor_id=actor.id,
        )

    return await _guarded("resource_history", actor_id, call)


def resource_history(
    resource_id: str,
    resource_type: str,
    actor_id: str | None = None,
) -> HACSResult:
    """Synchronous :func:`aresource_history`; also works in a running loop (blocking it)."""
    return run_sync(aresource_history(resource_id, resource_type, actor_id))
