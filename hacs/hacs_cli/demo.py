"""`hacs demo`: run the user guide's flow against a database, as `make demo` does."""

from __future__ import annotations

import os

import typer

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    check_configuration,
    cli_errors,
    database_url,
    preflight,
    run,
)

__all__ = ["demo", "register"]


def register(root: typer.Typer) -> None:
    """Add `hacs demo` to the root application."""
    root.command("demo")(demo)


def demo(ctx: typer.Context, database_url_option: DatabaseUrlOption = None) -> None:
    """Migrate the database and run every block of the user guide (docs/connect_postgres.md).

    Without a URL the embedded PostgreSQL is started. A throw-away HACS_JWT_SECRET is used for
    this run when none is set. Exit code 0 when every block ran, 1 when one failed, 3 when the
    database cannot be reached.
    """
    from hacs_persistence.ops import demo as guide

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        if url:
            # The guide's first block reads DATABASE_URL, as a user's program would.
            os.environ["DATABASE_URL"] = url
        code = guide.main()
        raise typer.Exit(code if code else int(ExitCode.OK))
