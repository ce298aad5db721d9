"""FHIR import and export pass the same access gate as the adapter (permission, scope, audit).

Regression tests for "one access gate for every path": interchange checked permissions on its
own, refused imports left no audit row, identifier look-ups were unaudited and ignored the
actor's patients (an import could confirm guessed identifiers), and an export's audit rows
were the adapter's search rows (no export shape) and could be lost with the caller's rollback.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hacs_auth import Actor
from hacs_models.fhir import to_fhir
from hacs_persistence.access import gate as gate_module
from hacs_persistence.adapter import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.errors import PermissionDeniedError, ResourceNotFoundError
from hacs_persistence.interchange import (
    ImportSummary,
    export_patient_bundle,
    export_type_ndjson,
    import_paths,
    iter_patient_compartment,
    iter_resources,
    write_patient_bundle,
)

ADMIN = Actor(name="interchange-admin", role="system", permissions=["admin:*"])
MRN = "urn:example:mrn"
OBS = "urn:example:observation-id"
NPI = "http://hl7.org/fhir/sid/us-npi"


class Boom(Exception):
    """The caller's failure that rolls its transaction back."""


@dataclass
class World:
    adapter: PostgreSQLAdapter
    db: asyncpg.Connection
    tmp: Path
    tag: str
    mine: str  # the scoped actor's patient
    other: str  # another patient
    mine_obs: list[str]
    other_obs: str
    practitioner: str

    def write(self, name: str, data: Any) -> Path:
        path = self.tmp / name
        if isinstance(data, list):
            path.write_text("\n".join(json.dumps(d) for d in data) + "\n", encoding="utf-8")
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
        return path


def patient(resource_id: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": "Test", "given": [resource_id]}],
        "gender": "female",
    }


def observation(resource_id: str, patient_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        **extra,
    }


@pytest.fixture
async def world(database_url: str, db: asyncpg.Connection, tmp_path: Path) -> AsyncIterator[World]:
    adapter = await create_postgres_adapter(database_url)
    tag = uuid.uuid4().hex[:8]
    mine, other = f"mine-{tag}", f"other-{tag}"
    mine_obs = [f"mine-obs-{i}-{tag}" for i in range(3)]
    other_obs = f"other-obs-{tag}"
    practitioner = f"pract-{tag}"
    seed = tmp_path / "seed.ndjson"
    resources = [
        patient(mine, f"MRN-MINE-{tag}"),
        patient(other, f"MRN-OTHER-{tag}"),
        *(observation(i, mine) for i in mine_obs),
        observation(other_obs, other, identifier=[{"system": OBS, "value": f"OBS-OTHER-{tag}"}]),
        {
            "resourceType": "Practitioner",
            "id": practitioner,
            "identifier": [{"system": NPI, "value": f"NPI-{tag}"}],
        },
    ]
    seed.write_text("\n".join(json.dumps(r) for r in resources) + "\n", encoding="utf-8")
    summary = await import_paths([seed], adapter, ADMIN)
    assert summary.ok and summary.totals.created == len(resources)
    try:
        yield World(adapter, db, tmp_path, tag, mine, other, mine_obs, other_obs, practitioner)
    finally:
        await adapter.close()


def scoped(world: World) -> Actor:
    """A clinician limited to one patient, with every permission on the clinical types."""
    return Actor(
        name="scoped-clinician",
        role="physician",
        permissions=["patient:read", "patient:write", "observation:read", "observation:write"],
        patient_ids=[world.mine],
    )


async def audit_rows(db: asyncpg.Connection, actor: Actor, action: str | None = None) -> list[Any]:
    rows = await db.fetch(
        "SELECT action, outcome, resource_type, resource_id, result_count, detail "
        "FROM hacs_audit.audit_events WHERE actor_id = $1 ORDER BY id",
        actor.id,
    )
    return [r for r in rows if action is None or r["action"] == action]


class Recorder:
    """Spy on gate.record: what each audit row was given (ids included, whatever the schema)."""

    def __init__(self, adapter: PostgreSQLAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        original = adapter.gate.record

        async def record(
            actor: Any,
            action: str,
            resource_type: str | None,
            resource_id: str | None,
            outcome: str,
            detail: str | None = None,
            count: int | None = None,
            resource_ids: Any = None,
            patient_ids: Any = None,
        ) -> None:
            self.calls.append(
                {
                    "action": action,
                    "resource_type": resource_type,
                    "outcome": outcome,
                    "detail": detail,
                    "count": count,
                    "resource_ids": None if resource_ids is None else list(resource_ids),
                }
            )
            await original(
                actor,
                action,
                resource_type,
                resource_id,
                outcome,
                detail,
                count,
                resource_ids,
                patient_ids,
            )

        monkeypatch.setattr(adapter.gate, "record", record)

    def of(self, action: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["action"] == action]


# --- refusals are audited -----------------------------------------------------------------------


async def test_a_refused_import_writes_a_denied_audit_row(world: World) -> None:
    reader = Actor(name="reader", role="physician", permissions=["observation:read"])
    path = world.write("new.ndjson", [observation(f"new-{world.tag}", world.mine)])
    summary = await import_paths([path], world.adapter, reader)
    assert [f.status for f in summary.files] == ["failed"]
    denied = [r for r in await audit_rows(world.db, reader) if r["outcome"] == "denied"]
    assert [(r["action"], r["resource_type"]) for r in denied] == [("import", "Observation")]
    assert "observation:write" in (summary.files[0].reason or "")
    stored = await world.db.fetchval(
        "SELECT count(*) FROM hacs_core.observations WHERE id = $1", f"new-{world.tag}"
    )
    assert stored == 0


async def test_an_inactive_actors_import_is_refused_and_audited(world: World) -> None:
    inactive = Actor(name="gone", role="system", permissions=["admin:*"], is_active=False)
    path = world.write("new.ndjson", [observation(f"new-{world.tag}", world.mine)])
    with pytest.raises(PermissionDeniedError):
        await import_paths([path], world.adapter, inactive)
    rows = await audit_rows(world.db, inactive)
    assert [(r["action"], r["outcome"], r["detail"]) for r in rows] == [
        ("import", "denied", "is inactive")
    ]


@pytest.mark.parametrize("kind", ["ndjson", "bundle"])
async def test_a_refused_export_writes_a_denied_audit_row_and_hands_out_nothing(
    world: World, kind: str
) -> None:
    # May read patients, not observations: the patient's Bundle needs both.
    reader = Actor(name="patients-only", role="physician", permissions=["patient:read"])
    out = io.StringIO()
    with pytest.raises(PermissionDeniedError):
        if kind == "ndjson":
            await export_type_ndjson(world.adapter, "Observation", reader, out)
        else:
            await write_patient_bundle(world.adapter, world.mine, out, reader)
    assert out.getvalue() == ""  # not even the Patient left before the refusal
    rows = await audit_rows(world.db, reader)
    assert [(r["action"], r["outcome"], r["resource_type"]) for r in rows] == [
        ("export", "denied", "Observation")
    ]


# --- identifier guessing ------------------------------------------------------------------------


async def _import_probe(world: World, actor: Actor, name: str, data: Any) -> ImportSummary:
    return await import_paths([world.write(name, data)], world.adapter, actor)


def _outcome(summary: ImportSummary) -> tuple[Any, ...]:
    """Everything an import tells its caller, minus paths."""
    return (
        [(f.status, f.entries, f.reason) for f in summary.files],
        {t: vars(c) for t, c in summary.types.items()},
        dict(summary.skip_reasons),
        dict(summary.resolved_references),
        dict(summary.unresolved_references),
        dict(summary.dangling_references),
    )


async def test_a_scoped_actor_cannot_confirm_another_patients_identifier(world: World) -> None:
    actor = scoped(world)

    async def probe(target: str, mrn: str) -> tuple[tuple[Any, ...], str]:
        resource_id = f"probe-{target}-{world.tag}"
        reference = f"Patient?identifier={MRN}|{mrn}"
        obs = observation(resource_id, world.mine, performer=[{"reference": reference}])
        summary = await _import_probe(world, actor, f"{target}.ndjson", [obs])
        stored = to_fhir(await world.adapter.read("Observation", resource_id, ADMIN))
        return _outcome(summary), stored["performer"][0]["reference"].replace(mrn, "<mrn>")

    existing = await probe("existing", f"MRN-OTHER-{world.tag}")  # the other patient's MRN
    missing = await probe("missing", f"MRN-NOBODY-{world.tag}")
    assert existing == missing
    assert existing[0][4] == {"conditional": 1}  # left unresolved, as it is
    # The actor's own patient is found: the look-up works, within the actor's patients.
    own = await probe("own", f"MRN-MINE-{world.tag}")
    assert own[1] == f"Patient/{world.mine}"

    rows = await audit_rows(world.db, actor, "import.resolve")
    assert [(r["outcome"], r["resource_type"], r["result_count"]) for r in rows] == [
        ("success", "Patient", 0),
        ("success", "Patient", 0),
        ("success", "Patient", 1),
    ]
    for row in rows:
        assert MRN in row["detail"] and "scope=patients" in row["detail"]
        assert "MRN-" not in row["detail"]  # the system, never the value


async def test_a_scoped_conditional_create_cannot_confirm_another_patients_identifier(
    world: World,
) -> None:
    actor = scoped(world)

    async def probe(target: str, value: str) -> tuple[Any, ...]:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": observation(f"cond-{target}-{world.tag}", world.mine),
                    "request": {
                        "method": "POST",
                        "url": "Observation",
                        "ifNoneExist": f"identifier={OBS}|{value}",
                    },
                }
            ],
        }
        return _outcome(await _import_probe(world, actor, f"{target}.json", bundle))

    existing = await probe("existing", f"OBS-OTHER-{world.tag}")  # the other patient's
    missing = await probe("missing", f"OBS-NOBODY-{world.tag}")
    assert existing == missing
    assert existing[1]["Observation"]["created"] == 1
    rows = await audit_rows(world.db, actor, "import.resolve")
    assert [(r["resource_type"], r["result_count"]) for r in rows] == [
        ("Observation", 0),
        ("Observation", 0),
    ]
    assert all(OBS in r["detail"] and "OBS-" not in r["detail"] for r in rows)


async def test_an_actor_that_may_not_read_a_type_cannot_confirm_its_identifiers(
    world: World,
) -> None:
    actor = Actor(
        name="observations-only",
        role="physician",
        permissions=["observation:read", "observation:write"],
    )

    async def probe(target: str, npi: str) -> tuple[tuple[Any, ...], str]:
        resource_id = f"npi-{target}-{world.tag}"
        reference = f"Practitioner?identifier={NPI}|{npi}"
        obs = observation(resource_id, world.mine, performer=[{"reference": reference}])
        summary = await _import_probe(world, actor, f"{target}.ndjson", [obs])
        stored = to_fhir(await world.adapter.read("Observation", resource_id, ADMIN))
        return _outcome(summary), stored["performer"][0]["reference"].replace(npi, "<npi>")

    existing = await probe("existing", f"NPI-{world.tag}")
    missing = await probe("missing", f"NPI-NOBODY-{world.tag}")
    assert existing == missing
    assert existing[1] == f"Practitioner?identifier={NPI}|<npi>"
    rows = await audit_rows(world.db, actor, "import.resolve")
    assert [(r["outcome"], r["resource_type"]) for r in rows] == [
        ("denied", "Practitioner"),
        ("denied", "Practitioner"),
    ]


# --- a patient-scoped import stays in the actor's patients --------------------------------------


async def test_a_scoped_import_cannot_touch_or_compare_another_patients_rows(
    world: World,
) -> None:
    actor = scoped(world)
    stored_other = to_fhir(await world.adapter.read("Observation", world.other_obs, ADMIN))
    versions = await world.db.fetchval("SELECT count(*) FROM hacs_core.resource_versions")
    # An exact copy of the other patient's stored observation: never reported "unchanged".
    copy = world.write("copy.ndjson", [stored_other])
    # A new observation for the other patient.
    new = world.write("new.ndjson", [observation(f"new-other-{world.tag}", world.other)])
    # The other patient's stored observation moved into the actor's patient.
    moved = world.write(
        "moved.ndjson", [{**stored_other, "subject": {"reference": f"Patient/{world.mine}"}}]
    )
    # A claim: outside every patient compartment.
    claim = world.write(
        "claim.json",
        {"resourceType": "Claim", "id": f"claim-{world.tag}", "status": "active"},
    )
    summary = await import_paths([copy, new, moved, claim], world.adapter, actor)
    assert [f.status for f in summary.files] == ["failed"] * 4, summary.files
    assert summary.totals.unchanged == 0 and summary.totals.updated == 0
    assert await world.db.fetchval("SELECT count(*) FROM hacs_core.resource_versions") == versions
    # The stored version of the other patient's row is never named in what the actor sees.
    for result in summary.files:
        assert "version 1" not in (result.reason or ""), result.reason
    denied = [r for r in await audit_rows(world.db, actor) if r["outcome"] == "denied"]
    assert {r["resource_type"] for r in denied} >= {"Observation", "Claim"}

    # The actor's own patient's observation can be updated, and re-imported unchanged.
    own = to_fhir(await world.adapter.read("Observation", world.mine_obs[0], ADMIN))
    changed = world.write("own.ndjson", [{**own, "status": "amended"}])
    summary = await import_paths([changed], world.adapter, actor)
    assert summary.ok and summary.types["Observation"].updated == 1
    summary = await import_paths([changed], world.adapter, actor)
    assert summary.ok and summary.types["Observation"].unchanged == 1


# --- what an export hands out, and its audit rows -----------------------------------------------


async def test_a_scoped_export_stays_in_the_actors_patients(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = scoped(world)
    spy = Recorder(world.adapter, monkeypatch)
    out = io.StringIO()
    count = await export_type_ndjson(world.adapter, "Observation", actor, out)
    exported = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert count == 3 and sorted(exported) == sorted(world.mine_obs)
    bundle = await export_patient_bundle(world.adapter, world.mine, actor)
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids[0] == world.mine and sorted(ids[1:]) == sorted(world.mine_obs)
    with pytest.raises(ResourceNotFoundError):
        await export_patient_bundle(world.adapter, world.other, actor)
    with pytest.raises(PermissionDeniedError):
        await export_type_ndjson(world.adapter, "Claim", actor, io.StringIO())

    successes = [c for c in spy.of("export") if c["outcome"] == "success"]
    listed = {i for c in successes for i in c["resource_ids"]}
    assert listed == {world.mine, *world.mine_obs}
    assert all("scope=patients" in c["detail"] for c in successes)
    rows = await audit_rows(world.db, actor, "export")
    assert [(r["outcome"], r["resource_type"]) for r in rows if r["outcome"] != "success"] == [
        ("denied", "Patient"),  # the other patient exists: denied, reported as not found
        ("denied", "Claim"),
    ]


async def test_the_export_audit_has_the_shape_and_ids_and_survives_a_rollback(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = Actor(name="reader", role="physician", permissions=["*:read"])
    spy = Recorder(world.adapter, monkeypatch)
    received: list[str] = []
    with pytest.raises(Boom):
        async with world.adapter.transaction():
            async for resource in iter_patient_compartment(
                world.adapter, world.mine, reader, page_size=2
            ):
                received.append(resource.id)
                # The audit row of what was just handed out is already committed.
                rows = await audit_rows(world.db, reader, "export")
                assert resource.id in {i for c in spy.of("export") for i in c["resource_ids"]}
                assert len(rows) == len(spy.of("export"))
            raise Boom
    assert received == [world.mine, *sorted(world.mine_obs)]

    rows = await audit_rows(world.db, reader, "export")  # after the rollback
    assert [(r["resource_type"], r["outcome"], r["result_count"]) for r in rows] == [
        ("Patient", "success", 1),
        ("Observation", "success", 2),
        ("Observation", "success", 1),
    ]
    assert rows[0]["detail"] == ("export=patient;types=Patient;filters=id:eq;order_by=id;page=1")
    assert rows[1]["detail"] == (
        "export=patient;types=Observation;filters=patient_id:eq;order_by=id;page=1"
    )
    assert rows[2]["detail"].endswith(";page=2")
    for row in rows:
        assert world.mine not in row["detail"]  # parameter names, never values
    calls = spy.of("export")
    assert [c["resource_ids"] for c in calls] == [
        [world.mine],
        sorted(world.mine_obs)[:2],
        sorted(world.mine_obs)[2:],
    ]
    if await world.db.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'hacs_audit' "
        "AND table_name = 'audit_events' AND column_name = 'resource_ids'"
    ):
        stored = await world.db.fetch(
            "SELECT resource_ids FROM hacs_audit.audit_events WHERE actor_id = $1 "
            "AND action = 'export' ORDER BY id",
            reader.id,
        )
        assert [list(r["resource_ids"]) for r in stored] == [c["resource_ids"] for c in calls]


async def test_an_export_past_the_id_limit_records_a_count_and_digest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_module, "AUDIT_ID_LIMIT", 2)
    reader = Actor(name="reader", role="physician", permissions=["*:read"])
    spy = Recorder(world.adapter, monkeypatch)
    exported = [r.id async for r in iter_resources(world.adapter, "Observation", reader)]
    assert len(exported) == 4
    digest = hashlib.sha256("\n".join(sorted(exported)).encode()).hexdigest()
    [call] = spy.of("export")
    assert sorted(call["resource_ids"]) == sorted(exported) and call["count"] == 4
    # The gate keeps the count and a digest instead of the list.
    [row] = await audit_rows(world.db, reader, "export")
    assert row["detail"] == (
        f"export=ndjson;types=Observation;filters=;order_by=id;page=1;ids=4;sha256={digest}"
    )
    assert row["result_count"] == 4
    assert (
        await world.db.fetchval(
            "SELECT resource_ids FROM hacs_audit.audit_events "
            "WHERE actor_id = $1 AND action = 'export'",
            reader.id,
        )
        is None
    )
