"""How hacs would be distributed with Citus, declared as data, and a check of the schema against it.

Citus cannot run here, so the plan is tested against the schema metadata only (and, in the test
suite, against a migrated database's reflected constraints): nothing below has been run on a
Citus cluster. docs/scaling.md explains the choices; its tables are rendered by this module and
compared to it by tests/test_citus_plan.py.

The plan (:data:`PLAN`) gives every table one class:

* **distributed**: sharded by hash of a distribution column, ``create_distributed_table(table,
  column, colocate_with => ...)``. A patient's data is distributed by ``patient_id`` (the patient
  compartment; ``hacs_core.patients`` by its own ``id``), all in one colocation group, so that the
  rows of one patient sit on one node and joins between them stay on it;
* **reference**: one copy on every node, ``create_reference_table(table)``, for the small shared
  resources every patient's data points at (practitioners, organizations, definitions);
* **local**: a plain PostgreSQL table on the coordinator (operations, audit, configuration).

:func:`check_plan` applies the rules Citus documents for ``create_distributed_table`` and for
foreign keys, and returns one :class:`Blocker` per violation, naming the table, the constraint,
the rule and the change that would fix it. The rules, with the error Citus raises:

* ``unique-without-key``: every PRIMARY KEY, UNIQUE constraint and unique index of a distributed
  table must contain the distribution column ("Distributed relations cannot have UNIQUE, EXCLUDE,
  or PRIMARY KEY constraints that do not include the partition column"; Citus docs, "Creating and
  Modifying Distributed Objects (DDL)", Constraints: docs.citusdata.com/en/latest/develop/
  reference_ddl.html);
* ``fk-without-key`` and ``fk-not-colocated``: a foreign key between two distributed tables
  needs co-located tables and must pair the two distribution columns at the same position ("Foreign
  keys are supported in two cases, either in between two colocated tables including partition
  column in the same ordinal in the both tables or from distributed to reference tables");
* ``fk-to-distributed``: a reference or local table cannot reference a distributed table
  ("foreign keys from reference tables to distributed tables are not supported"; a local table's
  reference to a distributed table is refused the same way);
* ``fk-to-local``: a distributed table may reference a reference table, not a local one ("relations
  are not colocated or not referencing a reference table"); references between reference and
  local tables are allowed since Citus 10, which turns such a local table into a Citus local table
  (citusdata.com/blog/2021/06/18/foreign-keys-between-local-ref-tables/);
* ``fk-action``: on a foreign key that includes the distribution column Citus refuses ON DELETE
  SET NULL / SET DEFAULT and ON UPDATE SET NULL / SET DEFAULT / CASCADE;
* ``column-missing``: the distribution column must be a column of the table;
* ``column-nullable``: ``create_distributed_table`` accepts a nullable distribution column, but
  every INSERT whose value is NULL fails ("cannot perform an INSERT with NULL in the partition
  column"), so a nullable column blocks the rows that have none;
* ``colocation-type``: co-located tables need distribution columns of one type;
* ``unclassified``: a table the plan does not place;
* ``trigger``: ``create_distributed_table`` refuses a table with triggers unless
  ``citus.enable_unsafe_triggers`` is on ("cannot distribute relation ... because it has triggers"),
  and Citus does not support triggers on reference tables by default. Triggers are not in the
  metadata: :func:`trigger_blockers` takes them as read from ``pg_trigger``.

``python -m hacs_persistence.ops.citus_plan`` prints the plan and the report as the markdown tables
docs/scaling.md shows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql

__all__ = [
    "BLOCKER_HEADER",
    "DISTRIBUTION_KEY",
    "PLAN",
    "PLAN_HEADER",
    "UNDECLARED_TABLES",
    "Blocker",
    "Placement",
    "Plan",
    "Rule",
    "TableClass",
    "blocker_rows",
    "check_plan",
    "main",
    "markdown_table",
    "plan_rows",
    "trigger_blockers",
]

# The column a patient's data is distributed by: the patient compartment.
DISTRIBUTION_KEY = "patient_id"
PATIENT_GROUP = "patient"
THREAD_GROUP = "thread"


class TableClass(StrEnum):
    """What Citus does with a table."""

    DISTRIBUTED = "distributed"
    REFERENCE = "reference"
    LOCAL = "local"


class Rule(StrEnum):
    """The Citus rules :func:`check_plan` applies (see the module docstring for their sources)."""

    UNCLASSIFIED = "unclassified"
    COLUMN_MISSING = "column-missing"
    COLUMN_NULLABLE = "column-nullable"
    UNIQUE_WITHOUT_KEY = "unique-without-key"
    FK_WITHOUT_KEY = "fk-without-key"
    FK_NOT_COLOCATED = "fk-not-colocated"
    FK_TO_DISTRIBUTED = "fk-to-distributed"
    FK_TO_LOCAL = "fk-to-local"
    FK_ACTION = "fk-action"
    COLOCATION_TYPE = "colocation-type"
    TRIGGER = "trigger"


@dataclass(frozen=True)
class Placement:
    """One table's class; a distributed table's column and colocation group; why."""

    kind: TableClass
    reason: str
    column: str | None = None
    colocation: str | None = None

    def __post_init__(self) -> None:
        distributed = self.kind is TableClass.DISTRIBUTED
        if distributed != (self.column is not None) or distributed != (self.colocation is not None):
            raise ValueError("a distributed table, and only one, has a column and a colocation")


@dataclass(frozen=True)
class Plan:
    """Placements by table full name (``schema.table``)."""

    tables: Mapping[str, Placement]


@dataclass(frozen=True, order=True)
class Blocker:
    """A violation of a Citus rule: where, which rule, what is wrong and what would fix it."""

    table: str
    constraint: str
    rule: Rule
    problem: str
    fix: str


def _patient(reason: str, column: str = DISTRIBUTION_KEY) -> Placement:
    return Placement(TableClass.DISTRIBUTED, reason, column, PATIENT_GROUP)


def _reference(reason: str) -> Placement:
    return Placement(TableClass.REFERENCE, reason)


def _local(reason: str) -> Placement:
    return Placement(TableClass.LOCAL, reason)


_CLINICAL = "a patient's clinical data, co-located with the patient"
_SHARED = "shared, small and referenced by every patient's data: one copy per node"
_DEFINITION = "a shared knowledge artefact, read with patient data: one copy per node"
_AGENT = "an agent's work about one patient, co-located with that patient"
_THREAD = "LangGraph state, keyed by thread: its own colocation group"
_AUDIT = "the audit trail's sealed, ordered chain: stays on the coordinator"
_ADMIN = "operational settings, read alone and rarely: stays on the coordinator"

PLAN = Plan(
    {
        # hacs_core
        "hacs_core.patients": _patient("the compartment's anchor: distributed by its own id", "id"),
        "hacs_core.resource_versions": _patient(
            "every version of every resource, the largest table: stored with its patient"
        ),
        "hacs_core.encounters": _patient(_CLINICAL),
        "hacs_core.observations": _patient(_CLINICAL),
        "hacs_core.observation_components": _patient(_CLINICAL),
        "hacs_core.codings": _patient("rows derived from a resource, stored with its patient"),
        "hacs_core.identifiers": _patient("rows derived from a resource, stored with its patient"),
        "hacs_core.practitioners": _reference(_SHARED),
        "hacs_core.organizations": _reference(_SHARED),
        # hacs_clinical: the patient compartment
        "hacs_clinical.conditions": _patient(_CLINICAL),
        "hacs_clinical.procedures": _patient(_CLINICAL),
        "hacs_clinical.medication_requests": _patient(_CLINICAL),
        "hacs_clinical.medication_statements": _patient(_CLINICAL),
        "hacs_clinical.allergy_intolerances": _patient(_CLINICAL),
        "hacs_clinical.immunizations": _patient(_CLINICAL),
        "hacs_clinical.diagnostic_reports": _patient(_CLINICAL),
        "hacs_clinical.document_references": _patient(_CLINICAL),
        "hacs_clinical.care_plans": _patient(_CLINICAL),
        "hacs_clinical.care_teams": _patient(_CLINICAL),
        "hacs_clinical.goals": _patient(_CLINICAL),
        "hacs_clinical.service_requests": _patient(_CLINICAL),
        "hacs_clinical.family_member_histories": _patient(_CLINICAL),
        "hacs_clinical.risk_assessments": _patient(_CLINICAL),
        "hacs_clinical.appointments": _patient(_CLINICAL),
        "hacs_clinical.nutrition_orders": _patient(_CLINICAL),
        # hacs_clinical: shared products and knowledge artefacts
        "hacs_clinical.medications": _reference(_SHARED),
        "hacs_clinical.plan_definitions": _reference(_DEFINITION),
        "hacs_clinical.activity_definitions": _reference(_DEFINITION),
        "hacs_clinical.libraries": _reference(_DEFINITION),
        "hacs_clinical.evidence_variables": _reference(_DEFINITION),
        # hacs_registry
        "hacs_registry.resource_definitions": _reference(_DEFINITION),
        "hacs_registry.tool_definitions": _reference(_DEFINITION),
        "hacs_registry.knowledge_items": _reference(_DEFINITION),
        # hacs_agents
        "hacs_agents.agent_messages": _patient(_AGENT),
        "hacs_agents.memory_blocks": _patient(_AGENT),
        "hacs_agents.agent_sessions": _patient(_AGENT),
        "hacs_agents.langgraph_checkpoints": Placement(
            TableClass.DISTRIBUTED, _THREAD, "thread_id", THREAD_GROUP
        ),
        "hacs_agents.langgraph_blobs": Placement(
            TableClass.DISTRIBUTED, _THREAD, "thread_id", THREAD_GROUP
        ),
        "hacs_agents.langgraph_writes": Placement(
            TableClass.DISTRIBUTED, _THREAD, "thread_id", THREAD_GROUP
        ),
        # hacs_admin
        "hacs_admin.system_configuration": _local(_ADMIN),
        "hacs_admin.token_revocations": _local(_ADMIN),
        "hacs_admin.alembic_version": _local("Alembic's revision: stays on the coordinator"),
        # hacs_audit
        "hacs_audit.audit_events": _local(_AUDIT),
        "hacs_audit.audit_seals": _local(_AUDIT),
        "hacs_audit.audit_sealed_rows": _local(_AUDIT),
        "hacs_audit.audit_retention_runs": _local(_AUDIT),
        "hacs_audit.transaction_grants": _local(_AUDIT),
        # public
        "public.hacs_resources": _patient(
            "every other resource type; those in a patient compartment stored with the patient"
        ),
        # hacs_views (created by revision 0008, not declared as a model)
        "hacs_views.fhir_resources": _patient(
            "FHIR copies of the resources, read per patient: stored with the patient"
        ),
    }
)

# Tables the migrations create that Base.metadata does not declare (the check of a live database
# in tests/test_citus_plan.py proves this list complete).
UNDECLARED_TABLES = ("hacs_admin.alembic_version", "hacs_views.fhir_resources")

PLAN_HEADER = ["Table", "Class", "Distribution column", "Colocation group", "Why"]
BLOCKER_HEADER = ["Table", "Constraint", "Rule", "Fix"]


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _type_name(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_DIALECT))


def _unique_sets(table: Table) -> list[tuple[str, str, list[str]]]:
    """(name, kind, column names) of the PRIMARY KEY, UNIQUE constraints and unique indexes."""
    found: list[tuple[str, str, list[str]]] = []
    for constraint in table.constraints:
        if isinstance(constraint, PrimaryKeyConstraint) and constraint.columns:
            kind = "PRIMARY KEY"
        elif isinstance(constraint, UniqueConstraint):
            kind = "UNIQUE"
        else:
            continue
        names = [c.name for c in constraint.columns]
        found.append((str(constraint.name or f"unnamed {kind}"), kind, names))
    for index in table.indexes:
        if isinstance(index, Index) and index.unique:
            # An expression's text is kept: only a plain column counts as the key.
            names = [str(getattr(e, "name", e)) for e in index.expressions]
            found.append((str(index.name), "UNIQUE INDEX", names))
    return found


def _table_blockers(table: Table, place: Placement) -> list[Blocker]:
    name = table.fullname
    key = place.column
    assert key is not None
    blockers: list[Blocker] = []
    if key not in table.c:
        blockers.append(
            Blocker(
                name,
                f"column {key}",
                Rule.COLUMN_MISSING,
                f"the table has no column {key} to distribute by",
                f"add {key} NOT NULL in an Alembic revision, back-filled from the stored rows",
            )
        )
    elif table.c[key].nullable:
        blockers.append(
            Blocker(
                name,
                f"column {key}",
                Rule.COLUMN_NULLABLE,
                f"{key} is nullable; Citus rejects every INSERT whose {key} is NULL",
                f"make {key} NOT NULL; rows without one belong in a table outside the group",
            )
        )
    for constraint, kind, columns in _unique_sets(table):
        if key not in columns:
            listed = ", ".join(columns)
            blockers.append(
                Blocker(
                    name,
                    constraint,
                    Rule.UNIQUE_WITHOUT_KEY,
                    f"{kind} ({listed}) does not contain the distribution column {key}",
                    f"make it {kind} ({key}, {listed}): unique per {key}",
                )
            )
    return blockers


def _fk_blockers(
    fk: ForeignKeyConstraint, source: Placement, target: Placement | None
) -> list[Blocker]:
    table = fk.parent
    assert isinstance(table, Table)
    referred = fk.referred_table
    name, constraint = table.fullname, str(fk.name or "unnamed FOREIGN KEY")
    if target is None:
        return []  # the referred table is reported unclassified
    if source.kind is not TableClass.DISTRIBUTED:
        if target.kind is TableClass.DISTRIBUTED:
            return [
                Blocker(
                    name,
                    constraint,
                    Rule.FK_TO_DISTRIBUTED,
                    f"a {source.kind} table references the distributed {referred.fullname}",
                    f"drop it, or reference a reference table instead of {referred.fullname}",
                )
            ]
        return []  # reference and local tables may reference each other (Citus 10+)
    if target.kind is TableClass.LOCAL:
        return [
            Blocker(
                name,
                constraint,
                Rule.FK_TO_LOCAL,
                f"a distributed table references the local {referred.fullname}",
                f"make {referred.fullname} a reference table, or drop the foreign key",
            )
        ]
    if target.kind is TableClass.REFERENCE:
        return []
    blockers: list[Blocker] = []
    if source.colocation != target.colocation:
        blockers.append(
            Blocker(
                name,
                constraint,
                Rule.FK_NOT_COLOCATED,
                f"{referred.fullname} is in colocation group {target.colocation}, "
                f"not {source.colocation}",
                f"colocate the two tables, or make {referred.fullname} a reference table",
            )
        )
    pairs = [(e.parent.name, e.column.name) for e in fk.elements]
    on_key = (source.column, target.column) in pairs
    if not on_key:
        blockers.append(
            Blocker(
                name,
                constraint,
                Rule.FK_WITHOUT_KEY,
                f"the key does not pair {source.column} with {referred.fullname}.{target.column}",
                f"reference {referred.fullname} through ({target.column}, ...) from "
                f"({source.column}, ...), at the same position on both sides",
            )
        )
    actions = (str(fk.ondelete or "").upper(), str(fk.onupdate or "").upper())
    if on_key and (
        actions[0] in {"SET NULL", "SET DEFAULT"}
        or actions[1] in {"SET NULL", "SET DEFAULT", "CASCADE"}
    ):
        blockers.append(
            Blocker(
                name,
                constraint,
                Rule.FK_ACTION,
                f"ON DELETE {actions[0] or 'NO ACTION'} ON UPDATE {actions[1] or 'NO ACTION'} "
                "on a key that includes the distribution column",
                "use NO ACTION, RESTRICT (or ON DELETE CASCADE)",
            )
        )
    return blockers


def _colocation_blockers(metadata: MetaData, plan: Plan) -> list[Blocker]:
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for table in metadata.tables.values():
        place = plan.tables.get(table.fullname)
        if place is None or place.column is None or place.column not in table.c:
            continue
        assert place.colocation is not None
        column = table.c[place.column]
        groups.setdefault(place.colocation, []).append(
            (table.fullname, place.column, _type_name(column))
        )
    blockers: list[Blocker] = []
    for group, members in groups.items():
        types = sorted({t for _, _, t in members})
        if len(types) < 2:
            continue
        # The most common type is taken as the group's; every other one is reported.
        usual = max(types, key=lambda t: (sum(1 for m in members if m[2] == t), t))
        for table_name, column_name, type_name in members:
            if type_name != usual:
                blockers.append(
                    Blocker(
                        table_name,
                        f"column {column_name}",
                        Rule.COLOCATION_TYPE,
                        f"{column_name} is {type_name}; colocation group {group} uses {usual}",
                        f"change {column_name} to {usual}",
                    )
                )
    return blockers


def check_plan(metadata: MetaData, plan: Plan) -> list[Blocker]:
    """Every violation of the Citus rules by ``plan`` applied to ``metadata``, sorted.

    Plan entries for tables the metadata lacks are ignored (a live database has more tables than
    the models declare); a table of the metadata without a placement is reported.
    """
    blockers: list[Blocker] = []
    for table in metadata.tables.values():
        place = plan.tables.get(table.fullname)
        if place is None:
            blockers.append(
                Blocker(
                    table.fullname,
                    "-",
                    Rule.UNCLASSIFIED,
                    "the plan does not place this table",
                    "add it to hacs_persistence.ops.citus_plan.PLAN",
                )
            )
            continue
        if place.kind is TableClass.DISTRIBUTED:
            blockers += _table_blockers(table, place)
        for fk in table.foreign_key_constraints:
            target = plan.tables.get(fk.referred_table.fullname)
            blockers += _fk_blockers(fk, place, target)
    blockers += _colocation_blockers(metadata, plan)
    return sorted(blockers)


def trigger_blockers(triggers: Mapping[str, Iterable[str]], plan: Plan) -> list[Blocker]:
    """A blocker per trigger on a distributed or reference table (``triggers``: by table name)."""
    blockers: list[Blocker] = []
    for table, names in triggers.items():
        place = plan.tables.get(table)
        if place is None or place.kind is TableClass.LOCAL:
            continue
        for name in names:
            if place.kind is TableClass.DISTRIBUTED:
                problem = (
                    "create_distributed_table refuses a table with triggers unless "
                    "citus.enable_unsafe_triggers is on; the trigger then runs on each shard"
                )
                fix = (
                    "prove it touches only co-located rows and turn citus.enable_unsafe_triggers "
                    "on, or move its work into the write statements"
                )
            else:
                problem = "Citus does not support triggers on reference tables by default"
                fix = "move its work into the write statements, or keep the table local"
            blockers.append(Blocker(table, f"trigger {name}", Rule.TRIGGER, problem, fix))
    return sorted(blockers)


def _code(text: str) -> str:
    return f"`{text}`"


def plan_rows(plan: Plan, tables: Iterable[str] | None = None) -> list[list[str]]:
    """The rows of the plan table in docs/scaling.md (every placement, sorted by table)."""
    names = sorted(plan.tables if tables is None else tables)
    rows = []
    for name in names:
        place = plan.tables[name]
        rows.append(
            [
                _code(name),
                str(place.kind),
                _code(place.column) if place.column else "-",
                place.colocation or "-",
                place.reason,
            ]
        )
    return rows


def blocker_rows(blockers: Iterable[Blocker]) -> list[list[str]]:
    """The rows of a report table in docs/scaling.md."""
    return [
        [_code(b.table), _code(b.constraint) if b.constraint != "-" else "-", b.rule, b.fix]
        for b in blockers
    ]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table (cells must not contain ``|``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        if any("|" in cell for cell in row):
            raise ValueError(f"a cell contains '|': {row}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the plan and the report on the declared schema as markdown; 0 whatever they say."""
    from hacs_persistence.schema import metadata

    blockers = check_plan(metadata, PLAN)
    print(markdown_table(PLAN_HEADER, plan_rows(PLAN)))
    print()
    print(markdown_table(BLOCKER_HEADER, blocker_rows(blockers)))
    print()
    for rule in Rule:
        count = sum(1 for b in blockers if b.rule is rule)
        if count:
            print(f"{rule}: {count}")
    print(f"{len(blockers)} blockers on {len({b.table for b in blockers})} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
