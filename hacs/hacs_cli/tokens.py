"""`hacs token revoke`: revoke one access token (`--jti`) or every token of an actor (`--actor`).

The revocation is stored in the database and audited as `token.revoke`; every process that
checks revocations refuses the token within its staleness (`HACS_REVOCATION_TTL`, default 30 s).
Acts as the actor of `HACS_TOKEN` (which needs `admin:*`), else as the operator's `hacs-cli`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from hacs_cli.common import (
    DatabaseUrlOption,
    ExitCode,
    check_configuration,
    cli_errors,
    command_group,
    console,
    database_url,
    fail,
    preflight,
    run,
)
from hacs_cli.fhir import acting_actor

if TYPE_CHECKING:
    from hacs_auth import Actor

__all__ = ["app", "register", "revoke_command"]

app, register = command_group(
    "token",
    "Revoke hacs access tokens (stored in the database, checked at verification).",
)


def _cutoff(before: str | None) -> datetime | None:
    if before is None:
        return None
    try:
        parsed = datetime.fromisoformat(before)
    except ValueError:
        fail("--before must be an ISO 8601 time such as 2026-12-02T09:00:00+00:00.", ExitCode.USAGE)
    if parsed.tzinfo is None:
        fail("--before needs a UTC offset such as +00:00.", ExitCode.USAGE)
    return parsed


async def _revoke(
    url: str | None,
    actor: Actor,
    jti: str | None,
    actor_id: str | None,
    before: datetime | None,
    reason: str | None,
) -> datetime | None:
    from hacs_persistence.access.revocations import revoke_actor, revoke_token
    from hacs_persistence.adapter import create_postgres_adapter

    adapter = await create_postgres_adapter(url)
    try:
        if jti is not None:
            await revoke_token(adapter, jti, actor, reason=reason)
            return None
        assert actor_id is not None
        return await revoke_actor(adapter, actor_id, actor, issued_before=before, reason=reason)
    finally:
        await adapter.close()


@app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    jti: Annotated[
        str | None,
        typer.Option(
            "--jti",
            metavar="JTI",
            help="Revoke the one token whose `jti` claim this is.",
            show_default=False,
        ),
    ] = None,
    actor_id: Annotated[
        str | None,
        typer.Option(
            "--actor",
            metavar="ACTOR_ID",
            help="Revoke every token of this actor (its `user_id`) issued before --before.",
            show_default=False,
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="TIME",
            help="With --actor: the ISO 8601 time (with offset) before which tokens were "
            "issued; default now.",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why (stored with the revocation)."),
    ] = None,
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Revoke one token (--jti) or every token of an actor issued before a time (--actor).

    Stored in the database and audited as `token.revoke`; needs `admin:*` (the actor of
    HACS_TOKEN, else the operator's `hacs-cli`). Processes refuse the token within their
    revocation staleness (HACS_REVOCATION_TTL, default 30 s). Exit code 0 on success, 1 when
    refused, 2 for a usage error, 3 when the database cannot be reached.
    """
    url = database_url(ctx, database_url_option)
    if (jti is None) == (actor_id is None):
        fail("Give exactly one of --jti JTI or --actor ACTOR_ID.", ExitCode.USAGE, url)
    if before is not None and actor_id is None:
        fail("--before applies to --actor only.", ExitCode.USAGE, url)
    cutoff = _cutoff(before)
    with cli_errors(url):
        check_configuration(url)
        run(preflight(url))
        actor = acting_actor(url)
        stored = run(_revoke(url, actor, jti, actor_id, cutoff, reason))
    what = "The token" if jti is not None else "Every token of the actor issued before "
    when = "" if stored is None else stored.isoformat(timespec="seconds")
    console.print(
        f"{what}{when} is revoked; processes refuse it within their revocation staleness "
        "(HACS_REVOCATION_TTL, default 30 s).",
        markup=False,
        soft_wrap=True,
    )
