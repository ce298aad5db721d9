"""The official SQL on FHIR v2 test suite, run through the SQL compiler against PostgreSQL.

One pytest case per suite case (``file::title``). Each loads its file's fixture resources as the
only rows of ``hacs_views.fhir_resources``, runs the view with ``view_rows`` (one SELECT, as an
admin actor through the gate) and compares rows order-insensitively (values as JSON); then
creates it as ``hacs_views.<name>`` and checks the created view gives the same rows.
``expectError`` cases must raise ``ViewDefinitionError``. Unsupported cases are strict xfails
with their reason (a case that starts passing fails the run until its mark is removed).

The data is read in place from ``HACS_SQL_ON_FHIR_DATA`` (default ``../shared/data/sql-on-fhir``
beside the checkout); without it the module fails under ``CI=true`` and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.adapters.fhir_snapshot import patient_of
from hacs_persistence.views import (
    ViewDefinitionError,
    compile_view,
    create_view,
    drop_view,
    view_rows,
)
from tests.conftest import TEMPLATE, _fresh_database
from tests.shared_data import beside_checkout

ADMIN = Actor(name="views-suite", role="admin", permissions=["admin:*"])
# HACS_SQL_ON_FHIR_DATA when set (and then only it), else shared/data/sql-on-fhir beside the
# checkout (or beside a parent folder of it), as for the FHIR corpus.
_CONFIGURED = os.environ.get("HACS_SQL_ON_FHIR_DATA")
_FOLDER = Path(_CONFIGURED) if _CONFIGURED else beside_checkout("sql-on-fhir")
DATA = _FOLDER if (_FOLDER / "tests").is_dir() else None

# Cases the compiler does not support yet, each with why (strict: a fix must remove the mark).
UNSUPPORTED: dict[str, str] = {}


def _cases() -> list[Any]:
    if DATA is None:
        reason = (
            "SQL on FHIR suite not found: set HACS_SQL_ON_FHIR_DATA to the folder holding "
            "tests/*.json (../shared/data/sql-on-fhir beside the checkout)."
        )
        if os.environ.get("CI") == "true":
            # A loud failure: CI must not pass without having run the suite.
            return [pytest.param(None, None, id="suite-missing")]
        return [pytest.param(None, None, id="suite-missing", marks=pytest.mark.skip(reason))]
    params = []
    for path in sorted((DATA / "tests").glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for case in suite["tests"]:
            case_id = f"{path.name}::{case['title']}"
            marks = []
            if case_id in UNSUPPORTED:
                marks.append(pytest.mark.xfail(strict=True, reason=UNSUPPORTED[case_id]))
            params.append(pytest.param(suite["resources"], case, id=case_id, marks=marks))
    return params


@pytest.fixture(scope="module")
async def suite_adapter(server_url: str, template_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    """One fresh migrated database for the module; each case replaces its rows."""
    async for url in _fresh_database(server_url, TEMPLATE):
        adapter = await create_postgres_adapter(url)
        try:
            yield adapter
        finally:
            await adapter.close()


async def _load(adapter: PostgreSQLAdapter, resources: list[dict[str, Any]]) -> None:
    rows = [
        {
            "rt": r["resourceType"],
            # A fixture without an id still needs a key (its view never reads one).
            "id": r.get("id", f"fixture-{position}"),
            "patient": patient_of(r["resourceType"], r, None),
            "resource": json.dumps(r),
        }
        for position, r in enumerate(resources)
    ]
    async with adapter.engine.begin() as conn:
        await conn.execute(text("DELETE FROM hacs_views.fhir_resources"))
        await conn.execute(
            text(
                "INSERT INTO hacs_views.fhir_resources (resource_type, id, patient_id, resource) "
                "VALUES (:rt, :id, :patient, CAST(:resource AS jsonb))"
            ),
            rows,
        )


def _key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _normal(rows: list[dict[str, Any]]) -> list[str]:
    # JSON round trip: 5 and 5.0 compare equal as Python numbers, so rows compare as values.
    return sorted(_key(json.loads(json.dumps(r, default=float))) for r in rows)


def _same(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    remaining = [json.loads(json.dumps(r, default=float)) for r in actual]
    for row in expected:
        assert row in remaining, (row, actual)
        remaining.remove(row)


async def _view_table(adapter: PostgreSQLAdapter, name: str) -> list[dict[str, Any]]:
    async with adapter.engine.connect() as conn:
        result = await conn.execute(text(f'SELECT to_jsonb(t) FROM hacs_views."{name}" AS t'))
        return [json.loads(v) if isinstance(v, str) else v for (v,) in result]


@pytest.mark.parametrize(("resources", "case"), _cases())
async def test_case(
    suite_adapter: PostgreSQLAdapter,
    resources: list[dict[str, Any]] | None,
    case: dict[str, Any] | None,
) -> None:
    if resources is None or case is None:
        pytest.fail(
            "The SQL on FHIR suite is not there: set HACS_SQL_ON_FHIR_DATA to the folder holding "
            "tests/*.json (../shared/data/sql-on-fhir beside the checkout)."
        )
    adapter = suite_adapter
    await _load(adapter, resources)
    view = case["view"]
    # The fixtures are FHIR JSON written straight into fhir_resources, with no typed rows: the
    # views read every column from the JSON (test_views_typed.py checks the typed compilation
    # against this one on data stored through hacs).
    if case.get("expectError"):
        with pytest.raises(ViewDefinitionError):
            [row async for row in view_rows(adapter, view, actor=ADMIN, typed=False)]
        return
    rows = [row async for row in view_rows(adapter, view, actor=ADMIN, typed=False)]
    _same(rows, case["expect"])
    if "expectColumns" in case:
        assert compile_view(view).columns == case["expectColumns"]
    name = await create_view(adapter, view, name="suite_case", actor=ADMIN, typed=False)
    try:
        _same(await _view_table(adapter, name), case["expect"])
    finally:
        await drop_view(adapter, name, actor=ADMIN)
