"""The SQL compilation of FHIRPath agrees with fhirpathpy (a maintained FHIRPath engine).

Every column and ``where`` path of the official suite that is evaluated on the resource itself
(top-level selects, no forEach) and uses only standard FHIRPath is evaluated twice on every
fixture resource of the view's type: by the compiled SQL (as a ``"collection": true`` column, so
the whole collection comes back) and by fhirpathpy with the R4 model; the collections must match.
The suite's own expectations check rows; this checks the expressions on all fixtures, including
values the expected rows never show.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models
from sqlalchemy import text

from hacs_models import Actor
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.views import view_rows
from tests.conftest import TEMPLATE, _fresh_database
from tests.test_sql_on_fhir import DATA

MISSING = (
    "The SQL on FHIR suite is not there: set HACS_SQL_ON_FHIR_DATA to the folder holding "
    "tests/*.json (../shared/data/sql-on-fhir beside the checkout)."
)
ADMIN = Actor(name="views-oracle", role="admin", permissions=["admin:*"])
# SQL on FHIR's own functions and variables (not in FHIRPath), and boundaries (fhirpathpy's
# precision rules differ from the suite's): checked by the suite's expected rows instead.
_NOT_STANDARD = ("getResourceKey", "getReferenceKey", "%rowIndex", "Boundary", "join(")


def _paths() -> list[Any]:
    if DATA is None:
        # Without the suite: a failure under CI=true, else a skip saying why (as the suite's).
        marks = [] if os.environ.get("CI") == "true" else [pytest.mark.skip(MISSING)]
        return [pytest.param(None, None, None, None, id="suite-missing", marks=marks)]
    found: dict[tuple[str, str], Any] = {}
    for path in sorted((DATA / "tests").glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for case in suite["tests"]:
            view = case["view"]
            if case.get("expectError") or not isinstance(view.get("resource"), str):
                continue
            constants = {
                c["name"]: next(v for k, v in c.items() if k.startswith("value"))
                for c in view.get("constant", [])
            }
            expressions = [w["path"] for w in view.get("where", [])]
            for select in view.get("select", []):
                if not any(k in select for k in ("forEach", "forEachOrNull", "repeat")):
                    expressions += [c["path"] for c in select.get("column", [])]
            for expression in expressions:
                if any(marker in expression for marker in _NOT_STANDARD):
                    continue
                key = (path.name, expression)
                found.setdefault(key, (suite["resources"], view["resource"], expression, constants))
    return [pytest.param(*v, id=f"{k[0]}::{k[1]}") for k, v in found.items()]


@pytest.fixture(scope="module")
async def oracle_adapter(server_url: str, template_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    async for url in _fresh_database(server_url, TEMPLATE):
        adapter = await create_postgres_adapter(url)
        try:
            yield adapter
        finally:
            await adapter.close()


def _plain(values: list[Any]) -> list[Any]:
    return [float(v) if isinstance(v, Decimal) else v for v in values]


@pytest.mark.parametrize(("resources", "resource_type", "expression", "constants"), _paths())
async def test_sql_agrees_with_fhirpathpy(
    oracle_adapter: PostgreSQLAdapter,
    resources: list[dict[str, Any]] | None,
    resource_type: str,
    expression: str,
    constants: dict[str, Any],
) -> None:
    if resources is None:
        pytest.fail(MISSING)
    # A fixture without an id gets one for the row key (its paths never read it).
    mine = [
        {"id": f"fixture-{n}", **r}
        for n, r in enumerate(resources)
        if r["resourceType"] == resource_type
    ]
    async with oracle_adapter.engine.begin() as conn:
        await conn.execute(text("DELETE FROM hacs_views.fhir_resources"))
        await conn.execute(
            text(
                "INSERT INTO hacs_views.fhir_resources (resource_type, id, resource) "
                "VALUES (:rt, :id, CAST(:resource AS jsonb))"
            ),
            [{"rt": resource_type, "id": r["id"], "resource": json.dumps(r)} for r in mine],
        )
    view = {
        "resource": resource_type,
        "constant": [{"name": k, "valueString" if isinstance(v, str) else "valueInteger"
                      if isinstance(v, int) and not isinstance(v, bool) else
                      "valueBoolean" if isinstance(v, bool) else "valueDecimal": v}
                     for k, v in constants.items()],
        "select": [{"column": [
            {"name": "id", "path": "id", "type": "id"},
            {"name": "value", "path": expression, "collection": True},
        ]}],
    }  # fmt: skip
    rows = {r["id"]: r["value"] async for r in view_rows(oracle_adapter, view, actor=ADMIN)}
    assert sorted(rows) == sorted(r["id"] for r in mine)
    for resource in mine:
        expected = _plain(evaluate(resource, expression, constants, models["r4"]))
        assert _plain(rows[resource["id"]]) == expected, (resource["id"], expression)
