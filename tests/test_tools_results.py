"""failure_from_exception: every known error gets its code, and no message quotes resource data."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hacs_auth import InsufficientPermissionError, InvalidTokenError
from hacs_models import Patient
from hacs_persistence.errors import (
    ConfigurationError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    HacsPersistenceError,
    InvalidQueryError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    ResourceNotFoundError,
    ResourceValidationError,
    SchemaNotMigratedError,
    TransientDatabaseError,
    UniqueViolationError,
    VersionConflictError,
)
from hacs_tools import ErrorCode, HACSResult
from hacs_tools.results import ToolError, failure_from_exception


def _fail(exc: Exception) -> HACSResult:
    result = failure_from_exception(exc, operation="read_resource", actor_id="a-1")
    assert result.success is False
    assert result.actor_id == "a-1"
    return result


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ResourceNotFoundError("Patient", "p-1"), "not_found"),
        (PermissionDeniedError("no", permission="patient:read"), "permission_denied"),
        (VersionConflictError("Patient", "p-1", 1, 2), "version_conflict"),
        (InvalidQueryError("bad filter"), "invalid_query"),
        (UniqueViolationError("taken"), "unique_violation"),
        (ReferentialIntegrityError("missing", reference="Patient/p-9"), "referential_integrity"),
        (ResourceValidationError("bad"), "validation"),
        (OutcomeUnknownError("lost at commit"), "outcome_unknown"),
        (DatabaseUnavailableError("down"), "database_unavailable"),
        (DatabaseTimeoutError("slow"), "database_timeout"),
        (TransientDatabaseError("deadlock"), "transient"),
        (SchemaNotMigratedError("migrate"), "schema_not_migrated"),
        (ConfigurationError("bad url"), "configuration"),
        (HacsPersistenceError("other"), "database_error"),
        (InsufficientPermissionError("patient:read", "a-1"), "permission_denied"),
        (InvalidTokenError("bad signature"), "auth_error"),
        (ToolError(ErrorCode.NO_ACTOR, "nobody"), "no_actor"),
        (LookupError("Maria Garcia"), "internal_error"),
    ],
)
def test_each_error_gets_its_code(exc: Exception, code: str) -> None:
    result = _fail(exc)
    assert result.error == code
    assert code in {c.value for c in ErrorCode}
    assert result.message


def test_unexpected_error_reports_only_its_type() -> None:
    result = _fail(LookupError("Maria Garcia"))
    assert "LookupError" in result.message
    assert "Maria" not in result.message
    assert result.data == {"exception_type": "LookupError"}


def test_unique_violation_drops_the_key_values() -> None:
    exc = UniqueViolationError(
        "A unique key is already taken: Key (name, definition_version)=(Maria Garcia, 1) "
        "already exists."
    )
    result = _fail(exc)
    assert "(name, definition_version)" in result.message
    assert "Maria" not in result.message


def test_stored_document_that_fails_validation_hides_its_content() -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"gender": "Maria Garcia"})
    exc = ResourceValidationError(f"A stored Patient document does not validate: {info.value}")
    exc.__cause__ = info.value
    # hacs models hide the input in pydantic's own text too (hide_input_in_errors)...
    result = _fail(exc)
    assert result.error == "validation"
    assert "gender" in result.message
    assert "Maria" not in result.message + repr(result.data)  # ...the result does not


def test_validation_message_lists_a_few_fields_and_counts_the_rest() -> None:
    data = {"birth_date": "x", "gender": "x", "active": "x", "deceased_boolean": "x"}
    data |= {"deceased_date_time": "x", "id": "bad id!", "created_at": "x"}
    with pytest.raises(ValidationError) as info:
        Patient.model_validate(data)
    result = _fail(info.value)
    assert result.data is not None
    assert len(result.data["errors"]) == 7
    assert "(and 2 more)" in result.message


def test_version_conflict_messages() -> None:
    exists = _fail(VersionConflictError("Patient", "p-1", None, 3))
    assert "already exists" in exists.message and "expected_version=3" in exists.message
    unversioned = _fail(VersionConflictError("Patient", "p-1", None, None))
    assert "expected_version=" in unversioned.message
    stale = _fail(VersionConflictError("Patient", "p-1", 1, 2))
    assert stale.data == {
        "resource_type": "Patient",
        "id": "p-1",
        "expected_version": 1,
        "stored_version": 2,
    }
