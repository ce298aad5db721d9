"""BaseResource behaviour: ids, resource types, subclasses, registry, UTC timestamps."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from hacs_models import (
    BaseResource,
    MedicationRequest,
    Observation,
    Patient,
    Practitioner,
    UnknownResourceTypeError,
    get_model_class,
    registered_resource_types,
)
from hacs_models import base as base_module


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[BaseResource]]:
    """Let a test define resource classes without leaking them into the global registry."""
    registry = dict(base_module._REGISTRY)
    monkeypatch.setattr(base_module, "_REGISTRY", registry)
    return registry


@pytest.fixture
def new_york_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with local time fixed to US Eastern (UTC-5 in winter), then restore."""
    monkeypatch.setenv("TZ", "EST+05EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _error_locs(exc: ValidationError) -> list[tuple[int | str, ...]]:
    """The locations of all errors, to assert exactly which fields failed."""
    return [tuple(err["loc"]) for err in exc.errors()]


@pytest.mark.parametrize(
    ("cls", "prefix"),
    [
        (Patient, "patient"),
        (MedicationRequest, "medicationrequest"),
        (Practitioner, "practitioner"),
    ],
)
def test_default_id_is_lowercase_type_and_8_hex(cls: type[BaseResource], prefix: str) -> None:
    """Default ids look like patient-704ac73d and are unique."""
    ids = {cls.model_validate({}).id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(rf"{prefix}-[0-9a-f]{{8}}", i) for i in ids)


def test_observation_default_id() -> None:
    """A resource with required fields gets a typed id as well."""
    assert re.fullmatch(r"observation-[0-9a-f]{8}", Observation(code={"text": "x"}).id)


@pytest.mark.parametrize("good", ["a", "A-1.b", "x" * 64, "123"])
def test_valid_ids_accepted(good: str) -> None:
    """Ids following FHIR rules are accepted as given."""
    assert Patient(id=good).id == good


@pytest.mark.parametrize("bad", ["a b", "", "x" * 65, "a/b", "ä", "a_b"])
def test_invalid_ids_rejected_naming_the_field(bad: str) -> None:
    """Ids breaking FHIR rules fail with an error located at ``id`` explaining the rule."""
    with pytest.raises(ValidationError) as info:
        Patient(id=bad)
    assert _error_locs(info.value) == [("id",)]
    assert "1-64 characters" in str(info.value)


def test_id_assignment_is_validated() -> None:
    """validate_assignment: setting a bad id is rejected too."""
    patient = Patient()
    with pytest.raises(ValidationError) as info:
        patient.id = "a b"
    assert _error_locs(info.value) == [("id",)]


def test_type_name_without_instance() -> None:
    """type_name() gives the type from the class itself."""
    assert Patient.type_name() == "Patient"
    assert MedicationRequest.type_name() == "MedicationRequest"
    with pytest.raises(TypeError):
        BaseResource.type_name()


def test_resource_type_mismatch_is_a_clear_single_error() -> None:
    """Validating another type's data names resource_type and both types."""
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resource_type": "Practitioner"})
    assert _error_locs(info.value) == [("resource_type",)]
    message = str(info.value)
    assert "'Practitioner'" in message and "'Patient'" in message


def test_resource_type_assignment_rejected() -> None:
    """A resource cannot be re-typed by assignment."""
    patient = Patient()
    with pytest.raises(ValidationError):
        patient.resource_type = "Practitioner"
    assert patient.resource_type == "Patient"


def test_subclass_with_own_type_is_its_own_type(
    isolated_registry: dict[str, type[BaseResource]],
) -> None:
    """A subclass declaring a new resource_type registers, ids and validates as itself."""

    class VipPatient(Patient):
        resource_type: str = "VipPatient"
        tier: str = "gold"

    vip = VipPatient(full_name="Ada Lovelace")
    assert vip.resource_type == "VipPatient"
    assert VipPatient.type_name() == "VipPatient"
    assert re.fullmatch(r"vippatient-[0-9a-f]{8}", vip.id)
    assert get_model_class("VipPatient") is VipPatient
    assert get_model_class("Patient") is Patient
    assert VipPatient.model_validate(vip.model_dump(mode="json")) == vip

    with pytest.raises(ValidationError) as info:
        VipPatient.model_validate(Patient().model_dump(mode="json"))
    assert _error_locs(info.value) == [("resource_type",)]
    with pytest.raises(ValidationError) as info:
        Patient.model_validate(vip.model_dump(mode="json"))
    assert _error_locs(info.value) == [("resource_type",)]


def test_subclass_keeping_type_stays_that_type(
    isolated_registry: dict[str, type[BaseResource]],
) -> None:
    """A subclass that does not declare a type is still a Patient and does not re-register."""

    class AnnotatedPatient(Patient):
        flag: bool = False

    assert AnnotatedPatient.type_name() == "Patient"
    assert AnnotatedPatient().resource_type == "Patient"
    assert get_model_class("Patient") is Patient


def test_conflicting_type_name_rejected(isolated_registry: dict[str, type[BaseResource]]) -> None:
    """Two unrelated classes cannot claim the same resource type."""
    with pytest.raises(TypeError, match="already registered"):

        class Patient(BaseResource):  # shadows the real Patient on purpose
            resource_type: str = "Patient"


def test_get_model_class_and_registry() -> None:
    """Lookups find registered classes; the registry copy cannot corrupt the original."""
    assert get_model_class("Observation") is Observation
    types_ = registered_resource_types()
    types_.clear()
    assert get_model_class("Observation") is Observation


def test_unknown_type_error_is_keyerror_with_hint() -> None:
    """An unknown type raises a KeyError subclass suggesting close names."""
    with pytest.raises(KeyError) as info:
        get_model_class("patient")
    assert isinstance(info.value, UnknownResourceTypeError)
    assert "Did you mean 'Patient'" in str(info.value)
    assert len(str(info.value)) < 300


def test_generic_base_resource_keeps_any_type() -> None:
    """BaseResource itself can hold any typed resource as extras (for unknown types)."""
    raw = {"resource_type": "Basic", "code": {"text": "x"}}
    generic = BaseResource.model_validate(raw)
    assert generic.resource_type == "Basic"
    assert generic.id.startswith("basic-")
    assert generic.model_extra == {"code": {"text": "x"}}
    assert BaseResource.model_validate(generic.model_dump(mode="json")) == generic


def test_timestamps_default_to_now_utc_and_version_none() -> None:
    """created_at/updated_at default to now in UTC; version is unset until stored."""
    before = datetime.now(UTC)
    patient = Patient()
    assert patient.created_at.tzinfo is not None
    assert patient.created_at.utcoffset() == timedelta(0)
    assert before <= patient.created_at <= datetime.now(UTC)
    assert patient.version is None


@pytest.mark.usefixtures("new_york_tz")
def test_naive_datetime_is_local_time_stored_as_utc() -> None:
    """A naive datetime is read as local (UTC-5 here) and stored as UTC."""
    obs = Observation(code={"text": "x"}, effective_date_time=datetime(2024, 1, 15, 9, 30))
    assert obs.effective_date_time == datetime(2024, 1, 15, 14, 30, tzinfo=UTC)
    assert obs.effective_date_time is not None
    assert obs.effective_date_time.utcoffset() == timedelta(0)
    assert obs.model_dump(mode="json")["effective_date_time"] == "2024-01-15T14:30:00Z"
    naive_string = Observation.model_validate(
        {"code": {"text": "x"}, "effective_date_time": "2024-01-15T09:30:00"}
    )
    assert naive_string.effective_date_time == obs.effective_date_time


def test_aware_datetime_converted_to_utc() -> None:
    """An aware datetime keeps its instant and is expressed in UTC."""
    plus_two = timezone(timedelta(hours=2))
    obs = Observation(
        code={"text": "x"}, effective_date_time=datetime(2024, 6, 1, 12, 0, tzinfo=plus_two)
    )
    assert obs.effective_date_time is not None
    assert obs.effective_date_time.utcoffset() == timedelta(0)
    assert obs.effective_date_time.hour == 10
    parsed = Observation.model_validate(
        {"code": {"text": "x"}, "effective_date_time": "2024-06-01T12:00:00+02:00"}
    )
    assert parsed.effective_date_time == obs.effective_date_time
    assert parsed.model_dump(mode="json")["effective_date_time"] == "2024-06-01T10:00:00Z"


def test_to_reference_points_at_the_resource() -> None:
    """to_reference gives a "Type/id" Reference usable in other resources' fields."""
    patient = Patient(id="p-42")
    ref = patient.to_reference(display="Carlos")
    assert (ref.reference, ref.resource_type, ref.resource_id) == (
        "Patient/p-42",
        "Patient",
        "p-42",
    )
    assert Observation(code={"text": "x"}, subject=ref).subject == ref
