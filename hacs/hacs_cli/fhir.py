"""`hacs import` and `hacs export`: FHIR R4 files into the database and back out.

Both act as a system actor with `admin:*` (the CLI is an operator's tool, like `hacs db`); the
library functions in `hacs_persistence.interchange` take any actor.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    check_configuration,
    cli_errors,
    console,
    database_url,
    err_console,
    fail,
    preflight,
    run,
)

if TYPE_CHECKING:
    from hacs_auth import Actor
    from hacs_persistence.interchange import ImportProgress, ImportSummary

__all__ = [
    "CLI_ACTOR",
    "TOKEN_ENV_VAR",
    "acting_actor",
    "export_command",
    "import_command",
    "register",
    "render_summary",
]

TOKEN_ENV_VAR = "HACS_TOKEN"

CLI_ACTOR: Actor
"""Who the commands act as without a token: recorded in the audit trail and as created_by.

Built on first use (module ``__getattr__``), so that ``hacs --help`` does not import the models.
"""


@cache
def _cli_actor() -> Actor:
    from hacs_auth import Actor

    return Actor(id="hacs-cli", name="hacs-cli", role="system", permissions=["admin:*"])


def __getattr__(name: str) -> Actor:
    if name == "CLI_ACTOR":
        return _cli_actor()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def acting_actor(url: str | None) -> Actor:
    """The actor of `hacs import`/`export`/`token`: the one of the hacs access token in
    ``HACS_TOKEN`` (verified with ``HACS_JWT_SECRET``, and refused when it or its actor was revoked
    in the target database; permissions and patient scope apply as in the library), else the
    operator's system actor ``hacs-cli`` with ``admin:*``.

    The token is read from the environment, never from the command line, where every local
    user could read it in the process list.
    """
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if not token:
        return _cli_actor()
    return run(_token_actor(token, url))


async def _token_actor(token: str, url: str | None) -> Actor:
    from hacs_auth import actor_from_claims, get_auth_manager
    from hacs_auth.errors import AuthError, RevocationUnavailableError
    from hacs_auth.revocation import set_revocation_list
    from hacs_persistence.access.revocations import DatabaseRevocationList

    # Verification consults the process-wide revocation list, by default the configured
    # database's: this command's is the target database (--database-url), read now (staleness
    # 0: a CLI run is one check), never another database the environment happens to name.
    set_revocation_list(DatabaseRevocationList(url, ttl=timedelta(0)))
    try:
        claims = await get_auth_manager().verify_token_async(token)
        return actor_from_claims(claims)
    except RevocationUnavailableError as exc:
        fail(f"{TOKEN_ENV_VAR} cannot be checked: {exc}", ExitCode.FAILED, url)
    except AuthError as exc:
        fail(f"{TOKEN_ENV_VAR} does not hold a valid hacs access token: {exc}", ExitCode.USAGE)


def register(root: typer.Typer) -> None:
    """Add `hacs import` and `hacs export` to the root application."""
    root.command("import")(import_command)
    root.command("export")(export_command)


class _RateColumn(ProgressColumn):
    """Resources per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown}/s", style="progress.data.speed")


async def _import(url: str | None, paths: list[Path], actor: Actor) -> ImportSummary:
    from hacs_persistence.adapter import create_postgres_adapter
    from hacs_persistence.interchange import import_paths

    adapter = await create_postgres_adapter(url)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("Reading files", total=None)

            def advance(state: ImportProgress) -> None:
                bar.update(
                    task,
                    completed=state.entries_done,
                    total=state.entries_total,
                    description=f"File {state.files_done}/{state.files_total}",
                )

            return await import_paths(paths, adapter, actor, progress=advance)
    finally:
        await adapter.close()


def render_summary(summary: ImportSummary) -> None:
    """Print the per-type table, the file counts, references and the failed files."""
    table = Table(title="FHIR import", box=box.SIMPLE)
    table.add_column("Resource type")
    for name in ("Created", "Updated", "Unchanged", "Skipped"):
        table.add_column(name, justify="right")
    for resource_type in sorted(summary.types):
        counts = summary.types[resource_type]
        table.add_row(
            resource_type,
            f"{counts.created:,}",
            f"{counts.updated:,}",
            f"{counts.unchanged:,}",
            f"{counts.skipped:,}",
        )
    totals = summary.totals
    table.add_section()
    table.add_row(
        Text("Total", style="bold"),
        f"{totals.created:,}",
        f"{totals.updated:,}",
        f"{totals.unchanged:,}",
        f"{totals.skipped:,}",
    )
    console.print(table)
    seconds = max(summary.seconds, 1e-9)
    console.print(
        f"Files: {summary.count('imported'):,} imported, {summary.count('skipped'):,} skipped "
        f"(not data), {summary.count('failed'):,} failed; {summary.seconds:.1f} s, "
        f"{totals.total / seconds:,.0f} resources/s.",
        markup=False,
        soft_wrap=True,
    )
    resolved = summary.resolved_references
    by_identifier = resolved["identifier-import"] + resolved["identifier-database"]
    console.print(
        f"References: {resolved['bundle']:,} rewritten to Type/id within Bundles, "
        f"{by_identifier:,} resolved by identifier ({resolved['identifier-database']:,} from the "
        f"database), {sum(summary.unresolved_references.values()):,} unresolved (kept as they "
        f"are), {sum(summary.dangling_references.values()):,} dangling (kept, NULL foreign key).",
        markup=False,
        soft_wrap=True,
    )
    if summary.skip_reasons:
        reasons = ", ".join(
            f"{count:,} {reason}" for reason, count in sorted(summary.skip_reasons.items())
        )
        console.print(f"Skipped: {reasons}.", markup=False, soft_wrap=True)
    failed = summary.failed
    if failed:
        console.print(Text("Failed files (nothing of them was written):", style="bold red"))
        for result in failed:
            console.print(f"  {result.describe()}", markup=False, soft_wrap=True)


def import_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="FHIR files (.json Bundles or resources, .ndjson) or folders (searched "
            "recursively for *.json and *.ndjson).",
            show_default=False,
        ),
    ],
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Import FHIR R4 data: transaction/batch/collection Bundles, Bulk Data NDJSON, resources.

    Each file is imported in one transaction; a file with invalid JSON or an invalid resource
    is reported with its line (or Bundle entry) and nothing of it is written, while the other
    files still import. Running the same import again changes nothing. urn:uuid and
    conditional (Type?identifier=system|value) references are resolved to Type/id. Acts as the
    actor of the access token in HACS_TOKEN, else as the system actor `hacs-cli` with
    `admin:*`. A resource of a type hacs does not know (neither FHIR R4 nor a hacs model, e.g.
    a misspelt resourceType) fails its file. Exit code 0 when every file imported (or was
    skipped as not data, e.g. a searchset), 1 when a file failed, 3 when the database cannot
    be reached.
    """
    url = database_url(ctx, database_url_option)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        actor = acting_actor(url)
        summary = run(_import(url, paths, actor))
        render_summary(summary)
        failed = summary.failed
        if failed:
            fail(
                f"{len(failed)} of {len(summary.files)} files failed to import; "
                "fix them and run the same import again.",
                ExitCode.FAILED,
                url,
            )


async def _export(
    url: str | None, patient: str | None, resource_type: str | None, out: TextIO, actor: Actor
) -> int:
    from hacs_persistence.adapter import create_postgres_adapter
    from hacs_persistence.interchange import export_type_ndjson, write_patient_bundle

    adapter = await create_postgres_adapter(url)
    try:
        if patient is not None:
            return await write_patient_bundle(adapter, patient, out, actor)
        assert resource_type is not None
        return await export_type_ndjson(adapter, resource_type, actor, out)
    finally:
        await adapter.close()


def export_command(
    ctx: typer.Context,
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient",
            metavar="ID",
            help="Export this patient and everything about it as a FHIR collection Bundle.",
            show_default=False,
        ),
    ] = None,
    resource_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="Export every resource of this type (e.g. Observation) as NDJSON.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write to this new file (mode 0600, complete or not at all); default stdout.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the --out file if it exists."),
    ] = False,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Export FHIR R4 JSON: a patient's compartment (--patient) or a resource type (--type).

    `--patient ID` writes a collection Bundle with the Patient and every resource that refers
    to it; `--type TYPE` writes NDJSON, one resource per line. Resources are read page by page
    and written as they come. Acts as the actor of the access token in HACS_TOKEN, else as the
    system actor `hacs-cli` with `admin:*`. Exit code 0
    on success, 1 when the patient does not exist, 2 for a usage error (an unknown --type
    names the closest known type), 3 when the database cannot be reached.
    """
    from hacs_models.fhir.resource_types import is_known_resource_type, unknown_resource_type

    url = database_url(ctx, database_url_option)
    if (patient is None) == (resource_type is None):
        fail("Give exactly one of --patient ID or --type TYPE.", ExitCode.USAGE, url)
    if resource_type is not None and not is_known_resource_type(resource_type):
        # A misspelt type would otherwise export nothing, successfully.
        fail(f"--type: {unknown_resource_type(resource_type)}", ExitCode.USAGE)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        actor = acting_actor(url)
        if out is None:
            count = run(_export(url, patient, resource_type, sys.stdout, actor))
            sys.stdout.flush()
        else:
            count = _export_to_file(url, patient, resource_type, out, actor, force)
        # No patient id in the output: it is printed where logs and terminals keep it.
        what = "the patient and its compartment" if patient else f"{resource_type}"
        where = f" to {out}" if out is not None else ""
        err_console.print(
            f"Exported {count:,} resources ({what}){where}.", markup=False, soft_wrap=True
        )


def _export_to_file(
    url: str | None,
    patient: str | None,
    resource_type: str | None,
    out: Path,
    actor: Actor,
    overwrite: bool,
) -> int:
    """Export into ``out`` through a private temporary file, renamed into place at the end.

    The temporary file is created exclusively (``mkstemp``: ``O_CREAT | O_EXCL``, a random name,
    so no planted file or symlink is ever opened) in the target's directory, with mode 0600
    whatever the umask: it holds patient data. A failed export leaves nothing behind. An
    existing target (or a symlink there) is kept unless ``overwrite``; then the rename
    replaces the directory entry itself, never what a symlink points at.
    """
    if not overwrite and os.path.lexists(out):
        fail(f"{out} already exists; pass --force to replace it.", ExitCode.USAGE, url)
    if overwrite and os.path.lexists(out) and not (out.is_file() or out.is_symlink()):
        fail(f"{out} is not a regular file; choose another --out.", ExitCode.USAGE, url)
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        fail(
            f"--out {out}: the directory {directory} does not exist; create it first "
            "(mkdir -p) or choose another --out.",
            ExitCode.USAGE,
            url,
        )
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=directory)
    except OSError as exc:
        fail(f"--out {out}: cannot create a file in {directory} ({exc.strerror}).", url=url)
    partial = Path(name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp's 0600 is still narrowed by the umask; make it exact
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            count = run(_export(url, patient, resource_type, stream, actor))
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(partial, out)
        else:
            # link() fails if the name was taken meanwhile: the target is never clobbered.
            try:
                os.link(partial, out, follow_symlinks=False)
            except FileExistsError:
                fail(f"{out} appeared during the export; nothing was replaced.", ExitCode.FAILED)
            except OSError:
                # A file system without hard links: the (racy) check of lexists is all there is.
                if os.path.lexists(out):
                    fail(f"{out} appeared during the export; nothing was replaced.")
                os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return count
