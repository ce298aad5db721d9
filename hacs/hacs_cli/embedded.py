"""`hacs embedded status|start|stop`: the embedded PostgreSQL that hacs starts without a URL.

The server keeps running after the program that started it exits (the next one reuses it);
these commands show, start and stop it. `--data-dir` names another one than the default
(`HACS_EMBEDDED_DIR`, else `postgres18` in the user data directory), e.g. the test suite's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hacs_cli.common import ExitCode, JsonOption, cli_errors, command_group, console, fail

if TYPE_CHECKING:
    from hacs_persistence.db.embedded import EmbeddedStatus

__all__ = ["app", "register", "start_command", "status_command", "stop_command"]

app, register = command_group(
    "embedded",
    "Show, start or stop the embedded PostgreSQL (used when no database URL is configured).",
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        show_default=False,
        help="Data directory of the server (default: HACS_EMBEDDED_DIR, else postgres18 in the "
        "user data directory; as root /var/lib/hacs/postgres18).",
    ),
]


def _target(data_dir: Path | None) -> Path:
    from hacs_persistence.db.embedded import embedded_data_dir

    return (data_dir or embedded_data_dir()).expanduser().resolve()


def _describe(status: EmbeddedStatus) -> str:
    if not status.initialized:
        return f"No embedded PostgreSQL in {status.data_dir} (created on first use)."
    if not status.running:
        return f"The embedded PostgreSQL in {status.data_dir} is stopped."
    line = f"The embedded PostgreSQL in {status.data_dir} is running (pid {status.pid})"
    if status.binaries_gone:
        line += (
            f", from programs that no longer exist ({status.executable}); the next hacs "
            "command restarts it from the current ones"
        )
    elif status.current_binaries is False:
        line += f", from another installation's programs ({status.executable})"
    if status.in_use_by_leases:
        line += "; a test session is using it"
    return line + "."


def _as_dict(status: EmbeddedStatus) -> dict[str, object]:
    return {
        "data_dir": str(status.data_dir),
        "initialized": status.initialized,
        "running": status.running,
        "pid": status.pid,
        "executable": status.executable,
        "binaries_gone": status.binaries_gone,
        "current_binaries": status.current_binaries,
        "in_use_by_test_sessions": status.in_use_by_leases,
        "stopped_by_last_test_session": status.stop_when_unused,
    }


@app.command("status")
def status_command(data_dir: DataDirOption = None, as_json: JsonOption = False) -> None:
    """Say whether the embedded server exists and runs, and from which programs.

    Exit code 0 when it runs from existing programs, 1 when it is stopped, not created yet or
    runs from deleted programs.
    """
    from hacs_persistence.db.embedded import embedded_status

    with cli_errors(None):
        status = embedded_status(_target(data_dir))
        if as_json:
            typer.echo(json.dumps(_as_dict(status), indent=2))
        else:
            console.print(_describe(status), soft_wrap=True)
        healthy = status.running and not status.binaries_gone
        raise typer.Exit(int(ExitCode.OK if healthy else ExitCode.FAILED))


@app.command("start")
def start_command(data_dir: DataDirOption = None) -> None:
    """Start the embedded server (creating it on first use), or reuse the running one.

    A server left running by deleted programs (a removed virtual environment) is restarted
    from the current ones. A server started this way keeps running when a test session that
    used it ends.
    """
    from hacs_persistence.db.config import mask_url
    from hacs_persistence.db.embedded import ensure_embedded_server, keep_running

    with cli_errors(None):
        server = ensure_embedded_server(_target(data_dir), announce=False)
        keep_running(server.data_dir)
        console.print(
            f"The embedded PostgreSQL in {server.data_dir} is running; the application "
            f"connects as {mask_url(server.app_url)}. Stop it with `hacs embedded stop`.",
            soft_wrap=True,
        )


@app.command("stop")
def stop_command(
    data_dir: DataDirOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Stop it even while a test session is using it."),
    ] = False,
) -> None:
    """Stop the embedded server (its data is kept; the next hacs command starts it again).

    Refused (exit 1) while a test session holds it, unless --force.
    """
    from hacs_persistence.db.embedded import embedded_status, stop_embedded

    with cli_errors(None):
        target = _target(data_dir)
        if not force and embedded_status(target).in_use_by_leases:
            fail(
                f"A test session is using the embedded PostgreSQL in {target}; it stops the "
                "server itself when it ends if it started it. Use --force to stop it now."
            )
        if stop_embedded(target):
            console.print(f"Stopped the embedded PostgreSQL in {target}.", soft_wrap=True)
        else:
            console.print(f"The embedded PostgreSQL in {target} was not running.", soft_wrap=True)
