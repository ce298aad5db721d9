"""`python -m bench.scale`: load a realistic mix in stages and measure what growth costs.

At each stage (by default 100,000, 1,000,000, then ``--size`` resources) the harness loads patients
and their observations through ``save_many`` up to the stage's size, then measures the single
resource paths (save, point read, patient search, history) against raw asyncpg doing the same SQL
work, one analytics aggregate, a month of audit retention, and the database's size. The question
it answers: do the single-resource paths stay flat as the tables grow (target: p50 and p95 at the
largest stage within 1.3x of the first)? ``--resume`` keeps the database and the stages already in
the JSON, so a long run can be continued. Results: tables on stdout and
``bench/results/scale-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench import data, raw
from hacs_models import Actor, Observation, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale-latest.json"
SCALE_DB = "hacs_bench_scale"
DEFAULT_STAGES = (100_000, 1_000_000)
BATCH = 20_000
OBSERVATIONS_PER_PATIENT = 20
TARGET = 1.3
OPS = ("save", "read", "search", "history")
ACTOR = Actor(name="bench-scale", role="system", permissions=["admin:*"])
RAW_ACTOR = (ACTOR.id, ACTOR.name, str(ACTOR.role.value))

# Raw baselines for the paths bench/raw.py does not cover; the same tables, rows and audit row.
SEARCH_OBSERVATIONS = """
WITH page AS (
    SELECT v.document::text AS document, o.id, o.patient_id::text AS patient_ref
    FROM hacs_core.observations o
    JOIN hacs_core.resource_versions v
      ON v.resource_type = o.resource_type AND v.id = o.id AND v.version = o.version
    WHERE o.patient_id = $1 AND o.resource_type = 'Observation' AND o.deleted_at IS NULL
    ORDER BY o.id LIMIT 51
), a AS (
    INSERT INTO hacs_audit.audit_events
        (actor_id, actor_name, actor_role, action, resource_type, outcome, result_count,
         detail, resource_ids, patient_ids)
    SELECT $2, $3, $4, 'search', 'Observation', 'success',
           (SELECT count(*) FROM (SELECT id FROM page ORDER BY id LIMIT 50) r),
           'filters=patient_id:eq;order_by=id',
           (SELECT array_agg(DISTINCT id) FROM (SELECT id FROM page ORDER BY id LIMIT 50) r),
           (SELECT array_agg(DISTINCT patient_ref)
            FROM (SELECT id, patient_ref FROM page ORDER BY id LIMIT 50) r)
)
SELECT document FROM page ORDER BY id
"""
HISTORY = """
SELECT version, operation, changed_at, changed_by, document::text AS document
FROM hacs_core.resource_versions WHERE resource_type = 'Patient' AND id = $1
ORDER BY version DESC
"""
HISTORY_AUDIT = """
INSERT INTO hacs_audit.audit_events
    (actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome, result_count,
     detail, resource_ids, patient_ids)
VALUES ($2, $3, $4, 'history', 'Patient', $1, 'success', $5, $6, ARRAY[$1], ARRAY[$1])
"""
ANALYTICS = """
SELECT code, count(*) AS n, avg(value_numeric) AS mean
FROM hacs_core.observations WHERE deleted_at IS NULL GROUP BY code ORDER BY code
"""
# Audit retention: a month of old rows, written as the superuser with triggers off (the way the
# test suite backdates rows; bench-only) into that calendar month's own partition, which
# ``ensure_audit_partitions`` creates first as ``hacs db maintain`` would have at the time;
# then the owner's audited function removes the month (a whole partition: detached, dropped).
RETENTION_AGE_DAYS = 400
OLD_MONTH = f"date_trunc('month', now() - interval '{RETENTION_AGE_DAYS} days', 'UTC')"
ENSURE_OLD_MONTH = f"SELECT count(*) FROM hacs_audit.ensure_audit_partitions(0, {OLD_MONTH})"
BACKDATE = f"""
INSERT INTO hacs_audit.audit_events
    (occurred_at, actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome)
SELECT {OLD_MONTH} + (g % (28 * 86400)) * interval '1 second',
       $2, $3, $4, 'read', 'Observation', 'observation-old-' || g, 'success'
FROM generate_series(1, $1::int) g
"""
# Whether the month still has a partition attached (retention detaches and drops it whole).
OLD_MONTH_PARTITIONS = f"""
SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'hacs_audit.audit_events'::regclass
  AND c.relname = 'audit_events_' || to_char({OLD_MONTH} AT TIME ZONE 'UTC', '"y"YYYY"m"MM')
"""
# The age that puts the cutoff at (just after) the end of that month.
MONTH_END_AGE = f"SELECT now() - ({OLD_MONTH} + interval '1 month')"


@dataclass
class Options:
    """What one run does."""

    size: int = 1_000_000
    stages: list[int] = field(default_factory=list)
    resume: bool = False
    json_path: Path = RESULTS
    ops: int = 300
    database: str = SCALE_DB
    markdown: bool = False

    def stage_sizes(self) -> list[int]:
        """The stages, ascending, each at most ``size``; by default 0.1M, 1M, then ``size``."""
        chosen = self.stages or [*DEFAULT_STAGES, self.size]
        return sorted({s for s in chosen if 0 < s <= self.size})


class Ids:
    """Ids unique across runs: a token per process, so a resumed run never collides."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(3)
        self.serial = itertools.count(1)

    def next(self, prefix: str) -> str:
        """A fresh id, e.g. ``patient-a1b2c3-1f``."""
        return f"{prefix}-{self.token}-{next(self.serial):x}"


def _patients(n: int, rng: random.Random, ids: Ids) -> list[Patient]:
    patients = data.patients(n, rng)
    for p in patients:
        p.id = ids.next("patient")
    return patients


def _observations(
    n: int, patient_ids: list[str], rng: random.Random, ids: Ids
) -> list[Observation]:
    observations = data.observations(n, patient_ids, rng)
    for o in observations:
        o.id = ids.next("observation")
    return observations


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method: p50 is the median)."""
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[q - 1])


def op_stats(ours: Sequence[float], base: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in ms of hacs and of raw asyncpg, and their ratios."""
    p50, p95 = percentile(ours, 50), percentile(ours, 95)
    r50, r95 = percentile(base, 50), percentile(base, 95)
    return {
        "p50": p50,
        "p95": p95,
        "raw_p50": r50,
        "raw_p95": r95,
        "ratio_p50": p50 / r50,
        "ratio_p95": p95 / r95,
        "n": len(ours),
    }


async def _alternating(
    targets: Sequence[Any],
    ours: Callable[[Any], Awaitable[Any]],
    base: Callable[[Any], Awaitable[Any]],
    warmup: int,
) -> dict[str, float]:
    """Each op timed for hacs then for raw on the next target, alternately; ms per op.

    The first ``warmup`` pairs (prepared statements, pools, caches) are not counted.
    """
    mine, theirs = [], []
    for index, (first, second) in enumerate(zip(targets[0::2], targets[1::2], strict=False)):
        start = time.perf_counter()
        await ours(first)
        took = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        await base(second)
        if index >= warmup:
            mine.append(took)
            theirs.append((time.perf_counter() - start) * 1e3)
    return op_stats(mine, theirs)


def _connect_args(url: str, database: str | None = None) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": database or parsed.database or "postgres",
    }


async def prepare_database(server_url: str, name: str, keep: bool) -> str:
    """The scale database, created (or kept, with ``keep``) and migrated to head."""
    from hacs_persistence.migrations import upgrade

    admin = await asyncpg.connect(**_connect_args(server_url, "postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not keep:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not keep:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


async def count_resources(conn: asyncpg.Connection) -> int:
    """Resources stored: the rows of the typed tables the mix writes."""
    value = await conn.fetchval(
        "SELECT (SELECT count(*) FROM hacs_core.patients) "
        "+ (SELECT count(*) FROM hacs_core.observations)"
    )
    return int(value)


async def load_to(
    adapter: PostgreSQLAdapter, start: int, target: int, rng: random.Random, ids: Ids
) -> tuple[int, float]:
    """Save batches until ``target`` resources are stored; (resources loaded, seconds in hacs).

    Each batch: one patient per 20 observations, saved new, then every patient of the batch
    updated once (so patients have a history of two versions). Only ``save_many`` is timed,
    not the generation of the models; one batch is in memory at a time.
    """
    loaded, seconds = 0, 0.0
    while start + loaded < target:
        n = min(BATCH, target - start - loaded)
        patients = _patients(max(1, n // (OBSERVATIONS_PER_PATIENT + 1)), rng, ids)
        observations = _observations(n - len(patients), [p.id for p in patients], rng, ids)
        began = time.perf_counter()
        await adapter.save_many([*patients, *observations], ACTOR)
        for p in patients:
            p.active = not p.active
        await adapter.save_many(patients, ACTOR)
        seconds += time.perf_counter() - began
        loaded += n
        if loaded % (10 * BATCH) == 0:
            print(f"  ...{start + loaded:,} resources", flush=True)
    return loaded, seconds


async def sizes(conn: asyncpg.Connection, resources: int) -> dict[str, Any]:
    """Database bytes per resource; resource_versions' sizes and its primary key's depth."""
    row = await conn.fetchrow(
        "SELECT pg_database_size(current_database()) AS db, "
        "pg_total_relation_size('hacs_core.resource_versions') AS versions, "
        "pg_relation_size('hacs_core.resource_versions') AS versions_heap, "
        "pg_relation_size('hacs_core.pk_resource_versions') AS versions_pk, "
        "(SELECT count(*) FROM hacs_core.resource_versions) AS version_rows, "
        "(SELECT count(*) FROM hacs_audit.audit_events) AS audit_rows"
    )
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        meta = await conn.fetchrow("SELECT level FROM bt_metap('hacs_core.pk_resource_versions')")
        # bt_metap's level counts from the leaves (0): the depth is one more.
        levels, source = int(meta["level"]) + 1, "bt_metap"
    except asyncpg.PostgresError:
        # Without pageinspect: 8 kB pages of ~100-byte entries fan out ~80 ways per level.
        pages = max(1, int(row["versions_pk"]) // 8192)
        levels, source = 1, "estimate"
        while pages > 1:
            pages //= 80
            levels += 1
    return {
        "database_bytes": int(row["db"]),
        "bytes_per_resource": int(row["db"]) / max(1, resources),
        "versions_bytes": int(row["versions"]),
        "versions_heap_bytes": int(row["versions_heap"]),
        "versions_pk_bytes": int(row["versions_pk"]),
        "versions_pk_levels": levels,
        "versions_pk_levels_from": source,
        "version_rows": int(row["version_rows"]),
        "audit_rows": int(row["audit_rows"]),
    }


async def measure_ops(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, ops: int, rng: random.Random, ids: Ids
) -> dict[str, dict[str, float]]:
    """Single save, point read, patient search and history: hacs vs raw, alternating."""
    warmup = max(2, ops // 15)
    count = 2 * (warmup + ops)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id FROM hacs_core.patients ORDER BY random() LIMIT $1", count
        )
    stored = [r["id"] for r in rows]
    while len(stored) < count:  # tiny databases: reuse ids
        stored = [*stored, *stored]
    stored = stored[:count]

    async def raw_save(p: Patient) -> None:
        async with pool.acquire() as conn:
            args = [p.id, p.model_dump_json(), RAW_ACTOR[0], *raw.patient_keys(p), *RAW_ACTOR[1:]]
            await conn.fetchrow(raw.INSERT_PATIENT, *args)

    async def raw_read(pid: str) -> Patient:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(raw.READ_PATIENT, pid, *RAW_ACTOR)
        return Patient.model_validate_json(row["document"])

    async def raw_search(pid: str) -> list[Observation]:
        async with pool.acquire() as conn:
            rows = await conn.fetch(SEARCH_OBSERVATIONS, pid, *RAW_ACTOR)
        return [Observation.model_validate_json(r["document"]) for r in rows]

    async def raw_history(pid: str) -> list[Patient]:
        async with pool.acquire() as conn:
            rows = await conn.fetch(HISTORY, pid)
        found = [Patient.model_validate_json(r["document"]) for r in rows]
        async with pool.acquire() as conn:
            versions = "versions=" + ",".join(str(r["version"]) for r in rows)
            await conn.execute(HISTORY_AUDIT, pid, *RAW_ACTOR, len(rows), versions)
        return found

    async def ours_search(pid: str) -> Any:
        return await adapter.search(Observation, ACTOR, filters={"patient_id": pid})

    results = {
        "save": await _alternating(
            _patients(count, rng, ids), lambda p: adapter.save(p, ACTOR), raw_save, warmup
        ),
        "read": await _alternating(
            stored, lambda pid: adapter.read(Patient, pid, ACTOR), raw_read, warmup
        ),
        "search": await _alternating(stored, ours_search, raw_search, warmup),
        "history": await _alternating(
            stored, lambda pid: adapter.history(Patient, pid, ACTOR), raw_history, warmup
        ),
    }
    return results


async def analytics_ms(pool: asyncpg.Pool) -> float:
    """Median of three runs of an average per code over every typed observation, in ms."""
    times = []
    async with pool.acquire() as conn:
        for _ in range(3):
            start = time.perf_counter()
            rows = await conn.fetch(ANALYTICS)
            times.append((time.perf_counter() - start) * 1e3)
    if not rows:
        raise AssertionError("the analytics aggregate found no observations")
    return statistics.median(times)


async def retention(pool: asyncpg.Pool, audit_rows: int) -> dict[str, float]:
    """A month of audit retention: a twelfth of the trail aged past the cutoff, then removed."""
    month = max(1, audit_rows // 12)
    async with pool.acquire() as conn:
        await conn.fetchval(ENSURE_OLD_MONTH)
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(BACKDATE, month, *RAW_ACTOR)
        max_age = await conn.fetchval(MONTH_END_AGE)
        partitioned = await conn.fetchval(OLD_MONTH_PARTITIONS)
        start = time.perf_counter()
        removed = await conn.fetchval(
            "SELECT hacs_audit.apply_retention($1, 'bench-scale')", max_age
        )
        elapsed = (time.perf_counter() - start) * 1e3
        kept = await conn.fetchval(OLD_MONTH_PARTITIONS)
    if removed != month:
        raise AssertionError(f"retention removed {removed} rows, expected {month}")
    if (partitioned, kept) != (1, 0):
        raise AssertionError(
            f"the old month had {partitioned} partition(s) before retention and {kept} after; "
            "expected its own partition, dropped whole"
        )
    return {"rows": int(removed), "ms": elapsed}


async def run_stage(
    target: int,
    adapter: PostgreSQLAdapter,
    pool: asyncpg.Pool,
    options: Options,
    rng: random.Random,
    ids: Ids,
) -> dict[str, Any]:
    """Load up to ``target`` resources, then take every measurement of the stage."""
    async with pool.acquire() as conn:
        start = await count_resources(conn)
    print(f"stage {target:,}: {start:,} resources stored, loading...", flush=True)
    loaded, seconds = await load_to(adapter, start, target, rng, ids)
    async with pool.acquire() as conn:
        resources = await count_resources(conn)
        began = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        vacuum = time.perf_counter() - began
        stored = await sizes(conn, resources)
    print(f"  loaded {loaded:,} in {seconds:.1f} s; measuring...", flush=True)
    stage: dict[str, Any] = {
        "target": target,
        "resources": resources,
        "loaded": loaded,
        "load_seconds": seconds,
        "load_rate": loaded / seconds if seconds else None,
        "vacuum_seconds": vacuum,
        **stored,
        "ops": await measure_ops(adapter, pool, options.ops, rng, ids),
        "analytics_ms": await analytics_ms(pool),
        "retention": await retention(pool, stored["audit_rows"]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return stage


def _read_previous(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    stages: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")).get("stages", [])
    return stages


def _write(path: Path, options: Options, stages: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "size": options.size,
        "stages": stages,
        "growth": growth(stages),
        "machine": {"cores": os.cpu_count()},
    }
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


async def run(options: Options, server_url: str | None = None) -> list[dict[str, Any]]:
    """Every stage of ``options`` (those already in the JSON are kept with ``--resume``)."""
    if server_url is None:
        from hacs_persistence.db.config import resolve_database_url
        from hacs_persistence.db.embedded import ensure_embedded_server

        server_url = os.environ.get("HACS_BENCH_DATABASE_URL") or resolve_database_url()[0]
        server_url = server_url or (await asyncio.to_thread(ensure_embedded_server)).superuser_url
    url = await prepare_database(server_url, options.database, keep=options.resume)
    wanted = options.stage_sizes()
    done = _read_previous(options.json_path) if options.resume else []
    stages = [s for s in done if s["target"] in wanted]
    measured = {s["target"] for s in stages}
    pool = await asyncpg.create_pool(
        **_connect_args(url), min_size=1, max_size=2, server_settings={"TimeZone": "UTC"}
    )
    adapter = await create_postgres_adapter(url)
    rng = random.Random()
    ids = Ids()
    try:
        for target in wanted:
            if target in measured:
                print(f"stage {target:,}: kept from {options.json_path.name}", flush=True)
                continue
            stages.append(await run_stage(target, adapter, pool, options, rng, ids))
            stages.sort(key=lambda s: s["target"])
            _write(options.json_path, options, stages)
            print(stage_table(stages[-1]), flush=True)
    finally:
        await adapter.close()
        await pool.close()
    return stages


def growth(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each later stage's p50 and p95 of the single-resource paths over the first stage's."""
    if len(stages) < 2:
        return []
    first = stages[0]
    rows = []
    for stage in stages[1:]:
        for op in OPS:
            for q in ("p50", "p95"):
                ratio = stage["ops"][op][q] / first["ops"][op][q]
                rows.append(
                    {
                        "stage": stage["target"],
                        "base": first["target"],
                        "op": op,
                        "quantile": q,
                        "ratio": ratio,
                        "passed": ratio <= TARGET,
                    }
                )
    return rows


def stage_table(stage: dict[str, Any]) -> str:
    """One stage as a fixed-width table."""
    mb = 2**20
    lines = [
        f"\nstage {stage['target']:,}: {stage['resources']:,} resources, "
        f"{stage['version_rows']:,} versions, {stage['audit_rows']:,} audit rows",
        f"  load     {stage['loaded']:,} in {stage['load_seconds']:.1f} s "
        f"({(stage['load_rate'] or 0):,.0f} resources/s)",
        f"  {'op':<10}{'p50 ms':>9}{'p95 ms':>9}{'raw p50':>9}{'raw p95':>9}"
        f"{'x p50':>7}{'x p95':>7}",
    ]
    for op in OPS:
        s = stage["ops"][op]
        lines.append(
            f"  {op:<10}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['raw_p50']:>9.2f}{s['raw_p95']:>9.2f}"
            f"{s['ratio_p50']:>7.2f}{s['ratio_p95']:>7.2f}"
        )
    lines += [
        f"  analytics (avg value per code): {stage['analytics_ms']:.0f} ms",
        f"  retention (a month): {stage['retention']['rows']:,} rows in "
        f"{stage['retention']['ms']:.0f} ms",
        f"  vacuum analyze: {stage['vacuum_seconds']:.1f} s",
        f"  database {stage['database_bytes'] / mb:,.0f} MB = "
        f"{stage['bytes_per_resource']:,.0f} bytes/resource; resource_versions "
        f"{stage['versions_bytes'] / mb:,.0f} MB (heap {stage['versions_heap_bytes'] / mb:,.0f}"
        f" MB, primary key {stage['versions_pk_bytes'] / mb:,.0f} MB, "
        f"{stage['versions_pk_levels']} levels)",
    ]
    return "\n".join(lines)


def growth_table(stages: list[dict[str, Any]]) -> str:
    """The later stages' p50/p95 over the first stage's, with PASS/MISS against 1.3x."""
    rows = growth(stages)
    if not rows:
        return "one stage only: no growth to compare"
    lines = [f"\n{'op':<10}{'quantile':>9}{'stage':>13}{'vs stage':>12}{'ratio':>7}  result"]
    for r in rows:
        lines.append(
            f"{r['op']:<10}{r['quantile']:>9}{r['stage']:>13,}{r['base']:>12,}{r['ratio']:>7.2f}"
            f"  {'PASS' if r['passed'] else 'MISS'} (<= {TARGET}x)"
        )
    return "\n".join(lines)


def _cell(stats: dict[str, float]) -> str:
    return (
        f"{stats['p50']:.2f} / {stats['p95']:.2f} ({stats['raw_p50']:.2f} / "
        f"{stats['raw_p95']:.2f}; {stats['ratio_p50']:.2f}x)"
    )


def markdown(stages: list[dict[str, Any]]) -> str:
    """The stages as the Markdown tables of docs/scaling.md (one column per stage)."""
    mb = 2**20
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (
            "resources (versions, audit rows)",
            lambda s: f"{s['resources']:,} ({s['version_rows']:,}, {s['audit_rows']:,})",
        ),
        ("load rate, save_many (resources/s)", lambda s: f"{s['load_rate'] or 0:,.0f}"),
        *(
            (f"{op} ms p50 / p95 (raw p50 / p95; ratio)", lambda s, op=op: _cell(s["ops"][op]))
            for op in OPS
        ),
        ("analytics: avg value per code (ms)", lambda s: f"{s['analytics_ms']:,.0f}"),
        (
            "audit retention of a month (rows, ms)",
            lambda s: f"{s['retention']['rows']:,} in {s['retention']['ms']:,.0f}",
        ),
        ("VACUUM ANALYZE after the load (s)", lambda s: f"{s['vacuum_seconds']:.1f}"),
        (
            "database (MB; bytes/resource)",
            lambda s: f"{s['database_bytes'] / mb:,.0f}; {s['bytes_per_resource']:,.0f}",
        ),
        (
            "resource_versions (MB: total, heap, primary key)",
            lambda s: (
                f"{s['versions_bytes'] / mb:,.0f}, {s['versions_heap_bytes'] / mb:,.0f}, "
                f"{s['versions_pk_bytes'] / mb:,.0f}"
            ),
        ),
        ("primary key depth (levels)", lambda s: str(s["versions_pk_levels"])),
    ]
    header = "| Stage | " + " | ".join(f"{s['target']:,}" for s in stages) + " |"
    lines = [header, "|---" * (len(stages) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f(s) for s in stages) + " |" for name, f in rows]
    later = stages[1:]
    if later:
        base = f"{stages[0]['target']:,}"
        lines += [
            "",
            "| Path | "
            + " | ".join(f"{s['target']:,} / {base}: p50, p95 (raw)" for s in later)
            + " |",
            "|---" * (len(later) + 1) + "|",
        ]
        for op in OPS:
            first = stages[0]["ops"][op]
            cells = [
                ", ".join(f"{s['ops'][op][q] / first[q]:.2f}x" for q in ("p50", "p95"))
                + " (raw "
                + ", ".join(f"{s['ops'][op][q] / first[q]:.2f}x" for q in ("raw_p50", "raw_p95"))
                + ")"
                for s in later
            ]
            lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> Options:
    """The command line as ``Options``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="largest stage (resources)")
    parser.add_argument("--stages", type=int, nargs="*", help="stage sizes (default 0.1M 1M size)")
    parser.add_argument("--resume", action="store_true", help="keep the database and JSON stages")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--ops", type=int, default=300, help="timed operations per path and side")
    parser.add_argument("--database", default=SCALE_DB, help="the benchmark's own database")
    parser.add_argument(
        "--markdown", action="store_true", help="only print the JSON's stages as Markdown tables"
    )
    args = parser.parse_args(argv)
    return Options(
        size=args.size,
        stages=list(args.stages or []),
        resume=args.resume,
        json_path=args.json,
        ops=args.ops,
        database=args.database,
        markdown=args.markdown,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages, print the tables and the growth ratios, write the JSON."""
    options = parse(argv)
    if options.markdown:
        print(markdown(_read_previous(options.json_path)))
        return 0
    stages = asyncio.run(run(options))
    print(growth_table(stages))
    print(f"\nwritten to {options.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
