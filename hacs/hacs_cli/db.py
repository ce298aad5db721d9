"""`hacs db`: migrate the schema up or down, show its status, detect drift (Alembic underneath)."""

from __future__ import annotations

import io
import json
import re
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    JsonOption,
    check_configuration,
    cli_errors,
    command_group,
    console,
    database_url,
    fail,
    preflight,
    redact,
    run,
)

__all__ = ["MAINTAIN_MONTHS_AHEAD", "app", "register", "render_status"]

# The default of `maintain --months-ahead`, which --help shows without importing the library: the
# one of hacs_persistence.ops.partitions.DEFAULT_MONTHS_AHEAD (tests compare them).
MAINTAIN_MONTHS_AHEAD = 3

app, register = command_group(
    "db",
    "Migrate the hacs schema and check its state (Alembic underneath).",
)


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


def render_status(status: dict[str, Any], target: str) -> None:
    """Print `get_migration_status` as the guide's figures plus a per-schema table."""
    from hacs_persistence.migrations import expected_tables

    complete = bool(status["migration_complete"])
    console.print(Text(f"Database: {target}"), soft_wrap=True)
    summary = Table(title="Migration status", box=box.SIMPLE, show_header=False)
    summary.add_column("figure", style="bold")
    summary.add_column("value")
    summary.add_row(
        "Migration complete",
        Text(str(complete), style="green" if complete else "bold red"),
    )
    summary.add_row("Tables found", f"{status['total_tables']}/{status['expected_tables']}")
    summary.add_row("pgvector enabled", str(status["pgvector_enabled"]))
    summary.add_row("Current revision", status["current_revision"] or "none (not migrated)")
    summary.add_row("Head revision", status["head_revision"] or "none")
    console.print(summary)

    expected = expected_tables()
    schemas = Table(title="Schema breakdown", box=box.SIMPLE)
    schemas.add_column("Schema")
    schemas.add_column("Tables found", justify="right")
    schemas.add_column("Expected", justify="right")
    for schema, found in status["schema_breakdown"].items():
        wanted = len(expected.get(schema, []))
        style = "" if found == wanted else "bold red"
        schemas.add_row(schema, Text(str(found), style=style), str(wanted))
    console.print(schemas)

    missing: list[str] = status.get("missing_tables") or []
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        console.print(Text(f"Missing tables: {shown}", style="yellow"), soft_wrap=True)
    if not complete:
        console.print("Run `hacs db upgrade` to migrate the database to head.", markup=False)


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Show what the database has against what this version of hacs expects.

    Prints the user guide's figures: migration complete, tables found/expected, pgvector, the
    per-schema breakdown and the current/head revision. Exit code 0 when the migration is
    complete, 1 when it is not, 3 when the database cannot be reached.
    """
    from hacs_persistence.migrations import get_migration_status

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        resolved = run(preflight(url))
        status = run(get_migration_status(url))
        if "error" in status:
            fail(status["error"], ExitCode.UNREACHABLE, url)
        if as_json:
            typer.echo(json.dumps(status, indent=2))
        else:
            render_status(status, resolved.target.masked)
        if not status["migration_complete"]:
            raise typer.Exit(int(ExitCode.FAILED))


# A relative step (-1, +2), an id or name with an optional step (0005, 0005-1, head, base).
_REVISION = re.compile(r"[+-]\d+|[A-Za-z0-9_][A-Za-z0-9_@.]*(?:[+-]\d+)?")


def _revision_argument(value: str) -> str:
    # A Click callback. `-1` reaches the argument only because the commands ignore unknown
    # options (Click would take it for one); a misspelt option must not pass as a revision.
    if not _REVISION.fullmatch(value):
        raise typer.BadParameter(
            f"{value!r} is neither an option of this command nor a revision "
            "(head, base, a revision id such as 0005, or a relative step such as -1)."
        )
    return value


# Relative revisions start with '-', which Click would parse as an unknown option.
_RELATIVE = {"ignore_unknown_options": True}


@app.command("upgrade", context_settings=_RELATIVE)
def upgrade_command(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION",
            help="Target revision: head (default), a revision id or +N.",
            callback=_revision_argument,
        ),
    ] = "head",
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Migrate the database up to a revision (`alembic upgrade`; idempotent at head).

    Creates the hacs schemas, tables, views, triggers and the pgvector extension on a new
    database. Two processes upgrading at once are serialised by an advisory lock.
    """
    from hacs_persistence.migrations import upgrade

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        resolved = run(preflight(url))
        before = _current_revision(url)
        run(upgrade(url, revision))
        _report_revision(url, resolved.target.masked, "Upgraded", revision, before)


@app.command("downgrade", context_settings=_RELATIVE)
def downgrade_command(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION",
            help="Target revision: a revision id, -N (N steps down), or base (drops everything).",
            callback=_revision_argument,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Migrate the database down to a revision (`alembic downgrade`).

    Downgrading drops the tables added after that revision with their data; `base` removes
    every hacs table. Asks for confirmation unless `--yes` is given.
    """
    from hacs_persistence.migrations import downgrade

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        resolved = run(preflight(url))
        before = _current_revision(url)
        if not yes:
            target = _downgrade_target(revision, before)
            what = "every hacs table" if target is None else f"what came after {target}"
            question = (
                f"Downgrade {resolved.target.masked} from {before or 'none'} to "
                f"{target or 'base'}? This drops {what}"
            )
            try:
                confirmed = typer.confirm(question + ", with its data.", default=False)
            except typer.Abort:
                confirmed = False
            if not confirmed:
                fail("Downgrade cancelled; pass --yes to run it without a prompt.", url=url)
        run(downgrade(revision, url))
        _report_revision(url, resolved.target.masked, "Downgraded", revision, before)


def _current_revision(url: str | None) -> str | None:
    from hacs_persistence.migrations import get_migration_status

    status = run(get_migration_status(url))
    if "error" in status:
        fail(status["error"], ExitCode.UNREACHABLE, url)
    current = status["current_revision"]
    return str(current) if current is not None else None


def _downgrade_target(revision: str, current: str | None) -> str | None:
    """The revision a downgrade ends at (None: base), for the confirmation question.

    ``-N`` counts down from the current revision, ``ID-N`` from that id (a linear history:
    the migration tests check there is a single head).
    """
    from alembic.script import ScriptDirectory

    from hacs_persistence.migrations import alembic_config

    step = re.fullmatch(r"(.*?)-(\d+)", revision)
    if revision == "base":
        return None
    if step is None:
        return revision
    script = ScriptDirectory.from_config(alembic_config())
    start = step[1] or current
    target = script.get_current_head() if start in ("head", "heads") else start
    try:
        for _ in range(int(step[2])):
            if target is None:
                break
            down = script.get_revision(target).down_revision
            target = down if isinstance(down, str) else None
    except Exception:
        return revision  # not a revision this version knows: Alembic's own error says so
    return target


def _report_revision(
    url: str | None, where: str, done: str, revision: str, before: str | None
) -> None:
    """``Upgraded DB to head: revision 0007 ...``, or ``Already at head 0007: ...`` if no-op."""
    from hacs_persistence.migrations import get_migration_status

    status = run(get_migration_status(url))
    if "error" in status:
        console.print(f"{done} {where} to {revision}.", markup=False, soft_wrap=True)
        return
    current = status["current_revision"]
    head = status["head_revision"]
    tables = f"{status['total_tables']}/{status['expected_tables']} tables"
    if current == before:
        at = f"head {head}" if current == head else f"revision {current or 'base'} (head {head})"
        line = f"Already at {at}: {where}, {tables}; nothing to do."
    else:
        line = (
            f"{done} {where} from {before or 'base'} to {revision}: revision "
            f"{current or 'base'} (head {head}), {tables}."
        )
    console.print(line, markup=False, soft_wrap=True)


@app.command("check")
def check_command(
    ctx: typer.Context,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Compare the live schema with the tables' metadata (`alembic check`).

    Exit code 0 when they agree; 1 with a summary of the differences when they drift (or when the
    database is not at head), 3 when the database cannot be reached.
    """
    from alembic import command
    from alembic.util.exc import AutogenerateDiffsDetected, CommandError

    from hacs_persistence.migrations import alembic_config

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        resolved = run(preflight(url))
        try:
            # Alembic is synchronous; env.py runs its own event loop (none is running here).
            # The embedded default is compared as its owner (env.py resolves it without a URL).
            config = alembic_config(None if resolved.source == "embedded" else resolved.url)
            config.stdout = io.StringIO()  # Alembic's own "No new upgrade operations detected."
            command.check(config)
        except AutogenerateDiffsDetected as exc:
            console.print(
                f"Schema drift in {resolved.target.masked}: {len(exc.diffs)} difference(s) "
                "between the database and the hacs metadata:",
                markup=False,
                soft_wrap=True,
            )
            for line in describe_diffs(exc.diffs):
                console.print(f"  - {redact(line, resolved.url)}", markup=False, soft_wrap=True)
            raise typer.Exit(int(ExitCode.FAILED)) from None
        except CommandError as exc:
            hint = " Run `hacs db upgrade` first." if "not up to date" in str(exc) else ""
            fail(
                f"alembic check failed: {str(exc).rstrip('.')}.{hint}",
                ExitCode.FAILED,
                resolved.url,
            )
        console.print(
            f"No drift: {resolved.target.masked} matches the hacs metadata.",
            markup=False,
            soft_wrap=True,
        )


@app.command("maintain")
def maintain_command(
    ctx: typer.Context,
    months_ahead: Annotated[
        int,
        typer.Option(
            "--months-ahead",
            metavar="MONTHS",
            min=0,
            max=120,
            help="Months after the current one that must have an audit partition.",
        ),
    ] = MAINTAIN_MONTHS_AHEAD,
    as_json: JsonOption = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Create the audit trail's monthly partitions ahead (a batch job; run as the schema owner).

    Creates every missing month of `hacs_audit.audit_events` up to MONTHS after the current one
    and moves rows that landed in its DEFAULT partition into their month. Idempotent: run it
    from cron, e.g. daily. Exit code 0 when done, 1 on failure, 3 when unreachable.
    """
    from hacs_persistence.ops.partitions import ensure_audit_partitions

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        report = run(ensure_audit_partitions(url, months_ahead=months_ahead))
        through = report.through
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "created": report.created,
                        "moved_rows": report.moved_rows,
                        "default_rows": report.default_rows,
                        "partitions": [p.name for p in report.partitions],
                        "through": through.isoformat() if through else None,
                    },
                    indent=2,
                )
            )
            return
        if report.created:
            console.print(
                f"Created {len(report.created)} audit partition(s): "
                f"{', '.join(report.created)}; moved {report.moved_rows} row(s) out of "
                "audit_events_default.",
                markup=False,
                soft_wrap=True,
            )
        else:
            console.print("Audit partitions: nothing to create.", markup=False, soft_wrap=True)
        months = sum(1 for p in report.partitions if p.ends is not None)
        until = through.strftime("%Y-%m-%d") if through else "none"
        console.print(
            f"{months} monthly partition(s) up to {until} (exclusive), "
            f"{report.default_rows} row(s) in audit_events_default.",
            markup=False,
            soft_wrap=True,
        )


@app.command("alembic-ini")
def alembic_ini_command() -> None:
    """Print an alembic.ini for the `alembic` command, pointing at this install's migrations.

    `hacs db alembic-ini > alembic.ini` in any directory, then `alembic upgrade head`,
    `alembic current` or `alembic history` work there as in a checkout (the URL is resolved as
    `hacs db upgrade` does, or given with `alembic -x database_url=...`).
    """
    from hacs_persistence.migrations import alembic_ini

    with cli_errors(None):
        typer.echo(alembic_ini(), nl=False)


def describe_diffs(diffs: list[Any]) -> list[str]:
    """One readable line per Alembic autogenerate difference."""
    lines: list[str] = []
    for diff in diffs:
        if isinstance(diff, list):  # modify_* operations come grouped per column
            lines.extend(describe_diffs(diff))
            continue
        kind, *rest = diff
        if kind.startswith("modify_") and len(rest) >= 6:
            schema, table, column, _existing, old, new = rest[:6]
            where = ".".join(str(p) for p in (schema, table, column) if p)
            lines.append(f"{kind}: {where}: {_describe_value(old)} -> {_describe_value(new)}")
            continue
        objects = [part for part in rest if part is not None and not isinstance(part, str)]
        parts = objects or [part for part in rest if part]
        lines.append(f"{kind}: {', '.join(_describe_part(part) for part in parts)}")
    return lines


def _describe_value(value: Any) -> str:
    """A column type as PostgreSQL spells it; other values as they are."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.types import TypeEngine

    if isinstance(value, TypeEngine):
        try:
            return str(value.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
        except Exception:
            return repr(value)
    return repr(value)


def _describe_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    name = getattr(part, "name", None)
    table = getattr(part, "table", None)
    if table is not None and getattr(table, "name", None):
        qualified = f"{table.schema}.{table.name}" if table.schema else str(table.name)
        return f"{qualified}.{name}" if hasattr(part, "type") else f"{name} on {qualified}"
    schema = getattr(part, "schema", None)
    if name is not None:
        return f"{schema}.{name}" if schema else str(name)
    return repr(part)
