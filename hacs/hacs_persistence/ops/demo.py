"""Run the user guide (``docs/connect_postgres.md``) block by block, as ``make demo`` does.

The blocks run in order in one namespace, the way an IPython terminal runs them: a block with
top-level ``await`` runs on one persistent event loop, the others as plain code. With no
``DATABASE_URL``/``HACS_DATABASE_URL`` the embedded PostgreSQL is started and its URL exported as
``DATABASE_URL``, so the guide's first block sees a configured database.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import logging
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hacs_persistence.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    HacsPersistenceError,
)
from hacs_persistence.ops.resources import user_guide

__all__ = ["GuideBlock", "extract_blocks", "main", "prepare_environment", "run_blocks"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_OUTPUT_LABEL = re.compile(r"^\**Output:\**\s*$")


@dataclass(frozen=True)
class GuideBlock:
    """A Python block of a guide and the output the guide shows for it (if any)."""

    code: str
    expected_output: str | None
    line: int


def extract_blocks(markdown: str) -> list[GuideBlock]:
    """Every ```python block, paired with the fenced block after an ``Output:`` label."""
    lines = markdown.splitlines()
    fences: list[tuple[str, int, str]] = []  # (language, first line number, body)
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].rstrip())
        if match is None:
            i += 1
            continue
        start, content = i, []
        i += 1
        while i < len(lines) and not lines[i].rstrip().startswith("```"):
            content.append(lines[i])
            i += 1
        fences.append((match.group(1), start + 1, "\n".join(content)))
        i += 1
    blocks: list[GuideBlock] = []
    for index, (language, line, body) in enumerate(fences):
        if language != "python":
            continue
        expected = None
        if index + 1 < len(fences) and fences[index + 1][0] == "":
            next_line = fences[index + 1][1]
            between = lines[line + body.count("\n") + 1 : next_line - 1]
            if any(_OUTPUT_LABEL.match(text.strip()) for text in between):
                expected = fences[index + 1][2]
        blocks.append(GuideBlock(body, expected, line))
    return blocks


class _Tee(io.StringIO):
    def __init__(self, echo: TextIO | None) -> None:
        super().__init__()
        self._echo = echo

    def write(self, text: str) -> int:
        if self._echo is not None:
            self._echo.write(text)
        return super().write(text)


def run_blocks(
    blocks: list[GuideBlock], *, echo: TextIO | None = None, namespace: dict[str, Any] | None = None
) -> list[str]:
    """Run the blocks in one namespace; returns what each printed."""
    namespace = namespace if namespace is not None else {"__name__": "__guide__"}
    loop = asyncio.new_event_loop()
    outputs: list[str] = []
    try:
        for block in blocks:
            code = compile(
                block.code,
                f"<guide block at line {block.line}>",
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            sink = _Tee(echo)
            with contextlib.redirect_stdout(sink):
                if code.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(code, namespace))
                else:
                    exec(code, namespace)
            outputs.append(sink.getvalue())
    finally:
        # Let the engines opened on the persistent loop close with it.
        loop.run_until_complete(_cancel_pending())
        loop.close()
    return outputs


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def prepare_environment() -> None:
    """Export the database URL (embedded if none) and a throw-away JWT secret if none is set.

    On the embedded server the schema is migrated first, as ``hacs_owner`` (with the application
    role's grants); the guide then runs as ``hacs_app``, as an application would. The exported
    URL holds no password (the guide prints its start): asyncpg reads it from ``PGPASSFILE``.
    """
    from hacs_persistence.db.config import resolve_database_url
    from hacs_persistence.db.embedded import ensure_embedded_server
    from hacs_persistence.db.roles import APP_ROLE, DATABASE
    from hacs_persistence.ops.migrations import upgrade

    url, _source = resolve_database_url()
    if url is None:
        server = ensure_embedded_server()
        asyncio.run(upgrade())
        os.environ["DATABASE_URL"] = server.url(APP_ROLE, DATABASE, with_password=False)
        os.environ["PGPASSFILE"] = str(server.passfile)
    if not os.environ.get("HACS_JWT_SECRET"):
        os.environ["HACS_JWT_SECRET"] = secrets.token_urlsafe(48)
        print(
            "hacs demo: HACS_JWT_SECRET was not set; using a throw-away secret for this run only.",
            file=sys.stderr,
        )


def guide_path() -> Path:
    """The user guide: packaged with the wheel, or ``docs/connect_postgres.md`` of a checkout."""
    return user_guide()


async def _check_connection() -> None:
    """Connect once before the guide runs, so a dead server is one line, not a traceback."""
    from sqlalchemy import text

    from hacs_persistence.db.engine import describe_failure, one_off_connection, resolve_database

    resolved = await resolve_database()
    try:
        async with one_off_connection(resolved) as conn:
            await conn.execute(text("SELECT 1"))
    except HacsPersistenceError as exc:
        raise DatabaseUnavailableError(
            f"Cannot connect to the database at {resolved.target.masked}: "
            f"{describe_failure(exc, resolved)}"
        ) from exc


def _failed(exc: BaseException, code: int) -> int:
    from hacs_persistence.db.config import redact

    print(f"Error: {redact(' '.join(str(exc).split()))}", file=sys.stderr)
    return code


def main() -> int:
    """Migrate (through the guide's own block) and run every block of the guide.

    Exit code 0 when every block ran; 2 for an invalid setting and 3 when the database cannot
    be reached (one line on stderr each, as ``hacs demo``).
    """
    # The demo is the guide's program: like one, it shows the libraries' faults (WARNING and
    # up: e.g. why run_migration() returned False), not their expected outcomes (INFO).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        prepare_environment()
        asyncio.run(_check_connection())
    except ConfigurationError as exc:
        return _failed(exc, 2)
    except DatabaseUnavailableError as exc:
        return _failed(exc, 3)
    except HacsPersistenceError as exc:
        return _failed(exc, 1)
    path = guide_path()
    blocks = extract_blocks(path.read_text(encoding="utf-8"))
    print(f"Running {len(blocks)} blocks of {path.name}\n")
    run_blocks(blocks, echo=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
