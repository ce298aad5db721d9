"""`hacs mcp`: serve the hacs tools over the Model Context Protocol (the `hacs[mcp]` extra).

stdio (the default) acts as the actor of the token in `HACS_TOKEN`, checked before the server
starts and on every call; streamable HTTP takes a bearer token per request. Without a valid
token nothing is served: there is no anonymous mode.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    check_configuration,
    cli_errors,
    database_url,
    fail,
    preflight,
    run,
)

__all__ = ["Transport", "mcp_command", "register"]


class Transport(enum.StrEnum):
    """The MCP transports `hacs mcp` serves."""

    STDIO = "stdio"
    HTTP = "http"


def register(root: typer.Typer) -> None:
    """Add `hacs mcp` to the root application."""
    root.command("mcp")(mcp_command)


def mcp_command(
    ctx: typer.Context,
    transport: Annotated[
        Transport,
        typer.Option("--transport", "-t", help="stdio (HACS_TOKEN) or http (bearer tokens)."),
    ] = Transport.STDIO,
    host: Annotated[str, typer.Option(help="HTTP: the address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP: the port.")] = 8000,
    local_url: DatabaseUrlOption = None,
) -> None:
    """Serve read, search, similarity search, history, save, update and delete as MCP tools,
    and a patient's record as MCP resources (`hacs://patient/{id}`), as the actor of a
    verified hacs access token: `HACS_TOKEN` for stdio, the request's bearer token for http.
    """
    url = database_url(ctx, local_url)
    try:
        from hacs_mcp.server import StartupTokenError, build_server, startup_actor
    except ModuleNotFoundError as exc:
        # Only the missing SDK means "install the extra"; a broken import of hacs_mcp itself
        # must surface as what it is.
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        fail(
            "`hacs mcp` needs the MCP SDK: pip install 'hacs[mcp]'.",
            ExitCode.USAGE,
        )
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        server = build_server(transport.value, database_url=url)
        if transport is Transport.HTTP:
            run(server.run_streamable_http_async(host=host, port=port))
            return

        async def serve_stdio() -> None:
            # Verified on the loop that serves: the revocation list's pool belongs to it.
            await startup_actor()
            await server.run_stdio_async()

        try:
            run(serve_stdio())
        except StartupTokenError as exc:
            fail(str(exc), ExitCode.USAGE)
