"""`python -m bench`: measure hacs against raw asyncpg in the same run and print PASS/MISS.

Every hot path is timed for hacs and for a raw asyncpg baseline doing the same SQL work, in
alternating repetitions, so the ratio holds on a noisy machine. Results: a table on stdout and
``bench/results/latest.json``. Never used as a gate on time: CI only runs ``--smoke`` so the
harness keeps working.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench import data, import_memory, raw, vectors
from hacs_models import Actor, MemoryBlock, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.storage.codec import document_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
# HACS_BENCH_DB: another name, so two runs on one server do not drop each other's database.
BENCH_DB = os.environ.get("HACS_BENCH_DB", "hacs_bench")
VECTOR_DIM = 384
ACTOR = Actor(name="bench", role="system", permissions=["admin:*"])
RAW_ACTOR = (ACTOR.id, ACTOR.name, str(ACTOR.role.value))


@dataclass
class Sizes:
    """How much work each benchmark does."""

    single_ops: int = 2000
    reps: int = 5
    bulk_patients: int = 20_000
    bulk_observations: int = 100_000
    analytics_patients: int = 20_000
    analytics_observations: int = 200_000
    vectors: int = 50_000
    vector_queries: int = 200
    concurrency: int = 8
    import_mb: int = 50


SMOKE = Sizes(
    single_ops=50,
    reps=2,
    bulk_patients=200,
    bulk_observations=1000,
    analytics_patients=200,
    analytics_observations=2000,
    vectors=1000,
    vector_queries=20,
    import_mb=1,
)


@dataclass
class Result:
    """One target: measured values, the ratio, its limit and PASS/MISS."""

    target: str
    hacs: float
    raw: float
    unit: str
    ratio: float
    limit: float
    higher_is_better: bool
    spread: float
    note: str = ""
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        ok = self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit
        self.passed = bool(ok)


def _spread(values: list[float]) -> float:
    median = statistics.median(values)
    return (max(values) - min(values)) / median if median else 0.0


async def _interleaved(
    reps: int, ours: Callable[[], Awaitable[float]], base: Callable[[], Awaitable[float]]
) -> tuple[list[float], list[float]]:
    mine, theirs = [], []
    for _ in range(reps):
        mine.append(await ours())
        theirs.append(await base())
    return mine, theirs


async def _per_op(fn: Callable[[Any], Awaitable[Any]], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        await fn(item)
    return (time.perf_counter() - start) / len(items) * 1e3


def _insert_args(p: Patient) -> list[Any]:
    return [p.id, p.model_dump_json(), *RAW_ACTOR[:1], *raw.patient_keys(p), *RAW_ACTOR[1:]]


async def bench_single(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Targets 1-3: single save, update with expected_version, point read."""
    results = []

    async def raw_save(p: Patient) -> None:
        async with pool.acquire() as conn:
            await conn.fetchrow(raw.INSERT_PATIENT, *_insert_args(p))

    async def ours_round() -> float:
        return await _per_op(lambda p: adapter.save(p, ACTOR), data.patients(sizes.single_ops, rng))

    async def raw_round() -> float:
        return await _per_op(raw_save, data.patients(sizes.single_ops, rng))

    await ours_round()
    await raw_round()  # warm both paths (prepared statements, pools)
    mine, theirs = await _interleaved(sizes.reps, ours_round, raw_round)
    results.append(_ratio("1. single save (Patient)", mine, theirs, "ms/op", 1.25))

    stored = data.patients(sizes.single_ops, rng)
    await adapter.save_many(stored, ACTOR)
    raw_versions = {p.id: p.version for p in stored}

    async def ours_update() -> float:
        def change(p: Patient) -> Awaitable[Any]:
            p.active = not p.active
            return adapter.update(p, ACTOR, expected_version=p.version)

        return await _per_op(change, stored)

    async def raw_update_one(p: Patient) -> None:
        p.active = not p.active
        expected = raw_versions[p.id]
        assert expected is not None  # save_many stamped every model with its version
        raw_versions[p.id] = expected + 1
        async with pool.acquire() as conn:
            row = await conn.fetchrow(raw.UPDATE_PATIENT, *_insert_args(p), expected)
        assert row is not None

    async def raw_update() -> float:
        for p in stored:
            raw_versions[p.id] = p.version or 0
        result = await _per_op(raw_update_one, stored)
        for p in stored:  # keep the objects in step with what is stored
            p.__dict__["version"] = raw_versions[p.id]
        return result

    await ours_update()
    await raw_update()
    mine, theirs = await _interleaved(sizes.reps, ours_update, raw_update)
    results.append(_ratio("2. update with expected_version", mine, theirs, "ms/op", 1.25))

    ids = [p.id for p in stored]

    async def raw_read_one(pid: str) -> Patient:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(raw.READ_PATIENT, pid, *RAW_ACTOR)
        return Patient.model_validate_json(row["document"])

    async def ours_read() -> float:
        return await _per_op(lambda pid: adapter.read(Patient, pid, ACTOR), ids)

    async def raw_read() -> float:
        return await _per_op(raw_read_one, ids)

    await ours_read()
    await raw_read()
    mine, theirs = await _interleaved(sizes.reps, ours_read, raw_read)
    results.append(_ratio("3. point read (Patient)", mine, theirs, "ms/op", 1.25))
    return results


def _ratio(
    target: str, mine: list[float], theirs: list[float], unit: str, limit: float, note: str = ""
) -> Result:
    ours_m, raw_m = statistics.median(mine), statistics.median(theirs)
    return Result(
        target,
        ours_m,
        raw_m,
        unit,
        ours_m / raw_m,
        limit,
        False,
        max(_spread(mine), _spread(theirs)),
        note,
    )


def _throughput(
    target: str, mine: list[float], theirs: list[float], limit: float, note: str = ""
) -> Result:
    ours_m, raw_m = statistics.median(mine), statistics.median(theirs)
    return Result(
        target,
        ours_m,
        raw_m,
        "rows/s",
        ours_m / raw_m,
        limit,
        True,
        max(_spread(mine), _spread(theirs)),
        note,
    )


async def bench_bulk(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 4: save_many of new patients and observations vs COPY; bulk update vs COPY."""
    reps = max(2, min(sizes.reps, 3))
    total = sizes.bulk_patients + sizes.bulk_observations

    def batch() -> list[Any]:
        patients = data.patients(sizes.bulk_patients, rng)
        observations = data.observations(sizes.bulk_observations, [p.id for p in patients], rng)
        return [*patients, *observations]

    async def ours() -> float:
        items = batch()
        start = time.perf_counter()
        await adapter.save_many(items, ACTOR)
        return total / (time.perf_counter() - start)

    async def base() -> float:
        items = batch()
        patients = [r for r in items if isinstance(r, Patient)]
        observations = [r for r in items if not isinstance(r, Patient)]
        start = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            now = await conn.fetchval("SELECT now()")
            await raw.copy_resources(conn, patients, observations, now, RAW_ACTOR)
        return total / (time.perf_counter() - start)

    mine, theirs = await _interleaved(reps, ours, base)
    results = [
        _throughput(
            "4a. bulk create (save_many vs COPY)",
            mine,
            theirs,
            0.6,
            f"{sizes.bulk_patients} patients + {sizes.bulk_observations} obs",
        )
    ]

    existing = data.patients(sizes.bulk_patients, rng)
    await adapter.save_many(existing, ACTOR)

    async def ours_update() -> float:
        for p in existing:
            p.active = not p.active
        start = time.perf_counter()
        await adapter.save_many(existing, ACTOR)
        return len(existing) / (time.perf_counter() - start)

    async def copy_patients() -> float:
        fresh = data.patients(sizes.bulk_patients, rng)
        start = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            now = await conn.fetchval("SELECT now()")
            await raw.copy_resources(conn, fresh, [], now, RAW_ACTOR)
        return len(fresh) / (time.perf_counter() - start)

    mine, theirs = await _interleaved(reps, ours_update, copy_patients)
    results.append(
        _throughput(
            "4b. bulk update (save_many vs COPY)",
            mine,
            theirs,
            0.6,
            f"{sizes.bulk_patients} existing patients",
        )
    )
    return results


async def bench_concurrency(
    adapter: PostgreSQLAdapter, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 5: 8 concurrent tasks saving single resources vs the sequential rate."""
    n = sizes.single_ops

    async def sequential() -> float:
        items = data.patients(n, rng)
        start = time.perf_counter()
        for p in items:
            await adapter.save(p, ACTOR)
        return n / (time.perf_counter() - start)

    async def concurrent() -> float:
        items = data.patients(n, rng)
        chunks = [items[i :: sizes.concurrency] for i in range(sizes.concurrency)]

        async def worker(chunk: list[Patient]) -> None:
            for p in chunk:
                await adapter.save(p, ACTOR)

        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in chunks))
        return n / (time.perf_counter() - start)

    mine, theirs = await _interleaved(sizes.reps, concurrent, sequential)
    return [
        _throughput(
            f"5. {sizes.concurrency} concurrent tasks vs sequential",
            mine,
            theirs,
            2.0,
            "rate ratio",
        )
    ]


def analytics_queries() -> list[str]:
    """The SQL blocks of docs/analytics.md that read only typed tables."""
    text = (ROOT / "docs" / "analytics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    return [
        b
        for b in blocks
        if "_current" not in b and "resource_versions" not in b and "audit_events" not in b
    ]


async def bench_analytics(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 6: the analytics joins on typed tables vs copies holding only the typed columns."""
    patients = data.patients(sizes.analytics_patients, rng)
    await adapter.save_many(patients, ACTOR)
    ids = [p.id for p in patients]
    step = 50_000
    for start in range(0, sizes.analytics_observations, step):
        count = min(step, sizes.analytics_observations - start)
        await adapter.save_many(data.observations(count, ids, rng), ACTOR)
    async with pool.acquire() as conn:
        # Narrow copies: the same rows and indexes, nothing else (the comparison the issue pins).
        for schema in ("narrow_core", "narrow_clinical"):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        for source, target in (("hacs_core", "narrow_core"), ("hacs_clinical", "narrow_clinical")):
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", source
            )
            for row in tables:
                name = row["tablename"]
                if name == "resource_versions":
                    continue
                await conn.execute(
                    f"CREATE TABLE {target}.{name} (LIKE {source}.{name} INCLUDING INDEXES); "
                    f"INSERT INTO {target}.{name} SELECT * FROM {source}.{name}"
                )
        await conn.execute("VACUUM ANALYZE")
    queries = analytics_queries()
    results = []

    async def timed(sql: str) -> float:
        async with pool.acquire() as conn:
            start = time.perf_counter()
            await conn.fetch(sql)
            return (time.perf_counter() - start) * 1e3

    for index, sql in enumerate(queries, start=1):
        narrow_sql = sql.replace("hacs_core.", "narrow_core.").replace(
            "hacs_clinical.", "narrow_clinical."
        )
        await timed(sql)
        await timed(narrow_sql)
        mine, theirs = await _interleaved(
            sizes.reps, functools.partial(timed, sql), functools.partial(timed, narrow_sql)
        )
        title = sql.strip().splitlines()[0].lstrip("- ").strip()[:40]
        results.append(
            _ratio(f"6.{index} {title}", mine, theirs, "ms", 1.25, "typed vs narrow copy")
        )
    return results


async def bench_vectors(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 7: filtered top-10 cosine search vs the best raw strategy per filter; recall@10.

    For each filter (1 row in 15 match, and 1 in 2) the raw baseline is the faster of an exact
    scan of the matching rows and an HNSW iterative scan; hacs chooses per query.
    """
    vectors_ = data.clustered_vectors(sizes.vectors, VECTOR_DIM, clusters=50, rng=rng)
    step = 5000
    for start in range(0, len(vectors_), step):
        await adapter.save_many(data.memory_blocks(vectors_[start : start + step], rng), ACTOR)
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE hacs_agents.memory_blocks")
    queries = vectors.near_queries(vectors_, sizes.vector_queries, rng)
    results = []
    for letter, (label, filters, condition, args) in zip("ac", vectors.FILTERS, strict=True):

        async def ours(filters: dict[str, Any] = filters) -> float:
            start = time.perf_counter()
            for q in queries:
                await adapter.search_similar(MemoryBlock, q, ACTOR, k=10, filters=filters)
            return (time.perf_counter() - start) / len(queries) * 1e3

        def base(
            strategy: str, condition: str = condition, args: list[Any] = args
        ) -> Callable[[], Awaitable[float]]:
            async def timed() -> float:
                start = time.perf_counter()
                for q in queries:
                    await vectors.raw_similar(pool, q, condition, args, strategy)
                return (time.perf_counter() - start) / len(queries) * 1e3

            return timed

        raws: dict[str, list[float]] = {}
        mine: list[float] = []
        for strategy in vectors.STRATEGIES:
            await ours()
            await base(strategy)()  # warm both paths
            ours_times, raws[strategy] = await _interleaved(sizes.reps, ours, base(strategy))
            mine.extend(ours_times)
        best = min(raws, key=lambda s: statistics.median(raws[s]))
        recalls = []
        for q in queries[:50]:
            hits = await adapter.search_similar(MemoryBlock, q, ACTOR, k=10, filters=filters)
            exact = await vectors.raw_similar(pool, q, condition, args, "exact")
            recalls.append(len({m.id for m, _ in hits} & set(exact)) / max(1, len(exact)))
        recall = statistics.mean(recalls)
        others = ", ".join(
            f"raw {s} {statistics.median(t):.2f} ms" for s, t in raws.items() if s != best
        )
        results += [
            _ratio(
                f"7{letter}. vector top-10, {label}",
                mine,
                raws[best],
                "ms/query",
                1.3,
                f"{sizes.vectors} x {VECTOR_DIM}-dim; vs raw {best}; {others}",
            ),
            Result(
                f"7{chr(ord(letter) + 1)}. recall@10 vs exact, {label}",
                recall,
                1.0,
                "recall",
                recall,
                0.98,
                True,
                0.0,
            ),
        ]
    return results


async def bench_memory(
    adapter: PostgreSQLAdapter, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 8: peak RSS of a 100,000-resource save_many beyond the input itself."""
    patients = data.patients(max(1, sizes.bulk_observations // 50), rng)
    await adapter.save_many(patients, ACTOR)
    items = data.observations(sizes.bulk_observations, [p.id for p in patients], rng)
    _, extra_mb, _ = await import_memory.measure(
        lambda: adapter.save_many(items, ACTOR), traced=False
    )
    input_mb = sum(len(document_json(o)) for o in items[:1000]) / 1000 * len(items) / 2**20
    return [
        Result(
            f"8. peak memory, save_many of {len(items)}",
            extra_mb,
            300.0,
            "MB",
            extra_mb / 300.0,
            1.0,
            False,
            0.0,
            f"input ~{input_mb:.0f} MB as JSON",
        )
    ]


# The import's memory budget: one batch and the per-resource index, whatever the file size.
IMPORT_BUDGET_MB = 256.0


IMPORT_COMMAND = (sys.executable, "-m", "bench.import_memory", "--json")


async def _import_peak_in_subprocess(
    adapter: PostgreSQLAdapter, megabytes: float, kind: str
) -> import_memory.Peak:
    assert adapter.database is not None  # set by create_postgres_adapter
    env = dict(os.environ, HACS_BENCH_URL=adapter.database.url)
    done = await asyncio.to_thread(
        subprocess.run,
        [*IMPORT_COMMAND, "--mb", str(megabytes), "--kind", kind],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the import benchmark failed:\n{done.stderr[-3000:]}")
    return import_memory.Peak(**json.loads(done.stdout.strip().splitlines()[-1]))


async def bench_import(adapter: PostgreSQLAdapter, sizes: Sizes) -> list[Result]:
    """Target 9: peak RSS of a FHIR import (NDJSON, transaction Bundle) beyond the start."""
    results = []
    for kind in ("ndjson", "bundle"):
        # In a fresh process: this one has grown its heap in the earlier targets, so its RSS
        # would hide what the import needs (an in-process run measured ~0 MB).
        peak = await _import_peak_in_subprocess(adapter, sizes.import_mb, kind)
        results.append(
            Result(
                f"9. peak memory, import of {peak.file_mb:.0f} MB {kind}",
                peak.rss_mb,
                IMPORT_BUDGET_MB,
                "MB",
                peak.rss_mb / IMPORT_BUDGET_MB,
                1.0,
                False,
                0.0,
                f"{peak.resources} resources in {peak.seconds:.1f} s",
            )
        )
    return results


# Target 10: a SQL on FHIR view over the observations vs hand-written SQL on the typed table.
BENCH_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "bench_observations",
    "resource": "Observation",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "patient_id", "path": "subject.getReferenceKey(Patient)", "type": "id"},
                {"name": "code", "path": "code.coding.code.first()", "type": "code"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            ]
        }
    ],
}
# (title, over the view, the same answer from the typed columns). ``$1``: the target's own
# patients, as other targets write observations through raw SQL that no view can see.
VIEW_QUERIES = [
    (
        "all rows",
        "SELECT id, patient_id, code, value, unit, effective FROM hacs_views.bench_observations "
        "WHERE patient_id = ANY($1::text[])",
        "SELECT id, patient_id, code, value_numeric, value_unit, effective_at "
        "FROM hacs_core.observations WHERE deleted_at IS NULL AND patient_id = ANY($1::text[])",
    ),
    (
        "systolic mean per patient",
        "SELECT patient_id, count(*), avg(value) FROM hacs_views.bench_observations "
        "WHERE code = '8480-6' AND patient_id = ANY($1::text[]) GROUP BY patient_id",
        "SELECT patient_id, count(*), avg(value_numeric) FROM hacs_core.observations "
        "WHERE code = '8480-6' AND deleted_at IS NULL AND patient_id = ANY($1::text[]) "
        "GROUP BY patient_id",
    ),
]


def _is_time(value: str | datetime) -> bool:
    return isinstance(value, datetime) or (len(value) >= 19 and value[10:11] == "T")


def _instant(value: str | datetime) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(UTC).isoformat()


async def bench_views(
    adapter: PostgreSQLAdapter, pool: asyncpg.Pool, sizes: Sizes, rng: random.Random
) -> list[Result]:
    """Target 10: a view over ``analytics_observations`` observations vs the typed table."""
    from hacs_persistence.views import create_view, sync_fhir_resources

    patients = data.patients(sizes.analytics_patients, rng)
    await adapter.save_many(patients, ACTOR)
    ids = [p.id for p in patients]
    step = 50_000
    for start in range(0, sizes.analytics_observations, step):
        count = min(step, sizes.analytics_observations - start)
        # save_many writes the FHIR JSON the view reads in the same transaction: no sync.
        await adapter.save_many(data.observations(count, ids, rng), ACTOR)
    # Other targets write observations through raw SQL, with no FHIR JSON: sync writes it, so
    # the typed view (which refuses typed rows without it) can be created.
    await sync_fhir_resources(adapter, "Observation", actor=ACTOR)
    await create_view(adapter, BENCH_VIEW, replace=True, actor=ACTOR)
    async with pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE")

    async def timed(sql: str) -> float:
        async with pool.acquire() as conn:
            start = time.perf_counter()
            await conn.fetch(sql, ids)
            return (time.perf_counter() - start) * 1e3

    def answer(rows: list[asyncpg.Record]) -> list[tuple[str, ...]]:
        # Value by value (decimals by their digits); the view's date-times are the FHIR text,
        # the typed column the instant: compared as instants.
        return sorted(
            tuple(
                _instant(v) if isinstance(v, str | datetime) and _is_time(v) else str(v) for v in r
            )
            for r in rows
        )

    results = []
    for index, (title, view_sql, typed_sql) in enumerate(VIEW_QUERIES, start=1):
        async with pool.acquire() as conn:
            # Both must give the same answer, or the comparison means nothing.
            view_rows = answer(await conn.fetch(view_sql, ids))
            typed_rows = answer(await conn.fetch(typed_sql, ids))
        if view_rows != typed_rows or not view_rows:
            raise AssertionError(f"view and typed SQL disagree on {title!r}")
        mine, theirs = await _interleaved(
            sizes.reps, functools.partial(timed, view_sql), functools.partial(timed, typed_sql)
        )
        results.append(
            _ratio(f"10.{index} view: {title}", mine, theirs, "ms", 1.5, "view vs typed SQL")
        )
    return results


async def prepare_database(server_url: str) -> str:
    """A fresh benchmark database, migrated with 384-dim embeddings."""
    from hacs_persistence.migrations import upgrade

    parsed = make_url(server_url)
    admin = await asyncpg.connect(
        host=parsed.query.get("host") or parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
    )
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()
    url = parsed.set(database=BENCH_DB).render_as_string(hide_password=False)
    os.environ["HACS_VECTOR_DIM"] = str(VECTOR_DIM)
    await upgrade(url)
    return url


async def run(sizes: Sizes, only: set[str] | None) -> list[Result]:
    """Run every benchmark (or those named in ``only``) and return the results."""
    from hacs_persistence.db.config import resolve_database_url
    from hacs_persistence.db.embedded import ensure_embedded_server

    server = os.environ.get("HACS_BENCH_DATABASE_URL") or resolve_database_url()[0]
    server = server or (await asyncio.to_thread(ensure_embedded_server)).superuser_url
    url = await prepare_database(server)
    parsed = make_url(url)
    pool = await asyncpg.create_pool(
        host=parsed.query.get("host") or parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        min_size=sizes.concurrency,
        max_size=sizes.concurrency,
        server_settings={"TimeZone": "UTC"},
    )
    adapter = await create_postgres_adapter(url)
    rng = random.Random(1125)
    results: list[Result] = []
    steps: list[tuple[str, Callable[[], Awaitable[list[Result]]]]] = [
        ("single", lambda: bench_single(adapter, pool, sizes, rng)),
        ("bulk", lambda: bench_bulk(adapter, pool, sizes, rng)),
        ("concurrency", lambda: bench_concurrency(adapter, sizes, rng)),
        ("analytics", lambda: bench_analytics(adapter, pool, sizes, rng)),
        ("vectors", lambda: bench_vectors(adapter, pool, sizes, rng)),
        ("memory", lambda: bench_memory(adapter, sizes, rng)),
        ("import", lambda: bench_import(adapter, sizes)),
        ("views", lambda: bench_views(adapter, pool, sizes, rng)),
    ]
    try:
        for name, step in steps:
            if only and name not in only:
                continue
            started = time.perf_counter()
            print(f"running {name}...", flush=True)
            results.extend(await step())
            print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await adapter.close()
        await pool.close()
    return results


def report(results: list[Result], sizes: Sizes) -> str:
    """The results as a fixed-width table."""
    lines = [
        f"{'target':<44} {'hacs':>10} {'raw':>10} {'unit':>9} {'ratio':>7} "
        f"{'limit':>7} {'spread':>7}  result"
    ]
    for r in results:
        bound = ">=" if r.higher_is_better else "<="
        lines.append(
            f"{r.target:<44} {r.hacs:>10.3f} {r.raw:>10.3f} {r.unit:>9} {r.ratio:>7.2f} "
            f"{bound}{r.limit:<5} {r.spread:>7.0%}  {'PASS' if r.passed else 'MISS'}"
            + (f"  ({r.note})" if r.note else "")
        )
    return "\n".join(lines)


def main() -> int:
    """Parse sizes, run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI keeps it working)")
    parser.add_argument(
        "--only", nargs="*", help="single bulk concurrency analytics vectors memory import views"
    )
    for name, value in asdict(Sizes()).items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=None, help=f"default {value}"
        )
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    for name in asdict(sizes):
        value = getattr(args, name)
        if value is not None:
            setattr(sizes, name, value)
    results = asyncio.run(run(sizes, set(args.only) if args.only else None))
    table = report(results, sizes)
    print("\n" + table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"sizes": asdict(sizes), "smoke": args.smoke, "results": [asdict(r) for r in results]},
            indent=2,
        )
    )
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
