"""The `hacs` command line: `hacs db ...`, `hacs doctor`, `hacs demo`, `hacs docs ...`,
`hacs import`, `hacs export`, `hacs audit ...`, `hacs token revoke`, `hacs embedded ...`,
`hacs mcp`.

Each command group lives in its own module exposing `register(app)`; adding a command is one new
module plus its name in `COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from hacs_cli.common import CliState, DatabaseUrlOption
from hacs_cli.logs import configure_logging

__all__ = ["COMMAND_MODULES", "app", "main"]

COMMAND_MODULES = (
    "hacs_cli.db",
    "hacs_cli.doctor",
    "hacs_cli.demo",
    "hacs_cli.embedded",
    "hacs_cli.docs",
    "hacs_cli.fhir",
    "hacs_cli.audit",
    "hacs_cli.tokens",
    "hacs_cli.views",
    "hacs_cli.mcp",
)

app = typer.Typer(
    name="hacs",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    # Errors are reported by the commands in one line; never print locals (they hold URLs).
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main(
    ctx: typer.Context,
    database_url: DatabaseUrlOption = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Show the libraries' log on stderr: -v INFO, -vv DEBUG (default: none).",
        ),
    ] = 0,
) -> None:
    """hacs: PostgreSQL persistence for healthcare AI agents.

    The database is DATABASE_URL, else HACS_DATABASE_URL (environment or .env), else the
    embedded PostgreSQL; --database-url overrides them. Exit codes: 0 ok, 1 check or operation
    failed, 2 usage or configuration error, 3 database unreachable, 130 interrupted (Ctrl-C),
    141 output closed early (e.g. piped into head).
    """
    configure_logging(verbose)
    ctx.obj = CliState(database_url=database_url)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
