"""docs/agents.md: its Python example runs against the suite's PostgreSQL and prints what the
page says it prints."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import types
from pathlib import Path

import pytest

from tests.docs_blocks import _fenced as fenced_blocks

PAGE = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
MARKER = "Retention(keep_last=3"  # the LangGraph section's example, not the worked example's


def _example() -> tuple[str, str]:
    blocks = fenced_blocks(PAGE.read_text(encoding="utf-8"))
    # The LangGraph section's example (the MCP section's is run by tests/test_mcp.py).
    [index] = [
        i for i, (lang, body, _line) in enumerate(blocks) if lang == "python" and MARKER in body
    ]
    # What it prints is the text block right after it (the page has other examples' output).
    lang, printed, _line = blocks[index + 1]
    assert lang == "text"
    return blocks[index][1], printed


async def test_the_checkpointer_example_prints_what_the_page_shows(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, printed = _example()
    monkeypatch.setenv("DATABASE_URL", database_url)
    output = io.StringIO()

    # A module of its own: LangGraph reads the state class's annotations from its module.
    module = types.ModuleType("agents_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(PAGE), "exec"), module.__dict__)

    await asyncio.to_thread(run)
    assert output.getvalue().strip() == printed.strip()


def test_the_page_names_no_machine_path() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert "/work" not in text and "shared/data" not in text
