"""The raw asyncpg baselines: hand-written SQL doing the same work as hacs, on a pooled connection.

Pinned on purpose: these statements touch the same tables (typed row, versions row, audit row) in
the same or fewer round trips, so a ratio against them measures what hacs adds in Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hacs_models import Observation, Patient

PATIENT_COLUMNS = (
    "full_name, family_name, given_names, gender, birth_date, active, city, state, postal_code"
)

INSERT_PATIENT = f"""
WITH v AS (
    INSERT INTO hacs_core.resource_versions
        (resource_type, id, version, operation, document, changed_at, changed_by)
    VALUES ('Patient', $1, 1, 'create',
            $2::jsonb || jsonb_build_object('version', 1, 'created_at', now(),
                                            'updated_at', now()),
            now(), $3)
    RETURNING id
), t AS (
    INSERT INTO hacs_core.patients (id, resource_type, version, created_at, updated_at,
                                    created_by, updated_by, {PATIENT_COLUMNS})
    SELECT v.id, 'Patient', 1, now(), now(), $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
    FROM v
    RETURNING id, version, created_at, updated_at
), a AS (
    INSERT INTO hacs_audit.audit_events
        (actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome)
    SELECT $3, $13, $14, 'create', 'Patient', t.id, 'success' FROM t
)
SELECT id, version, created_at, updated_at FROM t
"""

UPDATE_PATIENT = """
WITH t AS (
    UPDATE hacs_core.patients
    SET version = version + 1, updated_at = now(), updated_by = $3, deleted_at = NULL,
        full_name = $4, family_name = $5, given_names = $6, gender = $7, birth_date = $8,
        active = $9, city = $10, state = $11, postal_code = $12
    WHERE id = $1 AND resource_type = 'Patient' AND version = $15
    RETURNING id, version, created_at, updated_at
), v AS (
    INSERT INTO hacs_core.resource_versions
        (resource_type, id, version, operation, document, changed_at, changed_by)
    SELECT 'Patient', t.id, t.version, 'update',
           $2::jsonb || jsonb_build_object('version', t.version, 'created_at', t.created_at,
                                           'updated_at', t.updated_at),
           t.updated_at, $3
    FROM t
), a AS (
    INSERT INTO hacs_audit.audit_events
        (actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome)
    SELECT $3, $13, $14, 'update', 'Patient', t.id, 'success' FROM t
)
SELECT id, version, created_at, updated_at FROM t
"""

READ_PATIENT = """
WITH r AS (
    SELECT v.document::text AS document, t.deleted_at
    FROM hacs_core.patients t
    JOIN hacs_core.resource_versions v
      ON v.resource_type = t.resource_type AND v.id = t.id AND v.version = t.version
    WHERE t.id = $1 AND t.resource_type = 'Patient'
), a AS (
    INSERT INTO hacs_audit.audit_events
        (actor_id, actor_name, actor_role, action, resource_type, resource_id, outcome)
    VALUES ($2, $3, $4, 'read', 'Patient', $1, 'success')
)
SELECT document, deleted_at FROM r
"""


def patient_keys(p: Patient) -> tuple[Any, ...]:
    """The typed columns of a patient, extracted by hand."""
    name = p.name[0] if p.name else None
    address = p.address[0] if p.address else None
    return (
        p.full_name,
        name.family if name else None,
        list(name.given) if name else None,
        p.gender,
        p.birth_date,
        p.active,
        address.city if address else None,
        address.state if address else None,
        address.postal_code if address else None,
    )


def observation_keys(o: Observation) -> tuple[Any, ...]:
    """The typed columns of an observation, extracted by hand."""
    coding = o.code.coding[0]
    category = o.category[0].coding[0].code if o.category and o.category[0].coding else None
    subject = o.subject.reference.split("/")[1] if o.subject and o.subject.reference else None
    quantity = o.value_quantity
    return (
        subject,
        None,
        o.status,
        category,
        coding.system,
        coding.code,
        o.code.text or coding.display,
        quantity.value if quantity else None,
        quantity.unit if quantity else None,
        o.value_string,
        None,
        o.effective_date_time,
    )


OBSERVATION_COLUMNS = [
    "patient_id",
    "encounter_id",
    "status",
    "category_code",
    "code_system",
    "code",
    "code_display",
    "value_numeric",
    "value_unit",
    "value_text",
    "interpretation_code",
    "effective_at",
]
ENVELOPE = [
    "id",
    "resource_type",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
]
VERSION_COLUMNS = [
    "resource_type",
    "id",
    "version",
    "operation",
    "document",
    "changed_at",
    "changed_by",
]
AUDIT_COLUMNS = [
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
]


async def copy_resources(
    conn: Any,
    patients: list[Patient],
    observations: list[Observation],
    now: datetime,
    actor: tuple[str, str, str],
) -> None:
    """COPY new patients and observations (typed, versions and audit rows) in one transaction."""
    actor_id = actor[0]
    everything: list[Any] = [*patients, *observations]
    for resource in everything:
        resource.__dict__.update(version=1, created_at=now, updated_at=now)
    await conn.execute("SET CONSTRAINTS ALL DEFERRED")
    await conn.copy_records_to_table(
        "resource_versions",
        schema_name="hacs_core",
        columns=VERSION_COLUMNS,
        records=(
            (r.resource_type, r.id, 1, "create", r.model_dump_json(), now, actor_id)
            for r in everything
        ),
    )
    await conn.copy_records_to_table(
        "patients",
        schema_name="hacs_core",
        columns=[*ENVELOPE, *PATIENT_COLUMNS.replace(" ", "").split(",")],
        records=(
            (p.id, "Patient", 1, now, now, actor_id, actor_id, *patient_keys(p)) for p in patients
        ),
    )
    await conn.copy_records_to_table(
        "observations",
        schema_name="hacs_core",
        columns=[*ENVELOPE, *OBSERVATION_COLUMNS],
        records=(
            (o.id, "Observation", 1, now, now, actor_id, actor_id, *observation_keys(o))
            for o in observations
        ),
    )
    await conn.copy_records_to_table(
        "audit_events",
        schema_name="hacs_audit",
        columns=AUDIT_COLUMNS,
        records=((*actor, "create", r.resource_type, r.id, "success") for r in everything),
    )
