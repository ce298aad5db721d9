"""`hacs audit`: seal the audit trail (a batch job, for cron) and verify it against its seals."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    JsonOption,
    check_configuration,
    cli_errors,
    command_group,
    console,
    database_url,
    preflight,
    run,
)

__all__ = ["SEAL_WAIT_SECONDS", "app", "register"]

# The default of `--wait`, which --help shows without importing the library: the one of
# hacs_persistence.ops.audit_seal.DEFAULT_WAIT_SECONDS (tests/test_cli_startup.py compares them).
SEAL_WAIT_SECONDS = 300.0

app, register = command_group(
    "audit",
    "Seal the audit trail and verify it (tamper evidence; run as the schema owner).",
)


def _say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


@app.command("seal")
def seal_command(
    ctx: typer.Context,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="How long to wait for transactions writing audit rows when the seal starts.",
        ),
    ] = SEAL_WAIT_SECONDS,
    as_json: JsonOption = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Seal the audit rows written since the last seal and print the new head hash.

    Keep the printed head outside the database (a log, a ticket, another system):
    `hacs audit verify --expect-head HEAD` then proves the trail up to that seal unchanged.
    Exit code 0 when sealed (or nothing new), 1 on failure, 3 when unreachable.
    """
    from hacs_persistence.ops.audit_seal import seal_audit

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        result = run(seal_audit(url, wait_seconds=wait))
        if as_json:
            typer.echo(json.dumps(asdict(result), indent=2))
            return
        if result.seals:
            _say(
                f"Sealed {result.rows} audit rows up to id {result.last_id} "
                f"in {result.seals} seal(s)."
            )
        else:
            _say("Nothing new to seal.")
        _say(f"Head: {result.head or 'none (no seal yet)'}")


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="HASH",
            help="A head printed by an earlier `hacs audit seal`; it must be in the chain.",
        ),
    ] = None,
    as_json: JsonOption = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Check the audit trail against its seals; name every row deleted, altered or inserted.

    Rows removed by audit retention are not findings. Exit code 0 when nothing is found, 1 when
    something is (or on failure), 3 when the database cannot be reached.
    """
    from hacs_persistence.ops.audit_seal import verify_audit

    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        report = run(verify_audit(url, expect_head=expect_head))
        if as_json:
            data = asdict(report)
            data["ok"] = report.ok
            typer.echo(json.dumps(data, indent=2, default=str))
        else:
            for finding in report.findings:
                _say(str(finding))
            _say(
                f"{'OK' if report.ok else 'TAMPERED'}: {report.seals} seal(s), "
                f"{report.sealed_rows} sealed rows ({report.retained_rows} aged out by "
                f"retention), {report.unsealed_rows} rows not sealed yet, "
                f"{len(report.findings)} finding(s). Head: {report.head or 'none'}"
            )
        if not report.ok:
            raise typer.Exit(int(ExitCode.FAILED))
