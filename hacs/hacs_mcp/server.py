"""The MCP server: hacs_tools operations as MCP tools, a patient's record as MCP resources.

Built on the official SDK's :class:`~mcp.server.mcpserver.MCPServer`. Who a call acts as is never
an argument: over stdio it is the actor of ``HACS_TOKEN``, verified at start and again on every
call (so expiry and revocation end the session's rights); over streamable HTTP it is the actor of
the request's bearer token, verified by :class:`HacsTokenVerifier` before the request reaches the
server (a missing or bad token is HTTP 401). Both use ``hacs_auth``'s verification, with its
lifetime and revocation rules, as ``hacs import`` does for ``HACS_TOKEN``.
"""

# No `from __future__ import annotations`: the SDK reads the tools' signatures, and string
# annotations of these closures could not be resolved from the module's globals.
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, JsonValue
from starlette.applications import Starlette

import hacs_tools
from hacs_auth import Actor, AuthError, acting_as, actor_from_claims, get_auth_manager
from hacs_auth.revocation import set_revocation_list
from hacs_models import UnknownResourceTypeError, get_model_class, registered_resource_types
from hacs_persistence.access.revocations import DatabaseRevocationList
from hacs_tools import HACSResult, configure_tools

__all__ = [
    "SERVER_NAME",
    "TOKEN_ENV_VAR",
    "TOOL_NAMES",
    "HacsTokenVerifier",
    "StartupTokenError",
    "build_server",
    "http_app",
    "startup_actor",
]

SERVER_NAME = "hacs"
TOKEN_ENV_VAR = "HACS_TOKEN"
TOOL_NAMES = (
    "read_resource",
    "search_resources",
    "search_similar_resources",
    "resource_history",
    "save_resource",
    "update_resource",
    "delete_resource",
)
"""The tools, named as the hacs_tools functions they call."""

# JSON-RPC's "invalid request": the call cannot run as anybody (no valid token).
_UNAUTHENTICATED = -32600

Transport = Literal["stdio", "http"]


class StartupTokenError(Exception):
    """``HACS_TOKEN`` is missing or does not verify: the stdio server refuses to start."""


# -- identity ------------------------------------------------------------------------------


async def _verified_actor(token: str) -> tuple[Actor, dict[str, Any]]:
    """The actor of a hacs access token, with its claims (signature, lifetime, revocation)."""
    claims = await get_auth_manager().verify_token_async(token)
    return actor_from_claims(claims), claims


async def startup_actor(token: str | None = None) -> Actor:
    """The actor of ``token`` (default ``$HACS_TOKEN``), or :class:`StartupTokenError`."""
    token = (os.environ.get(TOKEN_ENV_VAR, "") if token is None else token).strip()
    if not token:
        raise StartupTokenError(
            f"{TOKEN_ENV_VAR} is not set: the MCP server acts only as the actor of a hacs "
            "access token, never anonymously."
        )
    try:
        actor, _ = await _verified_actor(token)
    except AuthError as exc:
        raise StartupTokenError(
            f"{TOKEN_ENV_VAR} does not hold a valid hacs access token: {exc}"
        ) from exc
    return actor


class HacsTokenVerifier:
    """The SDK's ``TokenVerifier`` for hacs access tokens: one verification per HTTP request.

    A token that fails (bad signature, expired, too long-lived, revoked, revocation list
    unreadable) yields ``None``, which the SDK's bearer middleware answers with HTTP 401.
    """

    async def verify_token(self, token: str) -> AccessToken | None:
        """The verified token as the SDK's ``AccessToken`` (claims kept for the actor)."""
        try:
            actor, claims = await _verified_actor(token)
        except AuthError:
            return None
        return AccessToken(
            token=token,
            client_id=actor.id,
            subject=actor.id,
            scopes=list(claims.get("permissions") or []),
            expires_at=int(claims["exp"]),
            claims=claims,
        )


@dataclass(frozen=True)
class _Identity:
    """How a call finds its actor: the request's verified token, or the stdio start token."""

    transport: Transport
    stdio_token: str | None = None

    async def actor(self) -> Actor:
        if self.transport == "http":
            access = get_access_token()
            if access is None or access.claims is None:
                # The bearer middleware refuses such a request first; never fall back to anybody.
                raise MCPError(_UNAUTHENTICATED, "No verified bearer token for this request.")
            return actor_from_claims(access.claims)
        try:
            actor, _ = await _verified_actor(self.stdio_token or "")
        except AuthError as exc:
            # Checked on every call: an expired or revoked token ends the session's rights.
            raise MCPError(_UNAUTHENTICATED, f"{TOKEN_ENV_VAR} is no longer valid: {exc}") from exc
        return actor


# -- schemas -------------------------------------------------------------------------------


def _type_names() -> list[JsonValue]:
    return [name for name in sorted(registered_resource_types())]


def _resource_type_field(description: str) -> Any:
    return Field(description=description, json_schema_extra={"enum": _type_names()})


def _resource_field() -> Any:
    return Field(
        description=(
            "The resource as a JSON object with its resource_type; validated by that type's "
            "model (its JSON schema is the resource hacs://schema/{resource_type})."
        ),
        json_schema_extra={
            "properties": {"resource_type": {"type": "string", "enum": _type_names()}},
            "required": ["resource_type"],
        },
    )


def _result(outcome: HACSResult) -> CallToolResult:
    """The tool's result: HACSResult as structured content (and text), an error if it failed."""
    payload = outcome.model_dump(mode="json")
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))],
        structured_content=payload,
        is_error=not outcome.success,
    )


ToolOutput = Annotated[CallToolResult, HACSResult]

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


# -- the server ----------------------------------------------------------------------------


def build_server(
    transport: Transport,
    *,
    database_url: str | None = None,
    stdio_token: str | None = None,
    revocation_ttl: timedelta | None = None,
) -> MCPServer[Any]:
    """The hacs MCP server for one transport, acting on ``database_url``.

    Args:
        transport: ``"stdio"`` (the actor of ``stdio_token``) or ``"http"`` (bearer tokens).
        database_url: The database of the tools and of the revocation list (default: as the
            library resolves it).
        stdio_token: The token of a stdio server (default ``$HACS_TOKEN``).
        revocation_ttl: Staleness of the revocation list (default ``$HACS_REVOCATION_TTL``).
    """
    configure_tools(database_url)
    # Tokens are checked against the revocations of the database the tools act on.
    set_revocation_list(DatabaseRevocationList(database_url, ttl=revocation_ttl))
    if transport == "stdio":
        token = os.environ.get(TOKEN_ENV_VAR, "") if stdio_token is None else stdio_token
        identity = _Identity(transport, token.strip())
    else:
        identity = _Identity(transport)  # each request brings its own token
    options: dict[str, Any] = {}
    if transport == "http":
        # Resource-server mode only: hacs issues its tokens itself (`AuthManager`), so there is
        # no OAuth authorization server to advertise; issuer_url is required by the settings
        # model but unused without resource_server_url or an auth server provider.
        options = {
            "token_verifier": HacsTokenVerifier(),
            "auth": AuthSettings(
                issuer_url="http://localhost",
                resource_server_url=None,
            ),
        }
    server: MCPServer[Any] = MCPServer(
        SERVER_NAME,
        instructions=(
            "hacs: governed PostgreSQL storage of healthcare resources. Every call acts as the "
            "authenticated actor; permissions, patient scope and audit apply."
        ),
        **options,
    )
    _register_tools(server, identity)
    _register_resources(server, identity)
    return server


async def _as_actor(
    identity: _Identity, call: Callable[[], Awaitable[HACSResult]]
) -> CallToolResult:
    actor = await identity.actor()
    with acting_as(actor):
        return _result(await call())


def _register_tools(server: MCPServer[Any], identity: _Identity) -> None:
    type_help = "The resource type, e.g. Patient."

    @server.tool(annotations=_READ_ONLY)
    async def read_resource(
        resource_id: Annotated[str, Field(description="The resource's id.")],
        resource_type: Annotated[str, _resource_type_field(type_help)],
    ) -> ToolOutput:
        """Read the current version of a resource."""
        return await _as_actor(
            identity, lambda: hacs_tools.aread_resource(resource_id, resource_type)
        )

    @server.tool(annotations=_READ_ONLY)
    async def search_resources(
        resource_type: Annotated[str, _resource_type_field(type_help)],
        filters: Annotated[
            dict[str, Any] | None,
            Field(
                description='{"field": value} or {"field__op": value} (eq, ne, lt, lte, gt, '
                'gte, in, prefix, contains); e.g. {"patient_id": "p-1"}.'
            ),
        ] = None,
        order_by: Annotated[
            str | None, Field(description="A field, -field for descending (default id).")
        ] = None,
        limit: Annotated[int | None, Field(ge=1, le=1000, description="Page size.")] = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the last page.")] = None,
    ) -> ToolOutput:
        """One page of live resources of a type matching the filters."""
        return await _as_actor(
            identity,
            lambda: hacs_tools.asearch_resources(resource_type, filters, order_by, limit, cursor),
        )

    @server.tool(annotations=_READ_ONLY)
    async def search_similar_resources(
        resource_type: Annotated[str, _resource_type_field("A type with embeddings.")],
        vector: Annotated[list[float], Field(description="The query embedding.")],
        k: Annotated[int, Field(ge=1, le=1000, description="How many to return.")] = 10,
        filters: Annotated[
            dict[str, Any] | None, Field(description="The search_resources filters.")
        ] = None,
    ) -> ToolOutput:
        """The k resources nearest to the vector (cosine distance), nearest first."""
        return await _as_actor(
            identity,
            lambda: hacs_tools.asearch_similar_resources(resource_type, vector, k, filters),
        )

    @server.tool(annotations=_READ_ONLY)
    async def resource_history(
        resource_id: Annotated[str, Field(description="The resource's id.")],
        resource_type: Annotated[str, _resource_type_field(type_help)],
    ) -> ToolOutput:
        """Every stored version of a resource, newest first."""
        return await _as_actor(
            identity, lambda: hacs_tools.aresource_history(resource_id, resource_type)
        )

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        )
    )
    async def save_resource(
        resource: Annotated[dict[str, Any], _resource_field()],
    ) -> ToolOutput:
        """Create a resource (a new version when it carries its current version)."""
        return await _as_actor(identity, lambda: hacs_tools.asave_resource(resource))

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        )
    )
    async def update_resource(
        resource: Annotated[dict[str, Any], _resource_field()],
        expected_version: Annotated[
            int | None,
            Field(ge=1, description="The version the change is based on (default: its own)."),
        ] = None,
    ) -> ToolOutput:
        """Replace a stored resource with a new version (a stale version is refused)."""
        return await _as_actor(
            identity, lambda: hacs_tools.aupdate_resource(resource, expected_version)
        )

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        )
    )
    async def delete_resource(
        resource_id: Annotated[str, Field(description="The resource's id.")],
        resource_type: Annotated[str, _resource_type_field(type_help)],
    ) -> ToolOutput:
        """Soft-delete a resource: gone from reads and searches, its history kept."""
        return await _as_actor(
            identity, lambda: hacs_tools.adelete_resource(resource_id, resource_type)
        )


async def _resource_data(identity: _Identity, call: Callable[[], Awaitable[HACSResult]]) -> str:
    """A resource read's JSON, or the tool's refusal as an MCP error."""
    actor = await identity.actor()
    with acting_as(actor):
        outcome = await call()
    if not outcome.success:
        raise ResourceError(f"{outcome.error}: {outcome.message}")
    return json.dumps(outcome.data)


def _register_resources(server: MCPServer[Any], identity: _Identity) -> None:
    @server.resource(
        "hacs://patient/{patient_id}",
        name="patient",
        mime_type="application/json",
        description="A patient's Patient resource.",
    )
    async def patient(patient_id: str) -> str:
        return await _resource_data(
            identity, lambda: hacs_tools.aread_resource(patient_id, "Patient")
        )

    @server.resource(
        "hacs://patient/{patient_id}/{resource_type}",
        name="patient-resources",
        mime_type="application/json",
        description="The first page of a patient's resources of one type (e.g. Observation).",
    )
    async def patient_resources(patient_id: str, resource_type: str) -> str:
        return await _resource_data(
            identity,
            lambda: hacs_tools.asearch_resources(resource_type, {"patient_id": patient_id}),
        )

    @server.resource(
        "hacs://schema/{resource_type}",
        name="resource-schema",
        mime_type="application/schema+json",
        description="The JSON schema of a resource type, generated from its model.",
    )
    async def schema(resource_type: str) -> str:
        try:
            model = get_model_class(resource_type)
        except UnknownResourceTypeError as exc:
            raise ResourceError(str(exc)) from exc
        return json.dumps(model.model_json_schema())


def http_app(
    *,
    database_url: str | None = None,
    revocation_ttl: timedelta | None = None,
    path: str = "/mcp",
) -> Starlette:
    """The streamable HTTP server as an ASGI app (bearer tokens; 401 without a valid one)."""
    server = build_server("http", database_url=database_url, revocation_ttl=revocation_ttl)
    return server.streamable_http_app(streamable_http_path=path)
