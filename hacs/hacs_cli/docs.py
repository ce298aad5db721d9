"""`hacs docs`: regenerate the documentation pages that are derived from the code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hacs_cli.common import ExitCode, cli_errors, command_group, console, fail

__all__ = ["app", "register", "schema_command"]

app, register = command_group(
    "docs",
    "Regenerate documentation derived from the code (docs/schema.md).",
)


@app.command("schema")
def schema_command(
    write: Annotated[
        bool, typer.Option("--write", help="Write docs/schema.md instead of printing it.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if the file differs from the generated page."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="File to write or check (default: docs/schema.md of the source tree).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate the schema reference (every table, column, index and an erDiagram per schema).

    Prints the Markdown by default; `--write` updates the file, `--check` compares it. Needs
    no database: the page comes from the SQLAlchemy metadata.
    """
    from hacs_cli.schema_doc import default_schema_doc_path, hacs_schema_markdown

    with cli_errors(None):
        page = hacs_schema_markdown()
        path = output or default_schema_doc_path()
        if check:
            current = path.read_text(encoding="utf-8") if path.is_file() else ""
            if current != page:
                fail(f"{path} is out of date: run `hacs docs schema --write`.", ExitCode.FAILED)
            console.print(f"{path} is up to date.", markup=False, soft_wrap=True)
        elif write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(page, encoding="utf-8")
            console.print(f"Wrote {path}.", markup=False, soft_wrap=True)
        else:
            typer.echo(page, nl=False)
