"""`hacs doctor`: where the database URL comes from, whether the server answers, what to fix."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    check_configuration,
    cli_errors,
    console,
    database_url,
    redact,
    run,
    source_label,
)

__all__ = ["diagnose", "doctor", "register"]


def register(root: typer.Typer) -> None:
    """Add `hacs doctor` to the root application."""
    root.command("doctor")(doctor)


async def diagnose(url: str | None) -> dict[str, Any]:
    """`verify_database_environment` plus the migration status when the server answers."""
    from hacs_persistence.migrations import get_migration_status
    from hacs_persistence.ops.inspection import verify_database_environment

    report = await verify_database_environment(url)
    if report["connection_test"].get("success"):
        report["migration_status"] = await get_migration_status(url)
    report.update(distribution_check())
    return report


def distribution_check() -> dict[str, Any]:
    """Other installed distributions that ship hacs's packages, hacs's files they overwrote
    (those that differ from hacs's RECORD), and the fix."""
    from hacs_persistence.distributions import (
        conflict_advice,
        conflicting_distributions,
        overwritten_files,
    )

    conflicts = conflicting_distributions()
    changed = overwritten_files()
    advice = conflict_advice(conflicts) if conflicts else None
    if changed and not conflicts:
        advice = (
            f"{len(changed)} installed files of hacs differ from what was installed (e.g. "
            f"{changed[0]}): reinstall hacs (`pip install --force-reinstall --no-deps` with "
            "this project's wheel)."
        )
    return {
        "distribution_conflicts": [asdict(c) for c in conflicts],
        "distribution_overwritten_files": changed,
        "distribution_advice": advice,
    }


def _exit_code(report: dict[str, Any], url: str | None) -> ExitCode:
    code = _database_exit_code(report, url)
    broken = report.get("distribution_conflicts") or report.get("distribution_overwritten_files")
    if broken and code == ExitCode.OK:
        return ExitCode.FAILED
    return code


def _database_exit_code(report: dict[str, Any], url: str | None) -> ExitCode:
    from hacs_persistence.errors import ConfigurationError

    if not report["connection_test"].get("success"):
        try:
            check_configuration(url)
        except ConfigurationError:
            return ExitCode.USAGE
        return ExitCode.UNREACHABLE
    status = report.get("migration_status") or {}
    return ExitCode.OK if status.get("migration_complete") else ExitCode.FAILED


def _mark(ok: bool) -> Text:
    return Text("ok", style="green") if ok else Text("missing", style="bold red")


def render_report(report: dict[str, Any], url: str | None) -> None:
    """Print the doctor report as a Rich table, environment variables and recommendations."""
    test = report["connection_test"]
    table = Table(title="hacs doctor", box=box.SIMPLE, show_header=False)
    table.add_column("check", style="bold")
    table.add_column("result", overflow="fold")
    table.add_row("Database URL", Text(report["database_url"]))
    table.add_row("URL source", source_label(report["database_url_source"]))
    if test.get("success"):
        table.add_row("Connection", Text("ok", style="green"))
        table.add_row("Server", f"{test['postgresql_version']}")
        table.add_row("Database / user", Text(f"{test['database_name']} / {test['user']}"))
        table.add_row("SSL", "yes" if test["ssl"] else "no")
        table.add_row("pgvector", test["pgvector_version"] or Text("not enabled", style="yellow"))
        for schema, present in report["hacs_schemas"].items():
            table.add_row(f"Schema {schema}", _mark(present))
        status = report.get("migration_status") or {}
        if "error" in status:
            table.add_row("Migration", Text(redact(status["error"], url), style="bold red"))
        else:
            complete = bool(status["migration_complete"])
            table.add_row(
                "Migration",
                Text(
                    f"{'complete' if complete else 'incomplete'}: "
                    f"{status['total_tables']}/{status['expected_tables']} tables, revision "
                    f"{status['current_revision'] or 'none'} (head {status['head_revision']})",
                    style="green" if complete else "bold red",
                ),
            )
    else:
        table.add_row("Connection", Text("failed", style="bold red"))
        table.add_row("Error", Text(redact(str(test.get("error", "")), url)))
    _distribution_row(table, report)
    console.print(table)

    env = Table(title="Environment variables", box=box.SIMPLE)
    env.add_column("Variable")
    env.add_column("Value")
    for name, state in report["environment_variables"].items():
        env.add_row(name, state)
    console.print(env)

    recommendations = list(report["recommendations"])
    if report.get("distribution_advice"):
        recommendations.append(report["distribution_advice"])
    status = report.get("migration_status") or {}
    if test.get("success") and not status.get("migration_complete"):
        recommendations.append("The schema is not at head: run `hacs db upgrade`.")
    if recommendations:
        console.print(Text("Recommendations", style="bold"))
        for item in recommendations:
            console.print(Text(f"  - {redact(item, url)}"), soft_wrap=True)


def _distribution_row(table: Table, report: dict[str, Any]) -> None:
    conflicts = report.get("distribution_conflicts") or []
    changed = report.get("distribution_overwritten_files") or []
    if conflicts:
        names = ", ".join(f"{c['name']} {c['version']}" for c in conflicts)
        line = f"conflict: {names} ships hacs's packages (see below)"
    elif changed:
        line = f"{len(changed)} installed files of hacs were changed (see below)"
    else:
        table.add_row("Distributions", Text("ok (no other project ships hacs's packages)"))
        return
    table.add_row("Distributions", Text(line, style="bold red"))


def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Check the database environment and print a readable report.

    Shows the database URL (password masked) and where it comes from, the server version, SSL,
    pgvector, the hacs schemas, the migration state, the environment variables hacs reads and
    recommendations, and whether another project's distribution ships hacs's packages. Exit
    code 0 when the connection works and the schema is at head, 1 when the schema is not at head
    or another distribution conflicts, 2 when the URL or a setting is invalid, 3 when the
    database cannot be reached.
    """
    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        report = run(diagnose(url))
        code = _exit_code(report, url)
        if as_json:
            typer.echo(redact(json.dumps(report, indent=2, default=str), url))
        else:
            render_report(report, url)
        raise typer.Exit(int(code))
