"""Observability: structured logs without PHI; OpenTelemetry spans and metrics when enabled."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hacs_models import Patient
from hacs_persistence import audit_context
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.errors import ResourceNotFoundError
from hacs_persistence.ops.observability import disable_opentelemetry, enable_opentelemetry
from tests.factories import ADMIN, make_patient


@pytest.fixture
def telemetry() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    enable_opentelemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
    try:
        yield exporter, reader
    finally:
        disable_opentelemetry()


async def test_operations_log_structured_records_without_phi(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hacs_persistence.operations")
    async with await create_postgres_adapter(database_url) as adapter:
        with audit_context(request_id="req-42", purpose_of_use="TREAT"):
            saved = await adapter.save(make_patient(), ADMIN)
            with pytest.raises(ResourceNotFoundError):
                await adapter.read(Patient, "patient-00000000", ADMIN)
    records = [r for r in caplog.records if r.name == "hacs_persistence.operations"]
    assert [(r.hacs_operation, r.hacs_outcome) for r in records] == [  # type: ignore[attr-defined]
        ("save", "success"),
        ("read", "ResourceNotFoundError"),
    ]
    assert records[0].hacs_resource_type == "Patient"  # type: ignore[attr-defined]
    assert records[0].hacs_request_id == "req-42"  # type: ignore[attr-defined]
    assert records[1].levelno == logging.INFO  # an expected outcome, not a fault
    text = " ".join(r.getMessage() + str(r.__dict__) for r in records)
    assert "Fernandez" not in text and "Houston" not in text and "555-0198" not in text
    assert saved.id not in text  # not even the resource id of a person


async def test_audit_rows_carry_request_id_and_purpose(database_url: str) -> None:
    async with await create_postgres_adapter(
        database_url, request_id="default-req", purpose_of_use="OPERATIONS"
    ) as adapter:
        await adapter.save(make_patient(), ADMIN)
        with audit_context(request_id="req-7", purpose_of_use="TREAT"):
            await adapter.save(make_patient(), ADMIN)
    from tests.conftest import db_connect

    conn = await db_connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT request_id, purpose_of_use FROM hacs_audit.audit_events ORDER BY id"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("default-req", "OPERATIONS"), ("req-7", "TREAT")]


async def test_spans_and_metrics_when_opentelemetry_is_enabled(
    database_url: str, telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    exporter, reader = telemetry
    async with await create_postgres_adapter(database_url) as adapter:
        saved = await adapter.save(make_patient(), ADMIN)
        await adapter.read(Patient, saved.id, ADMIN)
        metrics = reader.get_metrics_data()
        assert metrics is not None
        names = {
            m.name for rm in metrics.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["hacs.save", "hacs.read"]
    assert spans[0].attributes == {"hacs.operation": "save", "hacs.resource_type": "Patient"}
    assert {"hacs.operation.duration", "hacs.audit.rows", "hacs.pool.checked_out"} <= names
