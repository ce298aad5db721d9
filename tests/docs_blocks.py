"""Read a markdown page for tests: its fenced SQL blocks, its sections and its tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["MarkdownTable", "SqlBlock", "section", "sql_blocks", "tables"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


@dataclass(frozen=True)
class SqlBlock:
    """A ```sql block: its title (the first ``-- `` comment line), its text and its line."""

    title: str
    sql: str
    line: int


@dataclass
class MarkdownTable:
    """A pipe table: the heading it sits under, its header cells and its rows of cells."""

    heading: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


def _fenced(markdown: str) -> list[tuple[str, str, int]]:
    blocks: list[tuple[str, str, int]] = []
    lang: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        match = _FENCE.match(line)
        if lang is None:
            if match:
                lang, body, start = match[1], [], number
        elif line.strip() == "```":
            blocks.append((lang, "\n".join(body), start))
            lang = None
        else:
            body.append(line)
    if lang is not None:
        raise ValueError(f"unclosed code fence opened at line {start}")
    return blocks


def sql_blocks(markdown: str) -> list[SqlBlock]:
    """Every ```sql block, titled by its first line (which must be a ``-- `` comment)."""
    result = []
    for lang, body, line in _fenced(markdown):
        if lang != "sql":
            continue
        first = body.lstrip().splitlines()[0] if body.strip() else ""
        if not first.startswith("-- "):
            raise ValueError(f"the sql block at line {line} does not start with a -- title")
        result.append(SqlBlock(first.removeprefix("-- ").strip(), body, line))
    return result


def _without_fences(markdown: str) -> list[str]:
    lines, inside = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line) or (inside and line.strip() == "```"):
            inside = not inside
            continue
        lines.append("" if inside else line)
    return lines


def section(markdown: str, title: str) -> str:
    """The text under the ``## title`` heading, up to the next heading of that level or above."""
    out: list[str] = []
    level = 0
    for line in _without_fences(markdown):
        match = _HEADING.match(line)
        if match and level and len(match[1]) <= level:
            break
        if level:
            out.append(line)
        elif match and match[2] == title:
            level = len(match[1])
    if not level:
        raise ValueError(f"no section titled {title!r}")
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(markdown: str) -> list[MarkdownTable]:
    """Every pipe table (header, separator, rows) with the heading above it."""
    found: list[MarkdownTable] = []
    heading = ""
    current: MarkdownTable | None = None
    lines = _without_fences(markdown)
    for i, line in enumerate(lines):
        match = _HEADING.match(line)
        if match:
            heading = match[2]
        if not line.lstrip().startswith("|"):
            current = None
            continue
        if current is None:
            is_header = i + 1 < len(lines) and re.fullmatch(r"\s*\|[\s:|-]+\|\s*", lines[i + 1])
            if is_header:
                current = MarkdownTable(heading, _cells(line))
                found.append(current)
            continue
        if re.fullmatch(r"\s*\|[\s:|-]+\|\s*", line):
            continue
        current.rows.append(_cells(line))
    return found
