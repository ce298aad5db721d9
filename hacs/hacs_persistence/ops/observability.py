"""Structured logs and optional OpenTelemetry spans and metrics for adapter operations.

Every adapter operation logs one structured record on the ``hacs_persistence.operations`` logger:
the operation, resource type, outcome and duration, plus the request id and purpose of use when
set. A success is logged at DEBUG; an outcome the caller expects and handles (not found, denied,
a version or unique conflict, invalid input, a cancellation) at INFO; only a fault (the database
is unreachable or timed out, the schema is not migrated, a stored document no longer validates,
an unexpected exception) at WARNING. The package logs through a ``NullHandler``: nothing is
printed unless the application configures logging. Records never hold resource content, ids of
people, or secrets. With ``enable_opentelemetry()`` (install the ``otel`` extra) each operation
is also a span, and the operation latency, audit volume and pool use are recorded as metrics.
Off by default: the cost is then one clock read and a level check per call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from hacs_auth.errors import AuthError
from hacs_models import UnknownResourceTypeError
from hacs_persistence.access.audit import current_audit_context
from hacs_persistence.errors import (
    PermissionDeniedError,
    ResourceNotFoundError,
    ResourceValidationError,
    StoredDocumentError,
    VersionConflictError,
)

__all__ = ["enable_opentelemetry", "observed", "operations_logger", "outcome_level"]

operations_logger = logging.getLogger("hacs_persistence.operations")

# Outcomes a caller expects and handles, not faults: a miss, a refusal, a conflict (version,
# unique key, reference), invalid input, or the caller giving up (cancellation, Ctrl-C).
_EXPECTED: tuple[type[BaseException], ...] = (
    ResourceNotFoundError,
    PermissionDeniedError,
    VersionConflictError,
    ResourceValidationError,  # with InvalidQueryError, UniqueViolationError, ReferentialIntegrity
    UnknownResourceTypeError,
    AuthError,
    asyncio.CancelledError,
    KeyboardInterrupt,
)

P = ParamSpec("P")
T = TypeVar("T")


class _Telemetry:
    tracer: Any = None
    duration: Any = None
    audit_rows: Any = None


_telemetry = _Telemetry()
# A resource type name; a string argument that is not one (an id) is never logged.
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


def enable_opentelemetry(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Emit a span per operation and the hacs metrics through OpenTelemetry.

    Uses the global providers unless given. Needs ``pip install 'hacs[otel]'``.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:  # the extra is optional
        raise RuntimeError(
            "OpenTelemetry is not installed: pip install 'hacs[otel]' (opentelemetry-api)."
        ) from exc
    tracer_source = tracer_provider or trace.get_tracer_provider()
    meter_source = meter_provider or metrics.get_meter_provider()
    _telemetry.tracer = tracer_source.get_tracer("hacs_persistence")
    meter = meter_source.get_meter("hacs_persistence")
    _telemetry.duration = meter.create_histogram(
        "hacs.operation.duration", unit="ms", description="Adapter operation latency"
    )
    _telemetry.audit_rows = meter.create_counter(
        "hacs.audit.rows", description="Audit rows written by adapter operations"
    )

    def pool_use(_options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        from hacs_persistence.db.engine import pool_statistics

        return [Observation(used, {"pool": name}) for name, used in pool_statistics().items()]

    meter.create_observable_gauge(
        "hacs.pool.checked_out", callbacks=[pool_use], description="Connections in use"
    )


def disable_opentelemetry() -> None:
    """Stop emitting spans and metrics (tests, or switching providers)."""
    _telemetry.tracer = _telemetry.duration = _telemetry.audit_rows = None


def _resource_type(args: tuple[Any, ...]) -> str | None:
    # The first argument after self is a resource, a model class, or a type name.
    if len(args) < 2:
        return None
    first = args[1]
    if isinstance(first, str):
        return first if _TYPE_NAME.fullmatch(first) else None
    if inspect.isclass(first):
        name = getattr(first, "model_fields", {}).get("resource_type")
        return name.default if name is not None and isinstance(name.default, str) else None
    if isinstance(first, (list, tuple)):
        return None
    value = getattr(first, "resource_type", None)
    return value if isinstance(value, str) else None


def observed(
    operation: str, *, resource_type: str | None = None
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Log (and, when enabled, trace and measure) an async adapter operation.

    ``resource_type``: the operation's fixed type, for operations whose first argument is not
    a type (``purge_patient`` takes a patient id, which must never be logged).
    """
    fixed_type = resource_type

    # The wrapper is a coroutine function: callers may hand its result to asyncio.create_task.
    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            resource_type = fixed_type or _resource_type(args)
            span_cm = None
            if _telemetry.tracer is not None:
                span_cm = _telemetry.tracer.start_as_current_span(
                    f"hacs.{operation}",
                    attributes={
                        "hacs.operation": operation,
                        "hacs.resource_type": resource_type or "",
                    },
                )
                span_cm.__enter__()
            outcome = "success"
            level = logging.DEBUG
            try:
                return await func(*args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                level = outcome_level(exc)
                raise
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                _record(operation, resource_type, outcome, elapsed, level)
                if span_cm is not None:
                    span_cm.__exit__(None, None, None)

        return wrapper

    return decorate


def outcome_level(exc: BaseException) -> int:
    """The log level of an operation that raised ``exc``: INFO when expected, else WARNING."""
    # A stored document that no longer validates is a ResourceValidationError, but a fault of
    # the data at rest (changed by hand, or by a migration), not of the caller's input.
    if isinstance(exc, _EXPECTED) and not isinstance(exc, StoredDocumentError):
        return logging.INFO
    return logging.WARNING


def _record(
    operation: str, resource_type: str | None, outcome: str, elapsed_ms: float, level: int
) -> None:
    if operations_logger.isEnabledFor(level):
        context = current_audit_context()
        operations_logger.log(
            level,
            "hacs %s %s: %s in %.2f ms",
            operation,
            resource_type or "-",
            outcome,
            elapsed_ms,
            extra={
                "hacs_operation": operation,
                "hacs_resource_type": resource_type,
                "hacs_outcome": outcome,
                "hacs_duration_ms": round(elapsed_ms, 3),
                "hacs_request_id": context.request_id,
                "hacs_purpose_of_use": context.purpose_of_use,
            },
        )
    if _telemetry.duration is not None:
        attributes = {
            "operation": operation,
            "resource_type": resource_type or "",
            "outcome": outcome,
        }
        _telemetry.duration.record(elapsed_ms, attributes)
        if outcome == "success":
            _telemetry.audit_rows.add(1, attributes)
