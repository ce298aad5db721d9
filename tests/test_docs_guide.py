"""The user guide runs as written: every block of docs/connect_postgres.md prints what it shows.

The blocks run in a fresh interpreter, in order, in one namespace (the way ``make demo`` runs them),
against a freshly migrated database given as DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hacs_persistence.ops.demo import extract_blocks

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "connect_postgres.md"

RUNNER = """
import json, sys
from pathlib import Path
from hacs_persistence.ops.demo import extract_blocks, run_blocks
blocks = extract_blocks(Path(sys.argv[1]).read_text(encoding="utf-8"))
print("\\x00" + json.dumps(run_blocks(blocks)))
"""

# What legitimately differs between runs: generated ids, timestamps, the database's name.
_VARIABLE = [
    (re.compile(r"\b([a-z]+)-[0-9a-f]{8}\b"), r"\1-<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00"), "<utc-timestamp>"),
    (re.compile(r"(Database: ).+"), r"\1<database>"),
    (re.compile(r"(PostgreSQL: PostgreSQL )[\d.]+"), r"\1<version>"),
    (re.compile(r"(URL preview: postgresql://).+"), r"\1<rest>"),
]


def normalise(text: str) -> list[str]:
    lines = []
    for line in text.rstrip().splitlines():
        for pattern, replacement in _VARIABLE:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return lines


def test_every_guide_block_has_its_output_shown() -> None:
    blocks = extract_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) == 7
    # The prelude defines the names the query block borrows from the authentication guide.
    assert [b.expected_output is not None for b in blocks] == [
        True,
        True,
        True,
        True,
        False,
        True,
        True,
    ]


def test_user_guide_runs_as_written(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HACS_DATABASE_URL"}
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(GUIDE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    outputs = json.loads(result.stdout.split("\x00", 1)[1])
    blocks = extract_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(outputs) == len(blocks)
    for block, output in zip(blocks, outputs, strict=True):
        if block.expected_output is None:
            assert output == ""
            continue
        assert normalise(output) == normalise(block.expected_output), (
            f"block at line {block.line} printed:\n{output}"
        )
    # The save block's ids look like the guide's: type prefix and 8 hex digits.
    saved = outputs[3]
    assert re.search(r"Patient ID: patient-[0-9a-f]{8}\n", saved)
    assert re.search(r"Observation ID: observation-[0-9a-f]{8}\n", saved)
    assert re.search(r"Timestamp: \S+\+00:00", saved)
    assert "Name: Carlos Miguel Fernandez" in outputs[5]
    assert "Retrieved by: dr_martinez" in outputs[5]
