"""hacs as a Model Context Protocol server (the ``hacs[mcp]`` extra; ``hacs mcp`` runs it).

The tools are the :mod:`hacs_tools` operations under their own names, each run as the actor of a
verified hacs access token: ``HACS_TOKEN`` for stdio, the bearer token of each request for
streamable HTTP. Nothing here opens a connection or writes SQL: every call goes through the
tools, and so through the adapter's gate (permissions, patient scope, audit).
"""

from hacs_mcp.server import (
    SERVER_NAME,
    TOOL_NAMES,
    HacsTokenVerifier,
    StartupTokenError,
    build_server,
    http_app,
    startup_actor,
)

__all__ = [
    "SERVER_NAME",
    "TOOL_NAMES",
    "HacsTokenVerifier",
    "StartupTokenError",
    "build_server",
    "http_app",
    "startup_actor",
]
