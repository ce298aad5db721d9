"""docs/analytics.md: every SQL block runs and returns the right rows; its column tables match.

The data is written through the adapter; the expected rows are computed here in Python from the
same resources, so a query that drops a filter (deleted rows, void statuses, a code system) or
picks the wrong "latest" row fails.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

from hacs_models import (
    Actor,
    CodeableConcept,
    Condition,
    ContactPoint,
    Encounter,
    Observation,
    Patient,
    Period,
)
from hacs_persistence import create_postgres_adapter
from hacs_persistence.interchange import import_paths
from hacs_persistence.query.repositories import PatientRepository, session_scope
from hacs_persistence.schema import TYPED_TABLES, metadata
from hacs_persistence.schema.base import TypedResourceTable
from tests.docs_blocks import MarkdownTable, section, sql_blocks, tables
from tests.shared_data import FHIR_DATA, require_fhir_data

DOC = Path(__file__).resolve().parents[1] / "docs" / "analytics.md"
ACTOR = Actor(name="analyst-seed", role="system", permissions=["admin:*"])
LOINC = "http://loinc.org"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
VOID = ("entered-in-error", "cancelled")
ABNORMAL_FLAGS = ("H", "L", "A", "HH", "LL")
ACTIVE = ("active", "recurrence", "relapse")
DISCARDED = ("refuted", "entered-in-error")
SCHEMA_NAMES = {
    "hacs_core",
    "hacs_clinical",
    "hacs_registry",
    "hacs_agents",
    "hacs_admin",
    "hacs_audit",
    "public",
}


def markdown() -> str:
    return DOC.read_text(encoding="utf-8")


# -- the data --------------------------------------------------------------------------------


def obs(
    id_: str,
    patient: str,
    code: str,
    value: float | None,
    at: datetime,
    *,
    unit: str = "mmHg",
    system: str = LOINC,
    display: str | None = None,
    status: str = "final",
    flag: str | None = None,
    encounter: str | None = None,
    text: str | None = None,
) -> Observation:
    o = Observation(
        id=id_,
        code=CodeableConcept(coding=[{"system": system, "code": code, "display": display}]),
        subject=f"Patient/{patient}",
        encounter=f"Encounter/{encounter}" if encounter else None,
        effective_date_time=at,
        status=status,
        interpretation=[CodeableConcept(coding=[{"code": flag}])] if flag else [],
        value_codeable_concept=CodeableConcept(text=text) if text else None,
    )
    if value is not None:
        o.set_quantity_value(value, unit)
    return o


def cond(
    id_: str, patient: str, display: str, status: str, onset: datetime, verification: str | None
) -> Condition:
    return Condition(
        id=id_,
        code=CodeableConcept(
            coding=[{"system": "http://snomed.info/sct", "code": id_}], text=display
        ),
        clinical_status=CodeableConcept(coding=[{"code": status}]),
        verification_status=CodeableConcept(coding=[{"code": verification}])
        if verification
        else None,
        subject=f"Patient/{patient}",
        onset_date_time=onset,
    )


@dataclass
class Data:
    patients: list[Patient]
    encounters: list[Encounter]
    observations: list[Observation]
    conditions: list[Condition]
    deleted: set[str]

    def live_patient(self, patient_id: str | None) -> Patient | None:
        return next(
            (p for p in self.patients if p.id == patient_id and p.id not in self.deleted), None
        )

    def live_results(self) -> list[Observation]:
        return [o for o in self.observations if o.id not in self.deleted and o.status not in VOID]


def build() -> Data:
    patients = [
        Patient(
            id="patient-ana",
            full_name="Ana Fernandes",
            gender="female",
            birth_date=date(1980, 3, 15),
            marital_status=CodeableConcept(text="Married"),
            telecom=[ContactPoint(system="phone", value="+1 555 0101")],
        ),
        Patient(
            id="patient-bob",
            full_name="Bob Smith",
            gender="male",
            birth_date=date(1975, 7, 1),
            telecom=[ContactPoint(system="phone", value="+1 555 0102")],
        ),
        Patient(
            id="patient-carla",
            full_name="Carla Mendes",
            gender="female",
            birth_date=date(1990, 12, 31),
        ),
        Patient(
            id="patient-dan", full_name="Dan Fernhill", gender="male", birth_date=date(2001, 1, 1)
        ),
        Patient(id="patient-eve", full_name="Eve Fernandes", gender="female"),
    ]

    def enc(id_: str, patient: str, start: datetime) -> Encounter:
        return Encounter(
            id=id_, status="finished", subject=f"Patient/{patient}", period=Period(start=start)
        )

    encounters = [
        enc("enc-ana-1", "patient-ana", T0),
        enc("enc-ana-2", "patient-ana", T0 + 30 * DAY),
        enc("enc-bob-1", "patient-bob", T0 + 5 * DAY),
        enc("enc-carla-1", "patient-carla", T0 + 7 * DAY),
        enc("enc-dan-1", "patient-dan", T0 + 2 * DAY),
        enc("enc-gone", "patient-ana", T0 + 40 * DAY),
    ]
    sbp, dbp, hr = "Systolic blood pressure", "Diastolic blood pressure", "Heart rate"
    observations = [
        obs(
            "obs-ana-sys-1",
            "patient-ana",
            "8480-6",
            150,
            T0,
            display=sbp,
            flag="H",
            encounter="enc-ana-1",
        ),
        obs(
            "obs-ana-sys-2",
            "patient-ana",
            "8480-6",
            120,
            T0 + 30 * DAY,
            display=sbp,
            encounter="enc-ana-2",
        ),
        obs(
            "obs-ana-dia-1",
            "patient-ana",
            "8462-4",
            95,
            T0,
            display=dbp,
            flag="H",
            encounter="enc-ana-1",
        ),
        obs(
            "obs-ana-hr-1",
            "patient-ana",
            "8867-4",
            72,
            T0,
            unit="/min",
            display=hr,
            encounter="enc-ana-1",
        ),
        obs("obs-ana-smoke", "patient-ana", "72166-2", None, T0, text="Never smoker"),
        obs(
            "obs-ana-gone",
            "patient-ana",
            "8480-6",
            99,
            T0 + 41 * DAY,
            display=sbp,
            encounter="enc-gone",
        ),
        obs(
            "obs-bob-sys-1",
            "patient-bob",
            "8480-6",
            118,
            T0 + 5 * DAY,
            display=sbp,
            encounter="enc-bob-1",
        ),
        obs("obs-bob-sys-2", "patient-bob", "8480-6", 150, T0 + 6 * DAY, display=sbp),
        obs(
            "obs-bob-dia-1",
            "patient-bob",
            "8462-4",
            80,
            T0 + 5 * DAY,
            display=dbp,
            encounter="enc-bob-1",
        ),
        obs("obs-bob-hr-1", "patient-bob", "8867-4", 75, T0 + 5 * DAY, unit="/min", display=hr),
        obs("obs-bob-hr-2", "patient-bob", "8867-4", 1.25, T0 + 6 * DAY, unit="Hz", display=hr),
        obs("obs-carla-sys-1", "patient-carla", "8480-6", 85, T0 + 7 * DAY, display=sbp, flag="L"),
        obs(
            "obs-carla-sys-gone",
            "patient-carla",
            "8480-6",
            300,
            T0 + 8 * DAY,
            display=sbp,
            encounter="enc-carla-1",  # deleted: the encounter still counts 0
        ),
        obs("obs-carla-dia-1", "patient-carla", "8462-4", 71, T0 + 7 * DAY, display=dbp),
        obs(
            "obs-dan-sys-1",
            "patient-dan",
            "8480-6",
            130,
            T0 + 2 * DAY,
            display=sbp,
            encounter="enc-dan-1",
        ),
        obs(
            "obs-dan-sys-err",
            "patient-dan",
            "8480-6",
            200,
            T0 + 3 * DAY,
            display=sbp,
            status="entered-in-error",
            encounter="enc-dan-1",
        ),
        obs(
            "obs-dan-local",
            "patient-dan",
            "8480-6",
            999,
            T0 + 4 * DAY,
            system="urn:local",
            display=sbp,
        ),
        obs("obs-eve-sys-1", "patient-eve", "8480-6", 170, T0, display=sbp),
    ]
    by_id = {o.id: o for o in observations}
    by_id["obs-ana-dia-1"].add_note("Patient anxious", author="nurse")
    by_id["obs-ana-dia-1"].body_site = CodeableConcept(text="Left arm")
    by_id["obs-carla-sys-gone"].add_note("Cuff too small")
    by_id["obs-eve-sys-1"].add_note("Deleted patient")
    conditions = [
        cond("cond-ana-htn", "patient-ana", "Hypertension", "active", T0 - 300 * DAY, None),
        cond("cond-ana-dep", "patient-ana", "Depression", "relapse", T0 - 100 * DAY, "confirmed"),
        cond("cond-ana-asthma", "patient-ana", "Asthma", "resolved", T0 - 900 * DAY, None),
        cond("cond-ana-dm", "patient-ana", "Diabetes", "active", T0 - 50 * DAY, "refuted"),
        cond("cond-bob-dm", "patient-bob", "Type 2 diabetes", "active", T0 - 20 * DAY, None),
        cond("cond-bob-gone", "patient-bob", "Gout", "active", T0 - 10 * DAY, None),
        cond("cond-eve-htn", "patient-eve", "Hypertension", "active", T0 - 10 * DAY, None),
    ]
    deleted = {"patient-eve", "enc-gone", "obs-ana-gone", "obs-carla-sys-gone", "cond-bob-gone"}
    return Data(patients, encounters, observations, conditions, deleted)


async def store(database_url: str) -> Data:
    data = build()
    adapter = await create_postgres_adapter(database_url)
    try:
        await adapter.save_many(
            [*data.patients, *data.encounters, *data.observations, *data.conditions], ACTOR
        )
        # A correction: version 2 of Bob's second systolic reading.
        amended = next(o for o in data.observations if o.id == "obs-bob-sys-2")
        amended.status = "amended"
        amended.set_quantity_value(152, "mmHg")
        await adapter.save(amended, ACTOR)
        for resource in [*data.patients, *data.encounters, *data.observations, *data.conditions]:
            if resource.id in data.deleted:
                await adapter.delete(type(resource), resource.id, ACTOR)
    finally:
        await adapter.close()
    return data


# -- what each block must return ----------------------------------------------------------------


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _code(o: Observation) -> tuple[str | None, str | None]:
    coding = o.code.coding[0]
    return coding.system, coding.code


def check_average_by_gender(rows: list[asyncpg.Record], data: Data) -> None:
    groups: dict[tuple[Any, ...], list[Decimal]] = defaultdict(list)
    displays: dict[tuple[Any, ...], str | None] = {}
    for o in data.live_results():
        patient = data.live_patient(
            o.subject.reference.split("/")[1] if o.subject and o.subject.reference else None
        )
        if patient is None or o.value_quantity is None or o.value_quantity.value is None:
            continue
        key = (*_code(o), o.value_quantity.unit, patient.gender)
        groups[key].append(Decimal(o.value_quantity.value))
        displays[key] = o.code.coding[0].display
    expected = sorted(
        (*key[:2], displays[key], key[2], key[3], len(v), _round(sum(v, Decimal(0)) / len(v)))
        for key, v in groups.items()
    )
    got = sorted(
        (
            r["code_system"],
            r["code"],
            r["code_display"],
            r["value_unit"],
            r["gender"],
            r["observations"],
            r["average_value"],
        )
        for r in rows
    )
    assert got == expected
    # Anchors: Ana's 150 and 120 and Carla's 85 (not the deleted 300) for women; Bob's corrected
    # 152; the local code and the two heart-rate units are their own groups.
    by_key = {(r["code_system"], r["code"], r["value_unit"], r["gender"]): r for r in rows}
    assert by_key[(LOINC, "8480-6", "mmHg", "female")]["average_value"] == Decimal("118.33")
    assert by_key[(LOINC, "8480-6", "mmHg", "male")]["average_value"] == Decimal("133.33")
    assert by_key[("urn:local", "8480-6", "mmHg", "male")]["observations"] == 1
    assert by_key[(LOINC, "8867-4", "Hz", "male")]["average_value"] == Decimal("1.25")


def check_latest_abnormal(rows: list[asyncpg.Record], data: Data) -> None:
    latest: dict[str, Observation] = {}
    for o in sorted(data.live_results(), key=lambda o: o.id):
        if _code(o) != (LOINC, "8480-6") or o.subject is None:
            continue
        pid = o.subject.reference.split("/")[1]  # type: ignore[union-attr]
        current = latest.get(pid)
        if current is None or o.effective_date_time > current.effective_date_time:  # type: ignore[operator]
            latest[pid] = o
    expected = []
    for pid, o in latest.items():
        patient = data.live_patient(pid)
        value = o.value_quantity.value if o.value_quantity else None
        flag = o.interpretation[0].coding[0].code if o.interpretation else None
        abnormal = flag in ABNORMAL_FLAGS or (value is not None and not 90 <= value < 140)
        if patient is not None and abnormal:
            expected.append((patient.full_name, pid, o.id, value, flag))
    expected.sort()
    got = [
        (
            r["full_name"],
            r["patient_id"],
            r["observation_id"],
            r["value_numeric"],
            r["interpretation_code"],
        )
        for r in rows
    ]
    assert got == expected
    assert [r["patient_id"] for r in rows] == ["patient-bob", "patient-carla"]
    assert rows[0]["value_numeric"] == 152 and rows[0]["value_unit"] == "mmHg"
    assert rows[1]["effective_at"] == T0 + 7 * DAY


def check_per_encounter(rows: list[asyncpg.Record], data: Data) -> None:
    counts = {e.id: 0 for e in data.encounters if e.id not in data.deleted}
    for o in data.live_results():
        if o.encounter is not None and o.encounter.resource_id in counts:
            counts[o.encounter.resource_id] += 1
    starts = {e.id: e.period.start for e in data.encounters if e.period}
    expected = [(eid, counts[eid]) for eid in sorted(counts, key=lambda eid: (starts[eid], eid))]
    assert [(r["encounter_id"], r["observations"]) for r in rows] == expected
    assert dict(expected) == {
        "enc-ana-1": 3,
        "enc-dan-1": 1,
        "enc-bob-1": 2,
        "enc-carla-1": 0,
        "enc-ana-2": 1,
    }
    names = {r["encounter_id"]: r["full_name"] for r in rows}
    assert names["enc-carla-1"] == "Carla Mendes"


def check_active_conditions(rows: list[asyncpg.Record], data: Data) -> None:
    active: dict[str, list[Condition]] = defaultdict(list)
    for c in data.conditions:
        status = c.clinical_status.coding[0].code if c.clinical_status else None
        verification = c.verification_status.coding[0].code if c.verification_status else None
        pid = c.subject.resource_id if c.subject else None
        if (
            c.id not in data.deleted
            and status in ACTIVE
            and verification not in DISCARDED
            and data.live_patient(pid) is not None
        ):
            active[pid].append(c)  # type: ignore[index]
    expected = []
    for pid, items in active.items():
        items.sort(key=lambda c: (c.onset_date_time, c.id))
        names = ", ".join(c.code.text for c in items if c.code and c.code.text)
        patient = data.live_patient(pid)
        assert patient is not None
        expected.append((pid, patient.full_name, len(items), names))
    expected.sort(key=lambda row: (-row[2], row[1]))
    got = [(r["patient_id"], r["full_name"], r["active_conditions"], r["conditions"]) for r in rows]
    assert got == expected
    assert got[0] == ("patient-ana", "Ana Fernandes", 2, "Hypertension, Depression")


def check_current_patients(rows: list[asyncpg.Record], data: Data) -> None:
    expected = sorted(
        (
            p.full_name,
            p.id,
            p.marital_status.text if p.marital_status else None,
            p.telecom[0].value if p.telecom else None,
        )
        for p in data.patients
        if p.id not in data.deleted
    )
    got = [(r["full_name"], r["id"], r["marital_status"], r["first_phone"]) for r in rows]
    assert got == expected
    assert got[0][2:] == ("Married", "+1 555 0101")
    assert all(r["document_is_current"] for r in rows)


def check_observation_notes(rows: list[asyncpg.Record], data: Data) -> None:
    expected = [
        (o.id, o.note[0].text, o.body_site.text if o.body_site else None)
        for o in sorted(data.observations, key=lambda o: (o.effective_date_time, o.id))
        if o.note and o.id not in data.deleted and data.live_patient(o.subject.resource_id)  # type: ignore[union-attr]
    ]
    assert [(r["id"], r["note"], r["body_site"]) for r in rows] == expected
    assert expected == [("obs-ana-dia-1", "Patient anxious", "Left arm")]


def check_fuzzy_search(rows: list[asyncpg.Record], data: Data) -> None:
    assert [r["id"] for r in rows] == ["patient-ana"]  # not the deleted Eve Fernandes
    assert Decimal("0.6") < rows[0]["score"] <= 1


def check_history(rows: list[asyncpg.Record], data: Data) -> None:
    assert [tuple(r) for r in rows] == [
        (1, "create", ACTOR.id, "final", Decimal(150)),
        (2, "update", ACTOR.id, "amended", Decimal(152)),
    ]


CHECKS: dict[str, Callable[[list[asyncpg.Record], Data], None]] = {
    "Average numeric value per observation code, by patient gender": check_average_by_gender,
    "Patients whose latest systolic blood pressure is abnormal": check_latest_abnormal,
    "Observations per encounter": check_per_encounter,
    "Active conditions per patient": check_active_conditions,
    "Marital status and first phone from the patient document": check_current_patients,
    "Observation notes and body site from the document": check_observation_notes,
    "Fuzzy patient name search": check_fuzzy_search,
    "Version history of one observation": check_history,
}


async def test_every_sql_block_runs_and_returns_the_expected_rows(
    database_url: str, db: asyncpg.Connection
) -> None:
    data = await store(database_url)
    blocks = [b for b in sql_blocks(markdown()) if not b.title.startswith(SYNTHEA)]
    titles = [b.title for b in blocks]
    assert sorted(titles) == sorted(CHECKS), "each sql block needs an expectation here"
    for block in blocks:
        rows = await db.fetch(block.sql)
        assert rows, f"{block.title!r} (line {block.line}) returned no rows"
        CHECKS[block.title](rows, data)


async def test_the_docs_fuzzy_search_agrees_with_the_repository(database_url: str) -> None:
    await store(database_url)
    async with session_scope(database_url) as session:
        found = await PatientRepository(session, ACTOR).find_by_name("Fernandez")
    assert [p.id for p in found] == ["patient-ana"]


async def test_the_documented_views_exist(database_url: str, db: asyncpg.Connection) -> None:
    views = {
        f"{r['table_schema']}.{r['table_name']}"
        for r in await db.fetch("SELECT table_schema, table_name FROM information_schema.views")
    }
    names = set(re.findall(r"`(\w+\.\w+_current)`", markdown()))
    assert {"hacs_core.patients_current", "hacs_core.observations_current"} <= names
    assert names <= views
    # Every typed table has its view, as the page says.
    for table in TYPED_TABLES.values():
        assert f"{_table_of(table).schema}.{_table_of(table).name}_current" in views


# -- the column tables ------------------------------------------------------------------------


def _table_of(model: type[TypedResourceTable]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # SQLAlchemy types a mapped class's table as a FromClause
    return table


def _pg_type(column: Column[Any]) -> str:
    # SQLAlchemy's dialect constructors are unannotated.
    name = str(column.type.compile(dialect=postgresql.dialect())).lower()  # type: ignore[no-untyped-call]
    name = name.replace("timestamp with time zone", "timestamptz")
    return "vector" if name.startswith("vector") else name


def _indexed(table: Table, column: Column[Any]) -> str:
    kinds = set()
    for index in table.indexes:
        if next(iter(index.columns)) is column:
            gin = index.dialect_options["postgresql"].get("using") == "gin"
            kinds.add("trigram" if gin and "trgm" in (index.name or "") else "yes")
    return "yes" if "yes" in kinds else ("trigram" if kinds else "")


def _key_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if "source" in c.info]


def _qualified(cell: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"`(\w+)\.(\w+)\.(\w+)`", cell)
    if not match or match[1] not in SCHEMA_NAMES:
        return None
    return f"{match[1]}.{match[2]}", match[3]


def _column_tables() -> list[MarkdownTable]:
    return tables(section(markdown(), "Columns"))


def test_every_qualified_column_in_the_columns_tables_exists() -> None:
    checked = 0
    for table in _column_tables():
        for row in table.rows:
            for token in re.findall(r"`[^`]+`", " ".join(row)):
                parsed = _qualified(token)
                if parsed is None:
                    continue
                name, column = parsed
                assert name in metadata.tables, f"{token}: no table {name}"
                assert column in metadata.tables[name].c, f"{token}: no column {column}"
                checked += 1
    assert checked > 100


def test_column_tables_list_exactly_the_columns_with_their_types() -> None:
    documented: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for doc_table in _column_tables():
        if doc_table.header[0] != "Column":
            continue
        for row in doc_table.rows:
            parsed = _qualified(row[0])
            if parsed is None:
                continue
            name, column = parsed
            documented[name][column] = row
    assert {"hacs_core.patients", "hacs_core.observations", "hacs_clinical.conditions"} <= set(
        documented
    )
    for name, rows in documented.items():
        table = metadata.tables[name]
        typed = any(_table_of(t) is table for t in TYPED_TABLES.values())
        want = _key_columns(table) if typed else [c.name for c in table.columns]
        assert sorted(rows) == sorted(want), f"{name}: the page lists other columns"
        for column, row in rows.items():
            assert row[1] == _pg_type(table.c[column]), f"{name}.{column}: type"
            if typed:
                assert row[2] == _indexed(table, table.c[column]), f"{name}.{column}: indexed"


def test_envelope_columns_are_those_of_every_typed_table() -> None:
    [envelope] = [t for t in _column_tables() if t.heading.startswith("Envelope")]
    names = {row[0].strip("`"): row[1] for row in envelope.rows}
    sample = _table_of(TYPED_TABLES["Patient"])
    key = set(_key_columns(sample))
    assert set(names) == {c.name for c in sample.columns if c.name not in key}
    for table in TYPED_TABLES.values():
        for column, type_name in names.items():
            assert _pg_type(_table_of(table).c[column]) == type_name


def test_every_typed_table_is_documented() -> None:
    detailed = set()
    summarised: dict[str, list[str]] = {}
    for table in _column_tables():
        if table.header[0] == "Column":
            detailed |= {p[0] for row in table.rows if (p := _qualified(row[0]))}
        elif table.header[0] == "Table":
            for row in table.rows:
                summarised[row[0].strip("`")] = re.findall(r"`(\w+)`", row[2])
                typed_name = row[1]
                assert _table_of(TYPED_TABLES[typed_name]).fullname == row[0].strip("`")
    for name, columns in summarised.items():
        assert columns == _key_columns(metadata.tables[name]), name
    assert not detailed & set(summarised)
    all_typed = {_table_of(t).fullname for t in TYPED_TABLES.values()}
    assert all_typed <= detailed | set(summarised)


@pytest.mark.parametrize("needle", ["deleted_at IS NULL", "_current", "```sql"])
def test_the_page_covers(needle: str) -> None:
    assert needle in markdown()


# -- the worked queries on the Synthea bundles ------------------------------------------------
#
# The bundles are imported through the importer; what each query must return is computed here
# from the bundles' JSON (decimals read as Decimal, so values compare exactly), not from SQL.

SYNTHEA = "Synthea: "


@dataclass
class Synthea:
    """The resources of the Synthea bundles by type, as FHIR JSON."""

    by_type: dict[str, list[dict[str, Any]]]

    def of(self, resource_type: str) -> list[dict[str, Any]]:
        return self.by_type.get(resource_type, [])


def read_synthea() -> Synthea:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((FHIR_DATA / "synthea").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        for entry in bundle.get("entry", ()):
            resource = entry["resource"]
            by_type[resource["resourceType"]].append(resource)
    return Synthea(dict(by_type))


def _patient_of(resource: dict[str, Any]) -> str:
    # Synthea references its patient as urn:uuid:<id>; the import stores Patient/<id>.
    reference: str = (resource.get("subject") or resource["patient"])["reference"]
    return reference.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _codes(concept: dict[str, Any] | None) -> list[tuple[str | None, str | None]]:
    return [(c.get("system"), c.get("code")) for c in (concept or {}).get("coding", ())]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _usable(resource: dict[str, Any]) -> bool:
    return resource.get("status") not in VOID


def check_synthea_blood_pressure(rows: list[asyncpg.Record], data: Synthea) -> None:
    latest: dict[str, tuple[datetime, str, dict[str, Any]]] = {}
    for o in data.of("Observation"):
        if (LOINC, "55284-4") not in _codes(o["code"]) or not _usable(o):
            continue
        key = (_instant(o["effectiveDateTime"]), o["id"], o)
        patient = _patient_of(o)
        if patient not in latest or key[:2] > latest[patient][:2]:
            latest[patient] = key
    expected = []
    for patient, (at, _, o) in sorted(latest.items()):
        values = {
            code: c["valueQuantity"]
            for c in o["component"]
            for system, code in _codes(c["code"])
            if system == LOINC
        }
        expected.append(
            (
                patient,
                at,
                values["8480-6"]["value"],
                values["8462-4"]["value"],
                values["8480-6"]["unit"],
            )
        )
    got = [
        (r["patient_id"], r["effective_at"], r["systolic"], r["diastolic"], r["unit"]) for r in rows
    ]
    assert len(expected) > 30
    assert got == expected


def _one_decimal(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def check_synthea_hba1c(rows: list[asyncpg.Record], data: Synthea) -> None:
    series: dict[str, list[tuple[datetime, str, Decimal]]] = defaultdict(list)
    for o in data.of("Observation"):
        if (LOINC, "4548-4") in _codes(o["code"]) and _usable(o):
            at = _instant(o["effectiveDateTime"])
            series[_patient_of(o)].append((at, o["id"], o["valueQuantity"]["value"]))
    expected: list[tuple[str, datetime, Decimal, Decimal | None]] = []
    for patient in sorted(series):
        previous: Decimal | None = None
        for at, _, value in sorted(series[patient]):
            change = None if previous is None else _one_decimal(value - previous)
            expected.append((patient, at, _one_decimal(value), change))
            previous = value
    got = [(r["patient_id"], r["effective_at"], r["hba1c_percent"], r["change"]) for r in rows]
    assert len(expected) == 60
    assert got == expected


def _first(concept: dict[str, Any] | None, part: str) -> str | None:
    return next((c[part] for c in (concept or {}).get("coding", ()) if part in c), None)


def check_synthea_active_conditions(rows: list[asyncpg.Record], data: Synthea) -> None:
    active: dict[str, list[str]] = defaultdict(list)
    for c in data.of("Condition"):
        clinical = _first(c.get("clinicalStatus"), "code")
        verification = _first(c.get("verificationStatus"), "code")
        if clinical in ACTIVE and verification not in DISCARDED:
            text = c["code"].get("text") or _first(c["code"], "display")
            active[_patient_of(c)].append(str(text))
    expected = sorted(
        ((p, len(names), "; ".join(sorted(names))) for p, names in active.items()),
        key=lambda row: (-row[1], row[0]),
    )
    got = [(r["patient_id"], r["active_conditions"], r["conditions"]) for r in rows]
    assert len(expected) > 10
    assert got == expected


def check_synthea_medications(rows: list[asyncpg.Record], data: Synthea) -> None:
    requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in data.of("MedicationRequest"):
        requests[_patient_of(m)].append(m)
    expected = [
        (
            patient,
            len(found),
            len({_first(m.get("medicationCodeableConcept"), "code") for m in found} - {None}),
            sum(m["status"] == "active" for m in found),
        )
        for patient, found in sorted(requests.items())
    ]
    got = [
        (r["patient_id"], r["requests"], r["distinct_medications"], r["active_requests"])
        for r in rows
    ]
    assert sum(row[1] for row in expected) == 196
    assert got == expected


def check_synthea_encounters(rows: list[asyncpg.Record], data: Synthea) -> None:
    per_year: Counter[int] = Counter()
    patients: dict[int, set[str]] = defaultdict(set)
    for e in data.of("Encounter"):
        if not _usable(e):
            continue
        year = _instant(e["period"]["start"]).year
        per_year[year] += 1
        patients[year].add(_patient_of(e))
    expected = [(year, per_year[year], len(patients[year])) for year in sorted(per_year)]
    got = [(r["year"], r["encounters"], r["patients"]) for r in rows]
    assert sum(per_year.values()) > 500
    assert got == expected


SYNTHEA_CHECKS: dict[str, Callable[[list[asyncpg.Record], Synthea], None]] = {
    "Synthea: latest blood pressure per patient": check_synthea_blood_pressure,
    "Synthea: HbA1c trend per patient": check_synthea_hba1c,
    "Synthea: active conditions per patient": check_synthea_active_conditions,
    "Synthea: medications per patient": check_synthea_medications,
    "Synthea: encounters per year": check_synthea_encounters,
}


async def test_the_synthea_queries_return_what_the_bundles_hold(
    database_url: str, db: asyncpg.Connection
) -> None:
    require_fhir_data()
    adapter = await create_postgres_adapter(database_url)
    try:
        summary = await import_paths([FHIR_DATA / "synthea"], adapter, ACTOR)
    finally:
        await adapter.close()
    assert not [f for f in summary.files if f.status == "failed"]
    data = read_synthea()
    blocks = [b for b in sql_blocks(markdown()) if b.title.startswith(SYNTHEA)]
    assert sorted(b.title for b in blocks) == sorted(SYNTHEA_CHECKS)
    for block in blocks:
        rows = await db.fetch(block.sql)
        SYNTHEA_CHECKS[block.title](rows, data)
