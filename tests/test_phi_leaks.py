"""No patient data or person id in any log line, span or error message of the public API.

The public calls run under DEBUG logging for every logger (SQLAlchemy's engine included) and with
OpenTelemetry spans recorded in memory; everything emitted, and the text of every error raised,
is then searched for planted values: a family name, ids, a birth date, an identifier value.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from hacs_auth import AuthError
from hacs_models import Actor, HumanName, Identifier, Patient
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import HacsPersistenceError
from hacs_persistence.interchange import export_type_ndjson, import_paths, write_patient_bundle
from hacs_persistence.ops.observability import disable_opentelemetry, enable_opentelemetry
from tests.factories import ADMIN

NURSE_ID = "dr-q9w3e7r1"  # a person's id too: refusals must not quote it
NURSE = Actor(id=NURSE_ID, name="nurse", role="nurse", permissions=["patient:read"])
FAMILY = "Brindlethorpe"
PATIENT_ID = "pat-x7q2v9k4"
IMPORTED_ID = "pat-m4r8t1z6"
BROKEN_ID = "pat-c0rr9pt1"
BIRTH = date(1929, 2, 17)
IDENTIFIER = "MRN-48151623"
PLANTED = [
    FAMILY,
    FAMILY.lower(),
    PATIENT_ID,
    IMPORTED_ID,
    BROKEN_ID,
    BIRTH.isoformat(),
    "1929, 2, 17",
    IDENTIFIER,
    NURSE_ID,
]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    enable_opentelemetry(provider)
    try:
        yield exporter
    finally:
        disable_opentelemetry()


def _patient(resource_id: str) -> Patient:
    return Patient(
        id=resource_id,
        name=[HumanName(family=FAMILY, given=["Ada"])],
        birth_date=BIRTH,
        identifier=[Identifier(system="urn:mrn", value=IDENTIFIER)],
    )


def _bundle(path: Path) -> Path:
    entries: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": IMPORTED_ID,
            "name": [{"family": FAMILY}],
            "birthDate": BIRTH.isoformat(),
            "identifier": [{"system": "urn:mrn", "value": IDENTIFIER}],
        },
        {
            "resourceType": "Observation",
            "id": "obs-leak-1",
            "status": "final",
            "code": {"text": "Weight"},
            "subject": {"reference": f"Patient/{IMPORTED_ID}"},
        },
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": e, "request": {"method": "PUT", "url": f"{e['resourceType']}/{e['id']}"}}
            for e in entries
        ],
    }
    path.write_text(json.dumps(bundle))
    return path


def _texts_of(exc: BaseException) -> list[str]:
    """What a log line with ``exc_info`` would show of an error: each error of its chain."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 20:
        texts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        # As a traceback shows it: the cause, else the context unless ``from None`` hid it.
        hidden = current.__suppress_context__
        current = current.__cause__ or (None if hidden else current.__context__)
    return texts


async def _failing(errors: list[str], call: Awaitable[Any]) -> None:
    with pytest.raises(HacsPersistenceError) as caught:
        await call
    errors.extend(_texts_of(caught.value))


async def test_no_planted_value_in_logs_spans_or_errors(
    database_url: str,
    db: asyncpg.Connection,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    errors: list[str] = []
    adapter = await create_postgres_adapter(database_url)
    try:
        saved = await adapter.save(_patient(PATIENT_ID), ADMIN)
        await adapter.read(Patient, PATIENT_ID, ADMIN)
        saved.active = False
        await adapter.update(saved, ADMIN)
        filters = {"family_name": FAMILY, "birth_date": BIRTH.isoformat()}
        await adapter.save(_patient("pat-second01"), ADMIN)
        page = await adapter.search(
            Patient, ADMIN, filters=filters, order_by="family_name", limit=1
        )
        assert page.next_cursor is not None
        await adapter.search(
            Patient, ADMIN, filters=filters, order_by="family_name", cursor=page.next_cursor
        )
        assert len(await adapter.history(Patient, PATIENT_ID, ADMIN)) == 2
        await adapter.read_version(Patient, PATIENT_ID, 1, ADMIN)

        # Failures: bad filter values, unknown fields, a refused actor, missing resources,
        # a version conflict, a stored document that no longer validates.
        await _failing(errors, adapter.search(Patient, ADMIN, filters={"birth_date": FAMILY}))
        await _failing(errors, adapter.search(Patient, ADMIN, filters={"gender__in": FAMILY}))
        await _failing(errors, adapter.read(Patient, "pat-missing9", NURSE.model_copy()))
        await _failing(errors, adapter.delete(Patient, PATIENT_ID, NURSE))
        # hacs_auth's own refusals (a missing permission, a deactivated actor) too.
        inactive = NURSE.model_copy(update={"is_active": False})
        refusals: list[Callable[[], None]] = [
            lambda: NURSE.require("delete", "Patient"),
            lambda: inactive.require("read", "Patient"),
        ]
        for refused in refusals:
            with pytest.raises(AuthError) as denied:
                refused()
            errors.extend(_texts_of(denied.value))
        stale = _patient(PATIENT_ID)
        stale.__dict__["version"] = 1
        await _failing(errors, adapter.update(stale, ADMIN))
        await adapter.save(_patient(BROKEN_ID), ADMIN)
        await db.execute("ALTER TABLE hacs_core.resource_versions DISABLE TRIGGER USER")
        await db.execute(
            "UPDATE hacs_core.resource_versions SET document = jsonb_set(document, "
            "'{birth_date}', to_jsonb($1::text)) WHERE id = $2",
            FAMILY,
            BROKEN_ID,
        )
        await _failing(errors, adapter.read(Patient, BROKEN_ID, ADMIN))
        await _failing(errors, adapter.search(Patient, ADMIN, filters={"family_name": FAMILY}))
        with pytest.raises(ValidationError) as invalid:
            Patient(id=PATIENT_ID, birth_date=FAMILY)
        errors.extend(_texts_of(invalid.value))
        with pytest.raises(ValidationError) as invalid:
            Patient(id=f"{FAMILY} {PATIENT_ID}")
        errors.extend(_texts_of(invalid.value))

        await adapter.delete(Patient, PATIENT_ID, ADMIN)
        await _failing(errors, adapter.read(Patient, PATIENT_ID, ADMIN))

        summary = await import_paths([_bundle(tmp_path / "bundle.json")], adapter, ADMIN)
        assert summary.files[0].status != "failed", summary
        out = io.StringIO()
        assert await write_patient_bundle(adapter, IMPORTED_ID, out, ADMIN) == 2
        assert FAMILY in out.getvalue()  # the export itself does carry the data
        await export_type_ndjson(adapter, "Observation", ADMIN, io.StringIO())
        await _failing(errors, write_patient_bundle(adapter, PATIENT_ID, io.StringIO(), ADMIN))

        await adapter.purge_patient(IMPORTED_ID, ADMIN)
        await _failing(errors, adapter.purge_patient(IMPORTED_ID, ADMIN))
    finally:
        await adapter.close()

    emitted: list[str] = []
    for record in caplog.records:
        emitted.append(record.getMessage())
        emitted.append(str(vars(record)))
        if record.exc_info:
            emitted.append(logging.Formatter().formatException(record.exc_info))
    finished = spans.get_finished_spans()
    assert {s.name for s in finished} >= {"hacs.save", "hacs.search", "hacs.purge_patient"}
    for span in finished:
        emitted.append(span.name)
        emitted.append(str(dict(span.attributes or {})))
        emitted.append(str(span.status.description))
        for event in span.events:
            emitted.append(event.name + str(dict(event.attributes or {})))
    assert len(caplog.records) > 20  # SQLAlchemy's engine and hacs.operations did log
    everything = "\n".join(emitted + errors)
    leaked = [value for value in PLANTED if value in everything]
    assert not leaked, [line for line in emitted + errors if any(v in line for v in leaked)][:5]
