"""Peak memory of a FHIR import: generated NDJSON and transaction Bundles of a given size.

``python -m bench --only import`` runs it inside the harness (target 9); run as
``python -m bench.import_memory --mb 10 100`` against a fresh database it prints peak RSS and
peak traced (tracemalloc) memory per file, so two versions of the importer can be compared on
the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths

ACTOR = Actor(name="bench-import", role="system", permissions=["admin:*"])
Kind = Literal["ndjson", "bundle"]


def _observation(index: int, subject: str, rng: random.Random) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"bench-obs-{index:08d}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-05-01T10:00:00+00:00",
        "valueQuantity": {"value": round(rng.uniform(40, 120), 1), "unit": "kg"},
        # About 1 KB per resource, like a typical Synthea Observation.
        "note": [{"text": "".join(rng.choices("abcdefghij ", k=700))}],
    }


def write_file(path: Path, megabytes: float, kind: Kind, rng: random.Random) -> int:
    """A file of about ``megabytes`` MB of Observations of one patient; returns the count."""
    target = int(megabytes * 2**20)
    patient = {"resourceType": "Patient", "id": "bench-import-patient", "gender": "female"}
    count = 0
    with path.open("w", encoding="utf-8") as out:
        if kind == "ndjson":
            out.write(json.dumps(patient) + "\n")
            while out.tell() < target:
                line = _observation(count, "Patient/bench-import-patient", rng)
                out.write(json.dumps(line) + "\n")
                count += 1
            return count + 1
        out.write('{"resourceType": "Bundle", "type": "transaction", "entry": [')
        entry = {"fullUrl": "urn:uuid:bench-import-patient", "resource": patient}
        out.write(json.dumps({**entry, "request": {"method": "PUT", "url": "Patient"}}))
        while out.tell() < target:
            resource = _observation(count, "urn:uuid:bench-import-patient", rng)
            out.write("," + json.dumps({"resource": resource, "request": {"method": "POST"}}))
            count += 1
        out.write("]}")
    return count + 1


@dataclass
class Peak:
    """What one import took: resources, seconds, extra RSS and peak traced memory in MB."""

    file_mb: float
    resources: int
    seconds: float
    rss_mb: float
    traced_mb: float | None


async def measure(
    call: Callable[[], Awaitable[Any]], *, traced: bool
) -> tuple[float, float, float | None]:
    """Seconds, peak RSS above the start (sampled every 5 ms) and, if asked, tracemalloc's peak."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        await call()
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else None
    finally:
        if traced:
            tracemalloc.stop()
        done.set()
        sampler.join()
    return time.perf_counter() - started, (peak - baseline) / 2**20, traced_peak


async def import_peak(
    adapter: PostgreSQLAdapter, megabytes: float, kind: Kind, *, traced: bool = False
) -> Peak:
    """Generate one file, import it, and report its peaks (the file is removed afterwards)."""
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="hacs-bench-import-") as folder:
        path = Path(folder) / f"bench.{'ndjson' if kind == 'ndjson' else 'json'}"
        count = write_file(path, megabytes, kind, rng)
        size = path.stat().st_size / 2**20

        async def run() -> None:
            summary = await import_paths([path], adapter, ACTOR)
            if not summary.ok:
                raise RuntimeError(summary.failed[0].describe())

        seconds, rss, traced_mb = await measure(run, traced=traced)
    return Peak(size, count, seconds, rss, traced_mb)


async def _main(
    url: str, sizes: list[float], kinds: list[Kind], traced: bool, as_json: bool
) -> None:
    adapter = await create_postgres_adapter(url)
    try:
        for kind in kinds:
            for megabytes in sizes:
                peak = await import_peak(adapter, megabytes, kind, traced=traced)
                if as_json:
                    print(json.dumps(dataclasses.asdict(peak)), flush=True)
                    continue
                traced_text = "" if peak.traced_mb is None else f", traced {peak.traced_mb:.0f} MB"
                print(
                    f"{kind:>6} {peak.file_mb:6.1f} MB, {peak.resources} resources: "
                    f"{peak.seconds:6.1f} s, peak RSS +{peak.rss_mb:.0f} MB{traced_text}",
                    flush=True,
                )
    finally:
        await adapter.close()


def main() -> None:
    """Measure imports of generated files against a migrated database (``--url``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url",
        default=os.environ.get("HACS_BENCH_URL"),
        help="a migrated, empty database (default: $HACS_BENCH_URL, kept out of the process list)",
    )
    parser.add_argument("--mb", type=float, nargs="+", default=[10.0])
    parser.add_argument("--kind", choices=["ndjson", "bundle"], nargs="+", default=["ndjson"])
    parser.add_argument("--traced", action="store_true", help="also tracemalloc (slower)")
    parser.add_argument("--json", action="store_true", help="one JSON line per import")
    args = parser.parse_args()
    if not args.url:
        parser.error("--url or HACS_BENCH_URL is required")
    asyncio.run(_main(args.url, args.mb, args.kind, args.traced, args.json))


if __name__ == "__main__":
    main()
