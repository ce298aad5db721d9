"""`hacs views create|rows|drop|sync`: SQL on FHIR v2 ViewDefinitions as PostgreSQL views.

`create VIEW.json` compiles the definition into `hacs_views.<name>`; `rows VIEW.json` prints its
rows as NDJSON (one JSON object per row, keys the column names) computed by one SELECT;
`drop NAME` drops the view; `sync TYPE...` refreshes the FHIR-shaped documents views read
(`hacs_views.fhir_resources`) from the stored resources. They act as the actor of `HACS_TOKEN`,
else the operator's `hacs-cli` (`admin:*`); `rows` needs read permission on the view's type and
gives a patient-scoped actor its patients' rows only.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hacs_cli.common import (
    DatabaseUrlOption,
    check_configuration,
    cli_errors,
    command_group,
    console,
    database_url,
    preflight,
    run,
)
from hacs_cli.fhir import acting_actor

if TYPE_CHECKING:
    from hacs_auth import Actor

__all__ = ["app", "create_command", "drop_command", "register", "rows_command", "sync_command"]

app, register = command_group(
    "views",
    "SQL on FHIR v2 views: compile ViewDefinitions into PostgreSQL views (schema hacs_views).",
)

ViewFile = Annotated[
    Path,
    typer.Argument(
        metavar="VIEW.json", help="A SQL on FHIR v2 ViewDefinition (JSON).", show_default=False
    ),
]


def _json_default(value: Any) -> Any:
    # decimal columns arrive as Decimal: JSON numbers (int when integral, else float).
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def _with_adapter(url: str | None, work: Any) -> Any:
    from hacs_persistence.adapter import create_postgres_adapter

    adapter = await create_postgres_adapter(url)
    try:
        return await work(adapter)
    finally:
        await adapter.close()


def _prepared(ctx: typer.Context, local: str | None) -> tuple[str | None, Actor]:
    url = database_url(ctx, local)
    check_configuration(url)
    run(preflight(url))
    return url, acting_actor(url)


@app.command("create")
def create_command(
    ctx: typer.Context,
    view: ViewFile,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="The view's name (default: its `name`)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a view of that name if there is one.")
    ] = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Compile VIEW.json into the PostgreSQL view `hacs_views.<name>` (needs `admin:*`)."""
    from hacs_persistence.views import create_view, load_definition

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        definition = load_definition(view)
        url, actor = _prepared(ctx, database_url_option)

        async def work(adapter: Any) -> str:
            return await create_view(adapter, definition, name=name, replace=replace, actor=actor)

        created = run(_with_adapter(url, work))
    console.print(f"Created view hacs_views.{created}.", markup=False, soft_wrap=True)


@app.command("rows")
def rows_command(
    ctx: typer.Context, view: ViewFile, database_url_option: DatabaseUrlOption = None
) -> None:
    """Print the rows of VIEW.json as NDJSON (one JSON object per row, keys = column names)."""
    from hacs_persistence.views import load_definition, view_rows

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        definition = load_definition(view)
        url, actor = _prepared(ctx, database_url_option)

        async def work(adapter: Any) -> list[dict[str, Any]]:
            return [row async for row in view_rows(adapter, definition, actor=actor)]

        rows = run(_with_adapter(url, work))
    for row in rows:
        typer.echo(json.dumps(row, default=_json_default, ensure_ascii=False))


@app.command("drop")
def drop_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The view to drop.")],
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Drop the view `hacs_views.<NAME>` (needs `admin:*`)."""
    from hacs_persistence.views import drop_view

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        url, actor = _prepared(ctx, database_url_option)

        async def work(adapter: Any) -> None:
            await drop_view(adapter, name, actor=actor)

        run(_with_adapter(url, work))
    console.print(f"Dropped view hacs_views.{name}.", markup=False, soft_wrap=True)


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    resource_types: Annotated[
        list[str], typer.Argument(metavar="TYPE...", help="Resource types to refresh.")
    ],
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Refresh `hacs_views.fhir_resources` (FHIR JSON of the stored resources) for TYPE...."""
    from hacs_persistence.views import sync_fhir_resources

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        url, actor = _prepared(ctx, database_url_option)

        async def work(adapter: Any) -> list[int]:
            return [await sync_fhir_resources(adapter, t, actor=actor) for t in resource_types]

        counts = run(_with_adapter(url, work))
    for resource_type, count in zip(resource_types, counts, strict=True):
        console.print(f"{resource_type}: {count} resources.", markup=False, soft_wrap=True)
