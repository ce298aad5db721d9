"""Property tests on a real database: any text round-trips, is rejected as invalid, never breaks.

Strings are arbitrary (quotes, ``;``, ``--``, NUL, very long, any non-surrogate code point) and go
into Patient fields, extras, search filter values, filter keys and sort fields. The adapter must
store and return them exactly or refuse them with the documented error (``ResourceValidationError``
for data PostgreSQL cannot hold: NUL characters, and values of btree-indexed key columns over the
~2,700-byte index limit; ``InvalidQueryError`` for bad searches), and nothing else: no driver
error, no partial write, no damaged table.

Each test runs its hypothesis examples on one migrated database and one adapter, on an event loop
of its own (``@given`` functions are synchronous; each example drives the loop).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import ARRAY

from hacs_models import Actor, Address, HumanName, Patient
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import (
    InvalidQueryError,
    ResourceNotFoundError,
    ResourceValidationError,
)
from hacs_persistence.limits import MAX_FILTER_VALUE_BYTES, value_size_exceeds
from hacs_persistence.query.search import OPERATORS
from hacs_persistence.storage.mapping import mapping_for
from tests.conftest import db_connect

T = TypeVar("T")
ADMIN = Actor(name="property-test", role="admin", permissions=["admin:*"])
BOUNDED = settings(
    max_examples=120,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PATIENTS = mapping_for(Patient)
FILTERABLE = PATIENTS.filterable
BTREE_INDEXED = {
    column.key
    for index in PATIENTS.table.indexes
    if index.dialect_options["postgresql"].get("using") in (None, False, "btree")
    for column in index.columns
}
BTREE_MAX_BYTES = 2704 - 16  # btree version 4's limit, less the index tuple header
SORTABLE = {name for name, column in FILTERABLE.items() if not isinstance(column.type, ARRAY)}

# Strings that broke SQL builders, JSON encoders or drivers somewhere, once.
NASTY = [
    "",
    " ",
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "%",
    "_",
    "%_%",
    "/",
    "//",
    ";",
    "--",
    "/*",
    "*/",
    "'; DROP TABLE hacs_core.patients; --",
    "Robert'); DELETE FROM hacs_audit.audit_events; --",
    "$$",
    "$1",
    ":p_id",
    "%(name)s",
    "{}",
    '{"a": 1}',
    "[]",
    "null",
    "\\u0000",
    "\x00",
    "a\x00b",
    "\x01\x02\x1f\x7f",
    "\t\n\r",
    "\u2028\u2029",
    "\ufeff",
    "\u200b\u200d",
    "\uffff\ufffe",
    "\U0010ffff",
    "e\u0301",
    "\u00e9",
    "Ωmega",
    "عربي",
    "עברית",
    "中文字符",
    "🧪🏥👩‍⚕️",
    "ǅ",
    "ß",
    "İ",
]


# Any code point UTF-8 can encode: everything but lone surrogates (NUL included).
ANY_CHAR = st.characters(codec="utf-8")


def _incompressible(seed: int) -> str:
    """A long string of random code points (no surrogates) that compression cannot shrink."""
    rng = random.Random(seed)
    size = rng.randint(2_000, 12_000)
    chars = (rng.choice((rng.randint(0x20, 0x7E), rng.randint(0xA0, 0xD7FF))) for _ in range(size))
    return "".join(map(chr, chars))


def _nasty_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(0, 2**32).map(_incompressible),
        st.sampled_from(NASTY),
        st.text(ANY_CHAR, max_size=40),
        st.lists(st.sampled_from(NASTY), min_size=1, max_size=6).map("".join),
        # Very long: from a thousand to about two million characters, cheap to generate.
        st.tuples(st.sampled_from(NASTY[1:]) | st.text(ANY_CHAR, min_size=1, max_size=3),
                  st.integers(1_000, 60_000)).map(lambda t: t[0] * t[1]),
    )  # fmt: skip


TEXT = _nasty_text()


class Runner:
    """One event loop and one adapter for all the examples of a test."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.loop = asyncio.new_event_loop()
        self.adapter: PostgreSQLAdapter = self.run(create_postgres_adapter(database_url))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        try:
            self.run(self.adapter.close())
        finally:
            self.loop.close()

    async def sql_row(self, query: str, *args: Any) -> tuple[Any, ...] | None:
        conn: asyncpg.Connection = await db_connect(self.url)
        try:
            row = await conn.fetchrow(query, *args)
        finally:
            await conn.close()
        return tuple(row) if row is not None else None

    async def sql(self, query: str, *args: Any) -> Any:
        conn: asyncpg.Connection = await db_connect(self.url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()


@pytest.fixture
def runner(database_url: str) -> Iterator[Runner]:
    created = Runner(database_url)
    try:
        yield created
    finally:
        created.close()


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def extras_strategy() -> st.SearchStrategy[dict[str, Any]]:
    values = st.recursive(
        TEXT | st.none() | st.booleans() | st.integers(-(2**53), 2**53),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=6,
    )
    keys = st.text(ANY_CHAR, max_size=12).map(lambda k: "x_" + k)
    return st.dictionaries(keys, values, max_size=3)


@dataclass
class Stored:
    """What the test stored, to compute expected search results in Python."""

    patients: dict[str, Patient] = field(default_factory=dict)
    rejected_searches: int = 0


def make_patient(full_name: str, family: str, city: str, extras: dict[str, Any]) -> Patient:
    return Patient(
        full_name=full_name,
        name=[HumanName(use="official", family=family, given=["G"])],
        address=[Address(city=city)],
        **extras,
    )


def too_large_to_index(patient: Patient) -> bool:
    """Whether a btree-indexed key column gets a value btree may refuse (over ~2,700 bytes).

    PostgreSQL compresses index entries first, so such a value may also be accepted.
    """
    values = PATIENTS.key_values(patient)
    return any(
        isinstance(values.get(name), str) and len(values[name].encode()) > BTREE_MAX_BYTES
        for name in BTREE_INDEXED
    )


def save_patient(runner: Runner, stored: Stored, patient: Patient) -> Patient | None:
    """Save; NUL anywhere must be refused as invalid data with nothing written."""
    nul = has_nul(patient.model_dump(mode="json"))
    try:
        saved = runner.run(runner.adapter.save(patient, ADMIN))
    except ResourceValidationError as exc:
        assert nul or too_large_to_index(patient), f"valid text refused: {exc}"
        with pytest.raises(ResourceNotFoundError):
            runner.run(runner.adapter.read(Patient, patient.id, ADMIN))
        versions = runner.run(
            runner.sql("SELECT count(*) FROM hacs_core.resource_versions WHERE id = $1", patient.id)
        )
        assert versions == 0, "a refused save left a version behind"
        return None
    assert not nul, "a NUL character was accepted (PostgreSQL cannot store it)"
    stored.patients[saved.id] = saved
    return saved


def test_any_patient_text_round_trips_exactly_or_is_rejected_as_invalid(runner: Runner) -> None:
    stored = Stored()

    @BOUNDED
    @given(full_name=TEXT, family=TEXT, city=TEXT, extras=extras_strategy())
    def example(full_name: str, family: str, city: str, extras: dict[str, Any]) -> None:
        patient = make_patient(full_name, family, city, extras)
        expected = patient.model_dump(mode="json", exclude={"version", "created_at", "updated_at"})
        saved = save_patient(runner, stored, patient)
        if saved is None:
            return
        read = runner.run(runner.adapter.read(Patient, saved.id, ADMIN))
        assert read.full_name == full_name
        assert read.name[0].family == family
        assert read.address[0].city == city
        assert read.model_extra == extras
        got = read.model_dump(mode="json", exclude={"version", "created_at", "updated_at"})
        assert got == expected
        assert read.version == 1

    example()
    # The typed key columns hold exactly the same text as the documents.
    for patient in list(stored.patients.values())[:50]:
        columns = runner.run(
            runner.sql_row(
                "SELECT full_name, family_name, city FROM hacs_core.patients WHERE id = $1",
                patient.id,
            )
        )
        assert columns == (patient.full_name, patient.name[0].family, patient.address[0].city)


def all_results(runner: Runner, filters: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        page = runner.run(
            runner.adapter.search(Patient, ADMIN, filters=filters, limit=1000, cursor=cursor)
        )
        ids.update(p.id for p in page)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def python_match(patient: Patient, field_name: str, op: str, value: Any) -> bool:
    actual = {
        "family_name": patient.name[0].family,
        "full_name": patient.full_name,
        "city": patient.address[0].city,
    }[field_name]
    if actual is None:
        return False  # SQL: NULL matches no comparison
    if op == "eq":
        return bool(actual == value)
    if op == "ne":
        return bool(actual != value)
    if op == "prefix":
        return bool(actual.startswith(value))
    if op == "in":
        return actual in value
    raise AssertionError(op)


def test_search_filter_values_match_python_or_raise_invalid_query(runner: Runner) -> None:
    stored = Stored()
    for i, text in enumerate(NASTY):
        save_patient(runner, stored, make_patient(f"seed {i}", text, text[:5], {}))
    # Some family names share prefixes, so prefix filters have several right answers.
    for text in ("O'Brien", "O'Brian", "O", "100%", "100_", "1000", "a_b", "axb", "a\\b"):
        save_patient(runner, stored, make_patient(text, text, text, {}))
    known = sorted({p.name[0].family or "" for p in stored.patients.values()})

    @BOUNDED
    @given(
        value=TEXT | st.sampled_from(known),
        extra=TEXT,
        field_name=st.sampled_from(["family_name", "full_name", "city"]),
        op=st.sampled_from(["eq", "prefix", "ne", "in"]),
    )
    def example(value: str, extra: str, field_name: str, op: str) -> None:
        argument: Any = [value, extra] if op == "in" else value
        key = field_name if op == "eq" else f"{field_name}__{op}"
        # NUL characters, and values over the documented size limit, are refused.
        if has_nul(argument) or value_size_exceeds(argument, MAX_FILTER_VALUE_BYTES):
            with pytest.raises(InvalidQueryError):
                runner.run(runner.adapter.search(Patient, ADMIN, filters={key: argument}))
            stored.rejected_searches += 1
            return
        expected = {
            pid
            for pid, patient in stored.patients.items()
            if python_match(patient, field_name, op, argument)
        }
        assert all_results(runner, {key: argument}) == expected

    example()
    invalid_audits = runner.run(
        runner.sql(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE action = 'search' "
            "AND outcome = 'invalid'"
        )
    )
    assert invalid_audits == stored.rejected_searches


def _is_allowed_filter(key: str) -> bool:
    name, sep, op = key.partition("__")
    return name in FILTERABLE and (op if sep else "eq") in OPERATORS


KEYS = st.one_of(
    st.text(ANY_CHAR, max_size=30),
    st.sampled_from(NASTY),
    st.sampled_from(sorted(FILTERABLE)).flatmap(
        lambda name: st.sampled_from(
            [f"{name}__{s}" for s in ("", "like", "ilike", "regex", "eq; --", "in)", "raw")]
            + [f"{name}; DROP TABLE hacs_core.patients; --", f"{name} OR 1=1", f'"{name}"']
        )
    ),
)


def test_unknown_filter_keys_and_sort_fields_are_rejected_and_tables_stay_intact(
    runner: Runner,
) -> None:
    stored = Stored()
    for i in range(5):
        save_patient(runner, stored, make_patient(f"Keep {i}", f"Keep{i}", "City", {}))
    patients_before = runner.run(runner.sql("SELECT count(*) FROM hacs_core.patients"))

    @BOUNDED
    @given(key=KEYS, sort=KEYS | KEYS.map(lambda k: "-" + k), value=TEXT)
    def example(key: str, sort: str, value: str) -> None:
        assume(not _is_allowed_filter(key))
        with pytest.raises(InvalidQueryError):
            runner.run(runner.adapter.search(Patient, ADMIN, filters={key: value}))
        stored.rejected_searches += 1
        if sort == "" or sort.removeprefix("-") in SORTABLE:  # "" (falsy): the default, id
            page = runner.run(runner.adapter.search(Patient, ADMIN, order_by=sort, limit=10))
            assert {p.id for p in page} <= set(stored.patients)
        else:
            with pytest.raises(InvalidQueryError):
                runner.run(runner.adapter.search(Patient, ADMIN, order_by=sort))
            stored.rejected_searches += 1

    example()
    assert runner.run(runner.sql("SELECT count(*) FROM hacs_core.patients")) == patients_before
    tables = runner.run(
        runner.sql(
            "SELECT count(*) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL",
            [
                "hacs_core.patients",
                "hacs_core.resource_versions",
                "hacs_audit.audit_events",
                "public.hacs_resources",
                "hacs_admin.alembic_version",
            ],
        )
    )
    assert tables == 5
    invalid_audits = runner.run(
        runner.sql("SELECT count(*) FROM hacs_audit.audit_events WHERE outcome = 'invalid'")
    )
    assert invalid_audits == stored.rejected_searches
    for pid in stored.patients:
        assert runner.run(runner.adapter.read(Patient, pid, ADMIN)).id == pid


def test_array_columns_are_filterable_but_not_sort_fields(runner: Runner) -> None:
    arrays = sorted(set(FILTERABLE) - SORTABLE)
    assert "given_names" in arrays
    for name in arrays:
        for order in (name, "-" + name):
            with pytest.raises(InvalidQueryError, match="Unknown sort field"):
                runner.run(runner.adapter.search(Patient, ADMIN, order_by=order))
