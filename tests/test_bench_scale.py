"""The scale benchmark's harness at a tiny size: every metric of every stage, and --resume.

Only the harness is tested (values present and sane), never a time: `make bench-scale` is the
measurement.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bench import scale

from tests.conftest import admin_connect, db_connect, with_database

STAGE_KEYS = {
    "target",
    "resources",
    "loaded",
    "load_seconds",
    "load_rate",
    "vacuum_seconds",
    "database_bytes",
    "bytes_per_resource",
    "versions_bytes",
    "versions_heap_bytes",
    "versions_pk_bytes",
    "versions_pk_levels",
    "versions_pk_levels_from",
    "version_rows",
    "audit_rows",
    "ops",
    "analytics_ms",
    "retention",
    "measured_at",
}
POSITIVE = [k for k in sorted(STAGE_KEYS) if k not in {"ops", "retention", "measured_at"}]
POSITIVE.remove("versions_pk_levels_from")


@pytest.fixture
async def scale_database(server_url: str) -> AsyncIterator[str]:
    """A database name of the test's own, dropped afterwards."""
    name = f"hacs_bench_scale_{uuid.uuid4().hex[:8]}"
    yield name
    admin = await admin_connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def check_stage(stage: dict[str, Any]) -> None:
    """Every metric of one stage is there and sane."""
    assert set(stage) == STAGE_KEYS
    for key in POSITIVE:
        assert stage[key] > 0, key
    assert stage["versions_pk_levels_from"] in ("bt_metap", "estimate")
    assert stage["resources"] >= stage["target"]
    # Every patient has two versions, so there are more versions than resources.
    assert stage["version_rows"] > stage["resources"]
    assert set(stage["ops"]) == set(scale.OPS)
    for op, s in stage["ops"].items():
        assert 0 < s["p50"] <= s["p95"], op
        assert 0 < s["raw_p50"] <= s["raw_p95"], op
        assert s["ratio_p50"] == pytest.approx(s["p50"] / s["raw_p50"])
        assert s["n"] == 10
    assert stage["retention"]["rows"] == stage["audit_rows"] // 12
    assert stage["retention"]["ms"] > 0


async def test_stages_report_every_metric_and_resume_loads_only_the_rest(
    server_url: str, scale_database: str, tmp_path: Path
) -> None:
    results = tmp_path / "scale.json"
    options = scale.Options(
        size=2000, stages=[500], json_path=results, ops=10, database=scale_database
    )
    first = await scale.run(options, server_url)
    assert [s["target"] for s in first] == [500]
    check_stage(first[0])
    assert first[0]["loaded"] == 500

    options.stages, options.resume = [500, 2000], True
    stages = await scale.run(options, server_url)
    written = json.loads(results.read_text(encoding="utf-8"))
    assert written["stages"] == stages
    assert [s["target"] for s in stages] == [500, 2000]
    assert stages[0] == first[0]  # kept, not measured again
    check_stage(stages[1])
    # Continued from what was stored (500 loaded plus the single saves), not from zero.
    assert 500 < stages[1]["resources"] - stages[1]["loaded"] < 2000
    conn = await db_connect(with_database(server_url, scale_database))
    try:
        assert await scale.count_resources(conn) > stages[1]["resources"]  # + the single saves
        observations = await conn.fetchval("SELECT count(*) FROM hacs_core.observations")
    finally:
        await conn.close()
    assert observations < 2000  # one patient per 20 observations; nothing loaded twice
    growth = {(r["op"], r["quantile"]) for r in written["growth"]}
    assert growth == {(op, q) for op in scale.OPS for q in ("p50", "p95")}
    table = scale.markdown(stages).splitlines()
    assert table[0] == "| Stage | 500 | 2,000 |"
    assert len(table) == 2 + 12 + 1 + 2 + len(scale.OPS)
    assert all(line.count("|") == 4 for line in table[:14])
    assert table[-1].startswith("| history | ")


def test_default_stages_are_a_tenth_of_a_million_a_million_and_the_size() -> None:
    assert scale.parse(["--size", "10000000"]).stage_sizes() == [100_000, 1_000_000, 10_000_000]
    assert scale.parse(["--size", "500000"]).stage_sizes() == [100_000, 500_000]
    assert scale.parse(["--size", "2000", "--stages", "2000", "500", "9000"]).stage_sizes() == [
        500,
        2000,
    ]
