"""Hostile and accidental input gets a typed error, never a crash, and nothing half-written.

Filters (how many, how deep, how large), documents (how large, how deep) on every write path,
import files (deep, huge) and the statement caches (bounded however many filter shapes come).
Only names that existed before the limits were introduced are imported at module level, so each
test fails on its own (with the wrong error or a RecursionError) on code without the limits.
"""

from __future__ import annotations

import json
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import literal_column, select

from hacs_auth import acting_as
from hacs_models import Actor, BaseResource, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.db.executor import compiled
from hacs_persistence.errors import InvalidQueryError, ResourceValidationError
from hacs_persistence.interchange import import_paths
from hacs_persistence.interchange import importer as importer_module
from hacs_persistence.query.search import _search_statement, build_search
from hacs_persistence.storage.mapping import document_mapping
from hacs_persistence.storage.statements import statements_for
from hacs_tools import asave_resource, configure_tools
from tests.factories import observation_document as observation

ADMIN = Actor(name="limits-test", role="system", permissions=["admin:*"])
MIB = 1024 * 1024


class Gadget(BaseResource):
    """A type without a typed table: any top-level element can be filtered on."""

    resource_type: str = "LimitsGadget"
    colour: str | None = None


def nested(levels: int) -> list[Any]:
    """A list nested ``levels`` deep, built without recursion."""
    root: list[Any] = []
    current = root
    for _ in range(levels - 1):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


@pytest.fixture
def adapter(granular: PostgreSQLAdapter) -> PostgreSQLAdapter:
    """Every test here is about the typed-table adapter (tests/conftest.py opens it)."""
    return granular


@pytest.fixture
def conn(db: asyncpg.Connection) -> asyncpg.Connection:
    """The test database's raw connection (tests/conftest.py's ``db``), by this file's name."""
    return db


async def versions(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM hacs_core.resource_versions"))


async def documents(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM public.hacs_resources"))


# --- filters -----------------------------------------------------------------------------------


async def test_forty_thousand_filters_are_an_invalid_query_not_an_unavailable_database(
    adapter: PostgreSQLAdapter,
) -> None:
    filters = {f"element_{i}": "x" for i in range(40_000)}
    with pytest.raises(InvalidQueryError, match="at most 64") as caught:
        await adapter.search(Gadget, ADMIN, filters=filters)
    assert "MAX_FILTERS" in str(caught.value)


async def test_a_deeply_nested_filter_value_is_an_invalid_query(
    adapter: PostgreSQLAdapter,
) -> None:
    with pytest.raises(InvalidQueryError, match="nests deeper than 16") as caught:
        await adapter.search(Gadget, ADMIN, filters={"colour": nested(100_000)})
    assert "MAX_FILTER_DEPTH" in str(caught.value)
    # Moderately deep values too: they would reach SQL as a JSON containment.
    with pytest.raises(InvalidQueryError, match="nests deeper"):
        await adapter.search(Gadget, ADMIN, filters={"colour": nested(17)})


async def test_a_huge_filter_value_is_an_invalid_query_that_never_quotes_it(
    adapter: PostgreSQLAdapter,
) -> None:
    secret = "S" * MIB
    for filters in ({"colour": secret}, {"id__in": [secret[:1000]] * 100}):
        with pytest.raises(InvalidQueryError, match="larger than 65536 bytes") as caught:
            await adapter.search(Gadget, ADMIN, filters=filters)
        assert "SSSS" not in str(caught.value)


async def test_filters_within_the_limits_still_search(adapter: PostgreSQLAdapter) -> None:
    await adapter.save(Gadget(colour="red"), ADMIN)
    filters: dict[str, Any] = {"colour": "red", "tags": ["a", ["b", ["c"]]]}
    filters.update({f"missing_{i}": None for i in range(62)})  # 64 filters: the limit
    page = await adapter.search(Gadget, ADMIN, filters={"colour": "red"})
    assert [g.colour for g in page.items] == ["red"]
    assert (await adapter.search(Gadget, ADMIN, filters=filters)).items == []


# --- the statement caches ----------------------------------------------------------------------


async def test_ten_times_the_bound_of_filter_shapes_leaves_the_caches_at_their_bound(
    adapter: PostgreSQLAdapter,
) -> None:
    bound = _search_statement.cache_info().maxsize
    assert bound is not None, "the search statement cache has no bound"
    mapping = document_mapping("LimitsGadget")
    for i in range(10 * bound):
        build_search(mapping, {f"shape_{i}": "x"}, None, None, None)
    assert _search_statement.cache_info().currsize == bound
    # The shapes evicted long ago are rebuilt and still find the right rows.
    red = await adapter.save(Gadget(colour="red"), ADMIN)
    await adapter.save(Gadget(colour="blue"), ADMIN)
    page = await adapter.search(Gadget, ADMIN, filters={"colour": "red"})
    assert [g.id for g in page.items] == [red.id]
    for i in range(3):
        page = await adapter.search(Gadget, ADMIN, filters={f"shape_{i}": "x"})
        assert page.items == []
    assert _search_statement.cache_info().currsize == bound


def test_the_compiled_statement_cache_is_bounded() -> None:
    bound = compiled.cache_info().maxsize
    assert bound is not None, "the compiled statement cache has no bound"
    for i in range(10 * bound):
        compiled(select(literal_column(str(i))))
    assert compiled.cache_info().currsize == bound
    assert compiled(select(literal_column("7"))).sql == "SELECT 7"


def test_the_mapping_caches_are_bounded() -> None:
    bound = document_mapping.cache_info().maxsize
    assert bound is not None, "the document mapping cache has no bound"
    for i in range(2 * bound):
        document_mapping(f"LimitsType{i}")
    assert document_mapping.cache_info().currsize == bound
    # Statements are cached per mapping object: bounded too, as mappings may be rebuilt.
    assert statements_for.cache_info().maxsize == bound
    assert document_mapping("LimitsTypeX").resource_type == "LimitsTypeX"


# --- documents: every write path ---------------------------------------------------------------


def big_patient(size: int = 17 * MIB) -> Patient:
    return Patient(full_name="Big", extension=[{"url": "urn:x", "valueString": "P" * size}])


async def test_save_refuses_a_document_over_the_limit_and_writes_nothing(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection
) -> None:
    with pytest.raises(ResourceValidationError) as caught:
        await adapter.save(big_patient(), ADMIN)
    message = str(caught.value)
    assert "16777216" in message and "HACS_DB_MAX_DOCUMENT_BYTES" in message
    assert "PPPP" not in message
    assert await versions(conn) == 0


async def test_update_refuses_a_document_over_the_limit_and_keeps_the_stored_version(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection
) -> None:
    saved = await adapter.save(Patient(full_name="Small"), ADMIN)
    # An extra element (models allow them; mypy sees only the declared fields).
    saved.extension = [{"url": "urn:x", "valueString": "P" * (17 * MIB)}]  # type: ignore[attr-defined]
    with pytest.raises(ResourceValidationError, match="HACS_DB_MAX_DOCUMENT_BYTES"):
        await adapter.update(saved, ADMIN)
    stored = await adapter.read(Patient, saved.id, ADMIN)
    assert stored.version == 1 and not stored.model_dump().get("extension")
    assert await versions(conn) == 1


async def test_save_many_refuses_the_whole_batch_when_one_document_is_too_large(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection
) -> None:
    batch = [Patient(full_name="One"), big_patient(), Patient(full_name="Two")]
    with pytest.raises(ResourceValidationError, match="HACS_DB_MAX_DOCUMENT_BYTES"):
        await adapter.save_many(batch, ADMIN)
    assert await versions(conn) == 0


async def test_a_deeply_nested_document_is_refused_on_every_write_path(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection
) -> None:
    deep = Gadget(colour="x", extension=[{"url": "urn:x", "deep": nested(5000)}])
    with pytest.raises(ResourceValidationError, match="deeper than 100 levels"):
        await adapter.save(deep, ADMIN)
    with pytest.raises(ResourceValidationError, match="MAX_DOCUMENT_DEPTH"):
        await adapter.save_many([Gadget(colour="ok"), deep], ADMIN)
    # Between the limit and pydantic's own (about 254 levels), a document could be written but
    # never read back: the limit refuses it too.
    almost = Gadget(colour="x", extension=[{"url": "urn:x", "deep": nested(200)}])
    with pytest.raises(ResourceValidationError, match="MAX_DOCUMENT_DEPTH"):
        await adapter.save(almost, ADMIN)
    assert await documents(conn) == 0


async def test_the_document_limit_is_a_setting(
    database_url: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = await create_postgres_adapter(database_url, max_document_bytes=4096)
    try:
        await small.save(Patient(full_name="fits"), ADMIN)
        with pytest.raises(ResourceValidationError, match="limit of 4096 bytes"):
            await small.save(big_patient(8192), ADMIN)
    finally:
        await small.close()
    monkeypatch.setenv("HACS_DB_MAX_DOCUMENT_BYTES", "2048")
    from_env = await create_postgres_adapter(database_url)
    try:
        with pytest.raises(ResourceValidationError, match="limit of 2048 bytes"):
            await from_env.save(big_patient(4096), ADMIN)
    finally:
        await from_env.close()
    assert await versions(conn) == 1


async def test_the_save_tool_reports_a_document_over_the_limit_as_a_validation_failure(
    database_url: str, conn: asyncpg.Connection
) -> None:
    patient = {
        "resource_type": "Patient",
        "full_name": "Big",
        "extension": [{"url": "urn:x", "valueString": "P" * (17 * MIB)}],
    }
    with acting_as(ADMIN), configure_tools(database_url):
        result = await asave_resource(patient)
    assert not result.success
    assert result.error is not None
    text = json.dumps(result.model_dump(mode="json"))
    assert "HACS_DB_MAX_DOCUMENT_BYTES" in text and "PPPP" not in text
    assert await versions(conn) == 0


# --- import files ------------------------------------------------------------------------------


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")


async def test_a_deeply_nested_import_file_fails_alone_and_the_others_import(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    write_ndjson(tmp_path / "a-good.ndjson", [observation(f"good-{tag}")])
    deep_line = json.dumps(observation(f"deep-{tag}")).replace(
        '"status"', '"x": ' + "[" * 100_000 + "]" * 100_000 + ', "status"'
    )
    (tmp_path / "b-deep.ndjson").write_text(
        json.dumps(observation(f"before-{tag}")) + "\n" + deep_line + "\n", encoding="utf-8"
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation(f"bundled-{tag}"), "request": {"method": "POST"}},
            {
                "resource": observation(f"deep-bundled-{tag}", x=nested(150)),
                "request": {"method": "POST"},
            },
        ],
    }
    # json.dumps itself cannot write 100,000 levels: splice them in as text.
    text = json.dumps(bundle).replace('"x": [', '"x": ' + "[" * 50_000 + "[", 1)
    text = text.replace("]]", "]]" + "]" * 50_000, 1)
    (tmp_path / "c-deep-bundle.json").write_text(text, encoding="utf-8")
    single = json.dumps(observation(f"single-{tag}", x=[])).replace(
        '"x": []', '"x": ' + "[" * 100_000 + "]" * 100_000
    )
    (tmp_path / "d-deep-single.json").write_text(single, encoding="utf-8")
    write_ndjson(tmp_path / "e-good.ndjson", [observation(f"also-good-{tag}")])

    summary = await import_paths([tmp_path], adapter, ADMIN)

    failed = {Path(f.path).name: f for f in summary.failed}
    assert set(failed) == {"b-deep.ndjson", "c-deep-bundle.json", "d-deep-single.json"}
    for result in failed.values():
        assert "nest deeper than 100 levels" in (result.reason or ""), result.describe()
    assert failed["b-deep.ndjson"].line == 2
    assert failed["c-deep-bundle.json"].where == "entry[1]"
    ids = await conn.fetch("SELECT id FROM hacs_core.observations ORDER BY id")
    assert [r["id"] for r in ids] == [f"also-good-{tag}", f"good-{tag}"]


async def test_an_import_line_over_the_document_limit_fails_its_file_unread(
    database_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    small = await create_postgres_adapter(database_url, max_document_bytes=4096)
    try:
        tag = uuid.uuid4().hex[:8]
        big = observation(f"big-{tag}", note=[{"text": "N" * 8000}])
        write_ndjson(tmp_path / "big.ndjson", [observation(f"first-{tag}"), big])
        (tmp_path / "big.json").write_text(json.dumps(big), encoding="utf-8")
        write_ndjson(tmp_path / "ok.ndjson", [observation(f"ok-{tag}")])
        summary = await import_paths([tmp_path], small, ADMIN)
    finally:
        await small.close()
    failed = {Path(f.path).name: f for f in summary.failed}
    assert set(failed) == {"big.ndjson", "big.json"}
    assert failed["big.ndjson"].line == 2
    for result in failed.values():
        assert "HACS_DB_MAX_DOCUMENT_BYTES" in (result.reason or "")
        assert "NNNN" not in result.describe()
    ids = await conn.fetch("SELECT id FROM hacs_core.observations")
    assert [r["id"] for r in ids] == [f"ok-{tag}"]


async def test_a_bundle_entry_over_the_document_limit_fails_its_file(
    database_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    small = await create_postgres_adapter(database_url, max_document_bytes=4096)
    try:
        tag = uuid.uuid4().hex[:8]
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": observation(f"small-{tag}")},
                {"resource": observation(f"big-{tag}", note=[{"text": "N" * 8000}])},
            ],
        }
        (tmp_path / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
        summary = await import_paths([tmp_path], small, ADMIN)
    finally:
        await small.close()
    assert [Path(f.path).name for f in summary.failed] == ["bundle.json"]
    assert "HACS_DB_MAX_DOCUMENT_BYTES" in (summary.failed[0].reason or "")
    assert await versions(conn) == 0


def test_a_bundle_is_read_incrementally_with_memory_bounded_by_the_batch(
    tmp_path: Path,
) -> None:
    """The scan of a 35 MB Bundle never holds it: peak traced memory stays far below its size."""
    path = tmp_path / "large.json"
    entry = {
        "resource": observation("x", note=[{"text": "n" * 2000}]),
        "request": {"method": "PUT"},
    }
    with path.open("w", encoding="utf-8") as out:
        out.write('{"resourceType": "Bundle", "type": "batch", "entry": [')
        for i in range(16_000):
            entry["resource"]["id"] = f"obs-{i}"
            out.write(("," if i else "") + json.dumps(entry))
        out.write("]}")
    size = path.stat().st_size
    assert size > 30 * MIB
    tracemalloc.start()
    try:
        scan = importer_module._scan([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.files[0].error is None and scan.entries_total == 16_000
    # The scan keeps the ids of the 16,000 resources (a few MB); the text is never held whole.
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


def test_bundle_entries_come_before_the_file_is_read_to_its_end(tmp_path: Path) -> None:
    from hacs_persistence.interchange._sources import open_source

    path = tmp_path / "truncated.json"
    first = json.dumps({"resource": observation("first")})
    filler = ",".join(json.dumps({"resource": observation(f"o{i}")}) for i in range(5000))
    # Cut off: not valid JSON as a whole, yet its first entries can be read.
    text = '{"resourceType": "Bundle", "type": "collection", "entry": [' + first + "," + filler
    path.write_text(text, encoding="utf-8")
    entries = open_source(path).entries()
    assert next(entries).id == "first"
    with pytest.raises(Exception, match="invalid JSON") as caught:
        for _ in entries:
            pass
    assert "entry[" in str(caught.value) and "final" not in str(caught.value)


async def test_an_import_of_many_batches_keeps_references_between_them(
    adapter: PostgreSQLAdapter, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Observations before their patient, 1,200 entries apart: the foreign keys are filled."""
    tag = uuid.uuid4().hex[:8]
    patient = f"pat-{tag}"
    resources = [
        observation(f"obs-{tag}-{i}", subject={"reference": f"urn:uuid:{patient}"})
        for i in range(1200)
    ]
    entries: list[dict[str, Any]] = [
        {"resource": r, "request": {"method": "POST"}} for r in resources
    ]
    entries.append(
        {
            "fullUrl": f"urn:uuid:{patient}",
            "resource": {"resourceType": "Patient", "name": [{"family": "Later"}]},
            "request": {"method": "POST"},
        }
    )
    path = tmp_path / "bundle.json"
    path.write_text(
        json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        encoding="utf-8",
    )
    summary = await import_paths([path], adapter, ADMIN)
    assert summary.ok, [f.describe() for f in summary.failed]
    assert summary.types["Observation"].created == 1200
    assert summary.resolved_references["bundle"] == 1200
    assert not summary.dangling_references
    linked = await conn.fetchval(
        "SELECT count(*) FROM hacs_core.observations WHERE patient_id = $1", patient
    )
    assert linked == 1200
    # A file that fails in a late batch writes nothing at all.
    broken = [dict(e) for e in entries[:-1]]
    for e in broken:
        e["resource"] = {**e["resource"], "id": e["resource"]["id"] + "-b"}
    broken.append({"resource": {"resourceType": "Observation", "id": f"nocode-{tag}"}})
    path.write_text(
        json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": broken}),
        encoding="utf-8",
    )
    before = await versions(conn)
    summary = await import_paths([path], adapter, ADMIN)
    assert [f.where for f in summary.failed] == ["entry[1200]"]
    assert await versions(conn) == before
