"""Tests for the permission grammar in ``hacs_auth.permissions``."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from hacs_auth import (
    Permission,
    PermissionFormatError,
    PermissionSet,
    compile_permissions,
    normalize_permissions,
    normalize_resource,
    parse_permission,
)
from hacs_auth.errors import AuthError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("patient:read", "patient:read"),
        (" Patient : READ ", "patient:read"),
        ("OBSERVATION:Write", "observation:write"),
        ("patient:delete", "patient:delete"),
        ("medication_request:read", "medicationrequest:read"),
        ("MedicationRequest:read", "medicationrequest:read"),
        ("medicationrequest:read", "medicationrequest:read"),
        ("medication-request:read", "medicationrequest:read"),
        ("*:read", "*:read"),
        ("patient:*", "patient:*"),
        ("admin:*", "admin:*"),
        ("ADMIN:read", "admin:read"),
        ("*:*", "*:*"),
        ("encounter2:read", "encounter2:read"),
    ],
)
def test_parse_normalises(raw: str, expected: str) -> None:
    assert str(parse_permission(raw)) == expected


def test_spellings_of_one_resource_are_equal() -> None:
    a = parse_permission("medication_request:read")
    b = parse_permission("MedicationRequest:READ")
    assert a == b
    assert hash(a) == hash(b)
    assert a == Permission("Medication_Request", " read ")
    assert (a.resource, a.action) == ("medicationrequest", "read")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("patient", "missing ':'"),
        ("patientread", "missing ':'"),
        ("patient:fly", "unknown action 'fly'"),
        ("patient:", "non-empty"),
        (":read", "non-empty"),
        ("  :  ", "non-empty"),
        ("", "missing ':'"),
        ("patient:read:extra", "too many ':'"),
        ("a:b:c:d", "too many ':'"),
        ("1patient:read", "identifier"),
        ("pat ient:read", "identifier"),
        ("patient!:read", "identifier"),
        ("**:read", "identifier"),
        ("patient:readwrite", "unknown action"),
    ],
)
def test_parse_rejects_bad_shapes(raw: str, fragment: str) -> None:
    with pytest.raises(PermissionFormatError) as info:
        parse_permission(raw)
    message = str(info.value)
    assert fragment in message
    assert repr(raw) in message  # names the bad string
    assert "resource:action" in message  # and states the grammar
    assert info.value.permission == raw


def test_format_error_is_value_error_and_auth_error() -> None:
    with pytest.raises(ValueError):
        parse_permission("nope")
    with pytest.raises(AuthError):
        parse_permission("nope")


def test_format_error_pickles() -> None:
    err = PermissionFormatError("x:y", "unknown action 'y'")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is PermissionFormatError
    assert str(clone) == str(err)
    assert clone.reason == err.reason


@pytest.mark.parametrize("bad", [None, 42, ["patient:read"]])
def test_parse_rejects_non_strings(bad: object) -> None:
    with pytest.raises(PermissionFormatError):
        parse_permission(bad)  # type: ignore[arg-type]


def test_permission_is_immutable() -> None:
    perm = parse_permission("patient:read")
    with pytest.raises(AttributeError):
        perm.action = "write"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MedicationRequest", "medicationrequest"),
        ("medication_request", "medicationrequest"),
        ("Patient", "patient"),
        (" Observation ", "observation"),
        ("*", "*"),
    ],
)
def test_normalize_resource(raw: str, expected: str) -> None:
    assert normalize_resource(raw) == expected


@pytest.mark.parametrize("bad", ["", "  ", "9lives", "pat ient", "a.b"])
def test_normalize_resource_rejects(bad: str) -> None:
    with pytest.raises(PermissionFormatError):
        normalize_resource(bad)


def test_normalize_permissions_dedupes_in_order() -> None:
    got = normalize_permissions(["Patient:Read", "observation:write", "patient:read"])
    assert got == ["patient:read", "observation:write"]
    with pytest.raises(PermissionFormatError):
        normalize_permissions("patient:read")  # a bare string is a mistake


# (held permission, queried permission, implied?)
IMPLICATION_MATRIX = [
    ("patient:read", "patient:read", True),
    ("patient:read", "patient:write", False),
    ("patient:read", "patient:delete", False),
    ("patient:read", "observation:read", False),
    ("patient:write", "patient:read", True),
    ("patient:write", "patient:write", True),
    ("patient:write", "patient:delete", False),
    ("patient:write", "observation:read", False),
    ("patient:delete", "patient:delete", True),
    ("patient:delete", "patient:read", False),
    ("patient:delete", "patient:write", False),
    ("patient:*", "patient:read", True),
    ("patient:*", "patient:write", True),
    ("patient:*", "patient:delete", True),
    ("patient:*", "patient:*", True),
    ("patient:*", "observation:read", False),
    ("patient:read", "patient:*", False),
    ("*:read", "patient:read", True),
    ("*:read", "medicationrequest:read", True),
    ("*:read", "patient:write", False),
    ("*:read", "*:read", True),
    ("*:write", "observation:read", True),
    ("*:write", "observation:delete", False),
    ("patient:read", "*:read", False),
    ("patient:*", "*:read", False),
    ("admin:*", "patient:read", True),
    ("admin:*", "observation:delete", True),
    ("admin:*", "*:*", True),
    ("admin:read", "observation:read", True),
    ("admin:read", "observation:write", False),
    ("admin:write", "patient:read", True),
    ("*:*", "admin:*", True),
    ("*:*", "encounter:delete", True),
    ("*:read", "admin:read", True),
    ("*:read", "admin:write", False),
]


@pytest.mark.parametrize(("held", "query", "expected"), IMPLICATION_MATRIX)
def test_implication_matrix(held: str, query: str, expected: bool) -> None:
    assert parse_permission(held).implies(query) is expected
    assert parse_permission(held).implies(parse_permission(query)) is expected
    perm_set = PermissionSet([held])
    assert perm_set.implies(query) is expected
    q = parse_permission(query)
    assert perm_set.allows(q.resource, q.action) is expected
    assert (query in perm_set) is expected


@pytest.mark.parametrize(
    ("resource_type", "action", "expected"),
    [
        ("Patient", "read", True),
        ("patient", "READ", True),
        ("Patient", "write", True),
        ("Patient", "delete", False),
        ("Observation", "read", True),  # write implies read
        ("Observation", "write", True),
        ("Observation", "delete", False),
        ("MedicationRequest", "read", True),
        ("medication_request", "read", True),
        ("MedicationRequest", "write", False),
        ("Encounter", "read", False),
        ("Patient", "*", False),
        ("*", "read", False),
    ],
)
def test_permission_set_allows(resource_type: str, action: str, expected: bool) -> None:
    perms = PermissionSet(["patient:write", "observation:write", "medication_request:read"])
    assert perms.allows(resource_type, action) is expected
    assert perms.allows(resource_type, action) is expected  # second call hits the cache


def test_permission_set_global_grants() -> None:
    perms = PermissionSet(["*:read", "patient:delete"])
    assert perms.allows("Anything", "read")
    assert perms.allows("Patient", "delete")
    assert perms.allows("Patient", "read")
    assert not perms.allows("Patient", "write")
    assert not perms.allows("Observation", "delete")
    assert perms.allows("*", "read")
    assert not perms.allows("*", "delete")

    everything = PermissionSet(["admin:*"])
    for action in ("read", "write", "delete", "*"):
        assert everything.allows("Observation", action)
        assert everything.allows("*", action)


def test_empty_permission_set_allows_nothing() -> None:
    perms = PermissionSet()
    assert len(perms) == 0
    for action in ("read", "write", "delete", "*"):
        assert not perms.allows("Patient", action)


@pytest.mark.parametrize(("resource_type", "action"), [("Patient", "fly"), ("bad type", "read")])
def test_allows_rejects_malformed_queries(resource_type: str, action: str) -> None:
    with pytest.raises(PermissionFormatError):
        PermissionSet(["*:*"]).allows(resource_type, action)


def test_permission_set_rejects_invalid_input() -> None:
    with pytest.raises(PermissionFormatError, match="patient:fly"):
        PermissionSet(["patient:read", "patient:fly"])
    with pytest.raises(PermissionFormatError):
        PermissionSet("patient:read")


def test_permission_set_equality_and_contents() -> None:
    a = PermissionSet(["patient:read", "Observation:Write", "patient:read"])
    b = PermissionSet(["observation:write", "patient:read"])
    assert a == b
    assert hash(a) == hash(b)
    assert a != PermissionSet(["patient:read"])
    assert [str(p) for p in a] == ["patient:read", "observation:write"]
    assert len(a) == 2
    assert "patient:fly" not in a  # malformed strings are simply absent
    assert 42 not in a


def test_compile_permissions_is_cached_and_validated() -> None:
    first = compile_permissions(["patient:read"])
    assert compile_permissions(["patient:read"]) is first
    assert compile_permissions([parse_permission("patient:read")]) is first
    with pytest.raises(PermissionFormatError):
        compile_permissions(["patient"])
    with pytest.raises(PermissionFormatError):
        compile_permissions([None])  # type: ignore[list-item]


def test_hacs_auth_imports_no_upper_layer() -> None:
    code = (
        "import sys, hacs_auth\n"
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'hacs_models', 'hacs_persistence', 'hacs_tools'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
