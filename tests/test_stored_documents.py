"""One stored document that no longer validates fails only the read or page that holds it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_models import HumanName, Patient
from hacs_persistence.errors import StoredDocumentError
from hacs_persistence.interchange import export_type_ndjson
from tests.docs_blocks import _fenced as fenced
from tests.factories import ADMIN

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
PLANTED = "Quorvexhild"
BROKEN = [
    # A field of the wrong type, quoting a planted value, and documents that are no resource.
    f'{{"resource_type": "Patient", "birth_date": "{PLANTED}", "name": [{{"family": 7}}]}}',
    f'"{PLANTED}"',
    "[1, 2]",
]


def _operators_query() -> str:
    """docs/operations.md: the query that finds the stored documents that failed to load."""
    blocks = [
        body
        for lang, body, _ in fenced(OPERATIONS.read_text(encoding="utf-8"))
        if lang == "postgresql" and "stored document invalid" in body
    ]
    assert len(blocks) == 1
    return blocks[0]


async def _corrupt(db: asyncpg.Connection, typed: bool, resource_id: str, document: str) -> None:
    if typed:
        # The versions table is append-only for the application; an operator's hand is not.
        await db.execute("ALTER TABLE hacs_core.resource_versions DISABLE TRIGGER USER")
        await db.execute(
            "UPDATE hacs_core.resource_versions SET document = $1::jsonb WHERE id = $2",
            document,
            resource_id,
        )
    else:
        await db.execute(
            "UPDATE public.hacs_resources SET document = $1::jsonb WHERE id = $2",
            document,
            resource_id,
        )


@pytest.mark.parametrize("document", BROKEN)
async def test_an_invalid_document_fails_only_its_read_and_its_page(
    adapter: Any, db: asyncpg.Connection, document: str
) -> None:
    saved = [await adapter.save(Patient(name=[HumanName(family=f"F{i}")]), ADMIN) for i in range(7)]
    ids = sorted(p.id for p in saved)
    bad = ids[3]
    await _corrupt(db, adapter.typed_storage, bad, document)

    for resource_id in ids:
        if resource_id != bad:
            assert (await adapter.read(Patient, resource_id, ADMIN)).id == resource_id
    with pytest.raises(StoredDocumentError) as caught:
        await adapter.read(Patient, bad, ADMIN)
    message = str(caught.value)
    assert "Patient" in message and "audit row" in message
    assert bad not in message and PLANTED not in message
    assert caught.value.__cause__ is None  # pydantic's text (with the values) is not chained

    # Pages of 2 in id order: the bad one is the second row of the second page.
    seen: list[str] = []
    failed = 0
    cursor = None
    while True:
        try:
            page = await adapter.search(Patient, ADMIN, limit=2, cursor=cursor)
        except StoredDocumentError as exc:
            failed += 1
            assert exc.position == 2
            assert bad not in str(exc) and PLANTED not in str(exc)
            cursor = exc.next_cursor
            assert cursor is not None
            continue
        seen.extend(p.id for p in page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert failed == 1
    assert seen == [i for i in ids if i not in ids[2:4]]

    # The operator finds the resource with the query of docs/operations.md, run as written.
    rows = list(reversed(await db.fetch(_operators_query())))
    assert [r["action"] for r in rows] == ["read", "search"]
    assert rows[0]["resource_id"] == bad
    assert list(rows[1]["resource_ids"]) == [bad]
    assert all(PLANTED not in (r["detail"] or "") for r in rows)


async def test_an_export_stops_at_an_invalid_document_and_audits_its_id(
    adapter: Any, db: asyncpg.Connection
) -> None:
    saved = [await adapter.save(Patient(name=[HumanName(family=f"F{i}")]), ADMIN) for i in range(3)]
    bad = sorted(p.id for p in saved)[1]
    await _corrupt(db, adapter.typed_storage, bad, BROKEN[0])
    out = io.StringIO()
    with pytest.raises(StoredDocumentError) as caught:
        await export_type_ndjson(adapter, "Patient", ADMIN, out, page_size=2)
    assert caught.value.position == 2
    assert bad not in str(caught.value) and PLANTED not in str(caught.value)
    assert out.getvalue() == ""  # nothing of the failing page was handed out
    row = await db.fetchrow(
        "SELECT action, resource_id, detail FROM hacs_audit.audit_events WHERE outcome = 'error'"
    )
    assert row is not None and row["action"] == "export" and row["resource_id"] == bad
    assert row["detail"].startswith("stored document invalid")
