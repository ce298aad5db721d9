"""Rough edges of the `hacs` command: relative downgrades, a closed stdout (`| head`), no-op
upgrades, Alembic's own command saying what it did, and docs/cli.md showing real output.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_models import Actor, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.config import build_connection_target, load_settings
from hacs_persistence.migrations import head_revision
from hacs_persistence.schema import metadata
from tests.docs_blocks import section

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
DOC_URL = "postgresql://hacs:***@db.example.org/hacs"
TABLES = len(metadata.tables)
ADMIN = Actor(name="cli-edges-test", role="system", permissions=["admin:*"])
runner = CliRunner()


def invoke(url: str, *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, ["--database-url", url, *args], input=input)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HACS_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "hacs"), env.get("PYTHONPATH")]))
    return env


HACS = [sys.executable, "-c", "import sys\nfrom hacs_cli.main import app\nsys.exit(app())"]


def _revision(url: str) -> str | None:
    result = invoke(url, "db", "status", "--json")
    value = json.loads(result.stdout)["current_revision"]
    return str(value) if value is not None else None


# --- hacs db downgrade -1, hacs db upgrade at head -------------------------------------------


def test_downgrade_by_a_relative_step(database_url: str) -> None:
    head = head_revision()
    assert head is not None and _revision(database_url) == head
    asked = invoke(database_url, "db", "downgrade", "-1", input="n\n")
    assert asked.exit_code == ExitCode.FAILED, asked.output  # was 2: "No such option: -1"
    below = f"{int(head) - 1:04d}"
    assert f"from {head} to {below}? This drops what came after {below}" in asked.stdout
    assert "cancelled" in asked.stderr
    assert _revision(database_url) == head

    done = invoke(database_url, "db", "downgrade", "-1", "--yes")
    assert done.exit_code == ExitCode.OK, done.output
    assert f"revision {below} (head {head})" in done.stdout
    assert _revision(database_url) == below

    up = invoke(database_url, "db", "upgrade", "+1")
    assert up.exit_code == ExitCode.OK, up.output
    assert _revision(database_url) == head


def test_a_misspelt_option_is_not_taken_for_a_revision(database_url: str) -> None:
    result = invoke(database_url, "db", "downgrade", "--yse")
    assert result.exit_code == ExitCode.USAGE, result.output
    message = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # Rich's error box
    assert "'--yse' is neither an option of this command nor a revision" in message
    assert _revision(database_url) == head_revision()


def test_upgrade_at_head_says_there_was_nothing_to_do(database_url: str) -> None:
    result = invoke(database_url, "db", "upgrade")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout.startswith(f"Already at head {head_revision()}: ")
    assert "Upgraded" not in result.stdout


# --- a closed stdout -------------------------------------------------------------------------


def test_a_closed_stdout_ends_the_command_quietly() -> None:
    # Deterministic: the pipe's reading end is closed before hacs writes its first byte.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [*HACS, "docs", "schema"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=120,
        )
    finally:
        os.close(writer)
    # Was exit 1 with "Error: Unexpected BrokenPipeError: [Errno 32] Broken pipe".
    assert (done.returncode, done.stderr) == (ExitCode.BROKEN_PIPE, "")


def test_export_piped_into_head(database_url: str) -> None:
    async def seed() -> None:
        async with await create_postgres_adapter(database_url) as adapter:
            patients = [
                Patient(id=f"patient-{n:05d}", full_name=f"Test Patient {n}", gender="other")
                for n in range(1500)
            ]
            await adapter.save_many(patients, ADMIN)

    asyncio.run(seed())
    # Far more than a pipe holds: hacs is still writing when head exits.
    command = shlex.join([*HACS, "--database-url", database_url, "export", "--type", "Patient"])
    done = subprocess.run(
        ["bash", "-c", f'{command} | head -1; echo "exit=${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.stdout.count("\n") == 1 and '"resourceType":"Patient"' in done.stdout
    assert done.stderr == f"exit={int(ExitCode.BROKEN_PIPE)}\n"  # no traceback, no "Error:"


# --- alembic itself says what it did ---------------------------------------------------------


def test_alembic_upgrade_head_prints_what_it_ran(empty_database_url: str) -> None:
    url = f"database_url={empty_database_url}"
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", url, "upgrade", "head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # alembic.ini's logging section: Alembic's INFO lines on stderr (they were missing).
    assert "INFO  [alembic.runtime.migration] Running upgrade  -> 0001" in done.stderr
    assert f"Running upgrade {int(head_revision() or 0) - 1:04d} -> {head_revision()}" in (
        done.stderr
    )


def test_messages_send_users_to_hacs_db_upgrade() -> None:
    told = re.compile(r"run `alembic upgrade head`|run ``alembic upgrade head``")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "hacs").rglob("*.py"))
        if told.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- docs/cli.md shows what the commands print today -----------------------------------------

_CONSOLE = re.compile(r"```console\n(.*?)\n```", re.DOTALL)


def _console_blocks(title: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) of the first console block under ``## title``."""
    text = CLI_DOC.read_text(encoding="utf-8")
    body = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    match = _CONSOLE.search(body)
    assert match, f"docs/cli.md: no console block under ## {title}"
    runs: list[tuple[str, list[str]]] = []
    for line in match[1].splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            runs[-1][1].append(line)
    return runs


def _normalised(output: str, masked: str) -> list[str]:
    return [line.rstrip() for line in output.replace(masked, DOC_URL).rstrip().splitlines()]


def test_cli_doc_shows_the_real_output(empty_database_url: str) -> None:
    assert section(CLI_DOC.read_text(encoding="utf-8"), "hacs db upgrade")
    masked = build_connection_target(empty_database_url, load_settings()).masked
    for title in ("hacs db upgrade", "hacs db status", "hacs db check", "hacs db downgrade"):
        for command, shown in _console_blocks(title):
            args = shlex.split(command)
            assert args[0] == "hacs", command
            answer = "y\n" if shown and shown[0].endswith("[y/N]: y") else None
            result = invoke(empty_database_url, *args[1:], input=answer)
            assert result.exit_code == ExitCode.OK, result.output
            assert _normalised(result.output, masked) == shown, f"docs/cli.md: $ {command}"
