"""docs/views.md: its worked view compiles to exactly the SQL shown, and works on Synthea data."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.interchange import import_paths
from hacs_persistence.views import compile_view, create_view, view_rows
from tests.docs_blocks import _fenced, sql_blocks
from tests.shared_data import FHIR_DATA, require_fhir_data

PAGE = Path(__file__).resolve().parents[1] / "docs" / "views.md"
ADMIN = Actor(name="views-docs", role="admin", permissions=["admin:*"])
# The smallest Synthea patient bundle (its blood pressure panels are what the page shows).
BUNDLE = "Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json"


def _view() -> dict[str, Any]:
    text = PAGE.read_text(encoding="utf-8")
    (block,) = re.findall(r"^```json\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    view: dict[str, Any] = json.loads(block)
    return view


def _words(sql: str) -> list[str]:
    return sql.split()


def test_the_page_shows_the_sql_the_compiler_generates() -> None:
    (block,) = sql_blocks(PAGE.read_text(encoding="utf-8"))
    body = "\n".join(line for line in block.sql.splitlines() if not line.startswith("-- "))
    # Line breaks were added for reading; the words are the compiler's, exactly.
    assert _words(body) == _words(compile_view(_view()).literal_sql())


@pytest.fixture
async def synthea(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    require_fhir_data()
    adapter = await create_postgres_adapter(database_url)
    try:
        summary = await import_paths([FHIR_DATA / "synthea" / BUNDLE], adapter, ADMIN)
        assert summary.ok
        # No sync: the import itself wrote the FHIR JSON the view reads.
        yield adapter
    finally:
        await adapter.close()


async def test_blood_pressure_view_on_a_synthea_bundle(synthea: PostgreSQLAdapter) -> None:
    source = json.loads((FHIR_DATA / "synthea" / BUNDLE).read_text(encoding="utf-8"))
    panels = {
        e["resource"]["id"]: e["resource"]
        for e in source["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and any(c.get("code") == "55284-4" for c in e["resource"]["code"]["coding"])
    }
    assert panels
    rows = [row async for row in view_rows(synthea, _view(), actor=ADMIN)]
    assert sorted(r["id"] for r in rows) == sorted(panels)
    patients = {r["patient_id"] for r in rows}
    assert len(patients) == 1 and None not in patients
    for row in rows:
        components = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in panels[row["id"]]["component"]
        }
        assert float(row["systolic"]) == pytest.approx(components["8480-6"])
        assert float(row["diastolic"]) == pytest.approx(components["8462-4"])
    assert await create_view(synthea, _view(), actor=ADMIN) == "blood_pressure"


def _blocks(lang: str) -> list[str]:
    return [body for kind, body, _line in _fenced(PAGE.read_text(encoding="utf-8")) if kind == lang]


def _panels_in_the_bundles() -> tuple[int, int]:
    """Blood pressure panels (LOINC 55284-4) and their patients, counted in the bundles' JSON."""
    panels, patients = 0, set()
    for path in sorted((FHIR_DATA / "synthea").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            codings = resource.get("code", {}).get("coding", [])
            if resource["resourceType"] == "Observation" and any(
                c.get("system") == "http://loinc.org" and c.get("code") == "55284-4"
                for c in codings
            ):
                panels += 1
                patients.add(resource["subject"]["reference"])
    return panels, len(patients)


async def test_the_python_example_runs_on_the_synthea_bundles(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_fhir_data()
    [code] = _blocks("python")
    (tmp_path / "blood_pressure.json").write_text(json.dumps(_view()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HACS_FHIR_DATA", str(FHIR_DATA))
    output = io.StringIO()

    def run() -> None:
        # The example calls asyncio.run, so it gets a thread (and an event loop) of its own.
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(PAGE), "exec"), {"__name__": "__main__"})

    await asyncio.to_thread(run)
    lines = output.getvalue().splitlines()
    panels, patients = _panels_in_the_bundles()
    assert panels > 0
    assert lines[:3] == [
        "imported: ok",
        "view: blood_pressure",
        f"{panels} blood pressure panels of {patients} patients",
    ]
    shown = [b for b in _blocks("text") if b.startswith("imported:")]
    assert shown == ["\n".join(lines)], "the page shows what the example prints"
