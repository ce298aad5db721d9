"""The Citus plan: every table placed, the checker's rules, and docs/scaling.md rendered from both.

Citus does not run here: the rules are proven on small synthetic schemas, the report on the
declared metadata, and the metadata against a migrated database's own constraints (so the report
is not about a fiction).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    pool,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hacs_persistence.ops.citus_plan import (
    BLOCKER_HEADER,
    PLAN,
    PLAN_HEADER,
    UNDECLARED_TABLES,
    Blocker,
    Placement,
    Plan,
    Rule,
    TableClass,
    blocker_rows,
    check_plan,
    main,
    plan_rows,
    trigger_blockers,
)
from hacs_persistence.schema import metadata
from hacs_persistence.schema.audit import is_audit_partition
from tests.docs_blocks import MarkdownTable, section, tables

PAGE = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
CITUS = "Distributed PostgreSQL (Citus)"
REPORT_HEADING = "What blocks create_distributed_table today"
UNDECLARED_HEADING = "Tables the metadata does not declare"
TRIGGERS_HEADING = "Triggers the metadata does not show"
SUMMARY_HEADER = ["Rule", "Blockers", "Revision that removes them"]


def _citus_tables() -> list[MarkdownTable]:
    return tables(section(PAGE.read_text(encoding="utf-8"), CITUS))


def _table(header: list[str], heading: str | None = None) -> MarkdownTable:
    found = [
        t
        for t in _citus_tables()
        if t.header == header and (heading is None or t.heading == heading)
    ]
    assert len(found) == 1, f"docs/scaling.md: one table {header} under {heading!r}"
    return found[0]


# --- the plan covers the schema ----------------------------------------------------------------


def test_every_declared_table_is_placed_and_the_plan_names_no_other() -> None:
    declared = set(metadata.tables)
    assert sorted(declared - set(PLAN.tables)) == [], "place these tables in citus_plan.PLAN"
    assert set(PLAN.tables) - declared == set(UNDECLARED_TABLES)
    assert [b for b in check_plan(metadata, PLAN) if b.rule is Rule.UNCLASSIFIED] == []


def test_a_table_the_plan_does_not_place_is_a_blocker() -> None:
    schema = _metadata()
    Table("extra", schema, Column("id", Text, primary_key=True), schema="hacs_core")
    [blocker] = check_plan(schema, PLAN)
    assert (blocker.table, blocker.rule) == ("hacs_core.extra", Rule.UNCLASSIFIED)


def test_a_distributed_placement_needs_a_column_and_a_group() -> None:
    bad: list[tuple[TableClass, str | None, str | None]] = [
        (TableClass.DISTRIBUTED, None, None),
        (TableClass.DISTRIBUTED, "patient_id", None),
        (TableClass.REFERENCE, "patient_id", "patient"),
    ]
    for kind, column, group in bad:
        with pytest.raises(ValueError, match="a distributed table"):
            Placement(kind, "x", column, group)


# --- docs/scaling.md is rendered from the plan and the checker ----------------------------------


def test_the_page_has_the_scaling_sections_in_order() -> None:
    headings, fenced = [], False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith(("# ", "## ")):
            headings.append(line)
    assert headings == [
        "# Scaling",
        "## Measured growth",
        "## Partitioning",
        "## Read replicas",
        "## Connection pooling",
        "## Filtered similarity search",
        f"## {CITUS}",
    ]


def test_the_docs_plan_table_is_the_plan() -> None:
    assert _table(PLAN_HEADER).rows == plan_rows(PLAN)


def test_the_docs_report_is_the_checkers_report_on_the_metadata() -> None:
    blockers = check_plan(metadata, PLAN)
    assert blockers, "the declared schema cannot be distributed yet; the page says so"
    assert _table(BLOCKER_HEADER, REPORT_HEADING).rows == blocker_rows(blockers)


def test_the_docs_summary_counts_the_report_by_rule() -> None:
    counts = Counter(str(b.rule) for b in check_plan(metadata, PLAN))
    rows = _table(SUMMARY_HEADER).rows
    assert {row[0].strip("`"): int(row[1]) for row in rows} == dict(counts)


def test_main_prints_the_plan_and_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    blockers = check_plan(metadata, PLAN)
    assert f"{len(blockers)} blockers on {len({b.table for b in blockers})} tables" in out
    assert "| `hacs_core.patients` | distributed | `id` | patient |" in out


# --- each rule, on a small schema ----------------------------------------------------------------

KEY = "tenant"


def _metadata() -> MetaData:
    return MetaData(naming_convention={"pk": "pk_%(table_name)s"})


def _plan(**placements: Placement) -> Plan:
    return Plan({f"s.{name}": place for name, place in placements.items()})


def _dist(column: str = KEY, group: str = "g") -> Placement:
    return Placement(TableClass.DISTRIBUTED, "test", column, group)


REF = Placement(TableClass.REFERENCE, "test")
LOCAL = Placement(TableClass.LOCAL, "test")


def _compliant() -> MetaData:
    """A tenant, its orders (keyed by tenant), a code table and a local settings table."""
    schema = _metadata()
    Table(
        "tenants",
        schema,
        Column("id", Text, primary_key=True),
        schema="s",
    )
    Table(
        "orders",
        schema,
        Column(KEY, Text, nullable=False),
        Column("id", Text, nullable=False),
        Column("code", Text),
        Column("parent", Text),
        PrimaryKeyConstraint(KEY, "id", name="pk_orders"),
        UniqueConstraint(KEY, "code", name="uq_orders_code"),
        Index("uix_orders_parent", KEY, "parent", unique=True),
        ForeignKeyConstraint([KEY], ["s.tenants.id"], name="fk_orders_tenant"),
        ForeignKeyConstraint(
            [KEY, "parent"], ["s.orders.tenant", "s.orders.id"], name="fk_orders_parent"
        ),
        ForeignKeyConstraint(["code"], ["s.codes.code"], name="fk_orders_code"),
        schema="s",
    )
    Table(
        "codes",
        schema,
        Column("code", Text, primary_key=True),
        Column("setting", Text),
        ForeignKeyConstraint(["setting"], ["s.settings.key"], name="fk_codes_setting"),
        schema="s",
    )
    Table(
        "settings",
        schema,
        Column("key", Text, primary_key=True),
        Column("code", Text),
        ForeignKeyConstraint(["code"], ["s.codes.code"], name="fk_settings_code"),
        schema="s",
    )
    return schema


def _compliant_plan() -> Plan:
    return _plan(tenants=_dist("id"), orders=_dist(), codes=REF, settings=LOCAL)


def _rules(blockers: list[Blocker]) -> list[tuple[str, str, Rule]]:
    return [(b.table, b.constraint, b.rule) for b in blockers]


def test_a_compliant_schema_has_no_blockers() -> None:
    # Distributed -> distributed on the key, distributed -> reference, reference <-> local.
    assert check_plan(_compliant(), _compliant_plan()) == []


def test_a_primary_key_without_the_distribution_column_is_a_blocker() -> None:
    schema = _metadata()
    Table(
        "events",
        schema,
        Column("id", Text, primary_key=True),
        Column(KEY, Text, nullable=False),
        schema="s",
    )
    [blocker] = check_plan(schema, _plan(events=_dist()))
    assert _rules([blocker]) == [("s.events", "pk_events", Rule.UNIQUE_WITHOUT_KEY)]
    assert blocker.fix == f"make it PRIMARY KEY ({KEY}, id): unique per {KEY}"


def test_a_unique_constraint_or_unique_index_without_the_column_is_a_blocker() -> None:
    schema = _metadata()
    Table(
        "events",
        schema,
        Column(KEY, Text, nullable=False),
        Column("id", Text, nullable=False),
        Column("email", Text),
        Column("number", Integer),
        PrimaryKeyConstraint(KEY, "id", name="pk_events"),
        UniqueConstraint("email", name="uq_events_email"),
        Index("uix_events_number", "number", unique=True),
        Index("ix_events_email", "email"),  # not unique: no rule
        schema="s",
    )
    assert _rules(check_plan(schema, _plan(events=_dist()))) == [
        ("s.events", "uix_events_number", Rule.UNIQUE_WITHOUT_KEY),
        ("s.events", "uq_events_email", Rule.UNIQUE_WITHOUT_KEY),
    ]


def test_a_missing_or_nullable_distribution_column_is_a_blocker() -> None:
    schema = _metadata()
    Table("a", schema, Column("id", Text, primary_key=True), schema="s")
    # No key at all (Citus accepts that), but a nullable distribution column.
    Table("b", schema, Column(KEY, Text, nullable=True), Column("id", Text), schema="s")
    assert _rules(check_plan(schema, _plan(a=_dist(), b=_dist()))) == [
        ("s.a", f"column {KEY}", Rule.COLUMN_MISSING),
        ("s.a", "pk_a", Rule.UNIQUE_WITHOUT_KEY),
        ("s.b", f"column {KEY}", Rule.COLUMN_NULLABLE),
    ]


def test_a_foreign_key_between_distributed_tables_off_the_key_is_a_blocker() -> None:
    schema = _compliant()
    orders = schema.tables["s.orders"]
    # The parent link without the tenant: (parent) -> orders(id) needs a unique id.
    orders.append_constraint(UniqueConstraint(KEY, "id", name="uq_orders_id"))
    orders.append_constraint(
        ForeignKeyConstraint(["parent"], ["s.orders.id"], name="fk_orders_parent_only")
    )
    # The tenant paired with the wrong column.
    orders.append_constraint(
        ForeignKeyConstraint(["id"], ["s.tenants.id"], name="fk_orders_id_tenant")
    )
    assert _rules(check_plan(schema, _compliant_plan())) == [
        ("s.orders", "fk_orders_id_tenant", Rule.FK_WITHOUT_KEY),
        ("s.orders", "fk_orders_parent_only", Rule.FK_WITHOUT_KEY),
    ]


def test_a_foreign_key_between_two_colocation_groups_is_a_blocker() -> None:
    plan = _plan(tenants=_dist("id", "other"), orders=_dist(), codes=REF, settings=LOCAL)
    assert _rules(check_plan(_compliant(), plan)) == [
        ("s.orders", "fk_orders_tenant", Rule.FK_NOT_COLOCATED),
    ]


def test_a_reference_or_local_table_referencing_a_distributed_one_is_a_blocker() -> None:
    schema = _compliant()
    for name in ("codes", "settings"):
        table = schema.tables[f"s.{name}"]
        table.append_column(Column("tenant_id", Text))
        table.append_constraint(
            ForeignKeyConstraint(["tenant_id"], ["s.tenants.id"], name=f"fk_{name}_tenant")
        )
    assert _rules(check_plan(schema, _compliant_plan())) == [
        ("s.codes", "fk_codes_tenant", Rule.FK_TO_DISTRIBUTED),
        ("s.settings", "fk_settings_tenant", Rule.FK_TO_DISTRIBUTED),
    ]


def test_a_distributed_table_referencing_a_local_one_is_a_blocker() -> None:
    schema = _compliant()
    orders = schema.tables["s.orders"]
    orders.append_column(Column("setting", Text))
    orders.append_constraint(
        ForeignKeyConstraint(["setting"], ["s.settings.key"], name="fk_orders_setting")
    )
    assert _rules(check_plan(schema, _compliant_plan())) == [
        ("s.orders", "fk_orders_setting", Rule.FK_TO_LOCAL),
    ]


def test_set_null_on_a_key_with_the_distribution_column_is_a_blocker() -> None:
    schema = _compliant()
    orders = schema.tables["s.orders"]
    orders.append_column(Column("parent2", Text))
    orders.append_constraint(
        ForeignKeyConstraint(
            [KEY, "parent2"],
            ["s.orders.tenant", "s.orders.id"],
            name="fk_orders_parent2",
            ondelete="SET NULL",
        )
    )
    assert _rules(check_plan(schema, _compliant_plan())) == [
        ("s.orders", "fk_orders_parent2", Rule.FK_ACTION),
    ]


def test_colocated_distribution_columns_of_different_types_are_a_blocker() -> None:
    schema = _compliant()
    Table(
        "notes",
        schema,
        Column(KEY, Integer, nullable=False),
        Column("id", Text, nullable=False),
        PrimaryKeyConstraint(KEY, "id", name="pk_notes"),
        schema="s",
    )
    plan = Plan({**_compliant_plan().tables, "s.notes": _dist()})
    assert _rules(check_plan(schema, plan)) == [
        ("s.notes", f"column {KEY}", Rule.COLOCATION_TYPE),
    ]


def test_a_trigger_on_a_distributed_or_reference_table_is_a_blocker() -> None:
    plan = _compliant_plan()
    triggers = {"s.orders": ["t1"], "s.codes": ["t2"], "s.settings": ["t3"], "s.unknown": ["t4"]}
    assert _rules(trigger_blockers(triggers, plan)) == [
        ("s.codes", "trigger t2", Rule.TRIGGER),
        ("s.orders", "trigger t1", Rule.TRIGGER),
    ]


# --- the metadata is the database's schema --------------------------------------------------------


def _shape(table: Table) -> dict[str, object]:
    """The constraints the rules read: key, unique sets, foreign keys, nullability."""
    uniques = sorted(
        (str(c.name), tuple(col.name for col in c.columns))
        for c in table.constraints
        if isinstance(c, UniqueConstraint)
    )
    unique_indexes = sorted(
        (str(i.name), tuple(str(getattr(e, "name", e)) for e in i.expressions))
        for i in table.indexes
        if i.unique
    )
    fks = sorted(
        (
            str(fk.name),
            tuple(fk.column_keys),
            fk.referred_table.fullname,
            tuple(e.column.name for e in fk.elements),
            fk.ondelete,
            fk.onupdate,
        )
        for fk in table.foreign_key_constraints
    )
    return {
        "primary key": (table.primary_key.name, tuple(c.name for c in table.primary_key)),
        "unique": uniques,
        "unique indexes": unique_indexes,
        "foreign keys": fks,
        "nullable": sorted(c.name for c in table.columns if c.nullable),
    }


async def test_the_migrated_database_has_the_constraints_the_checker_reads(
    database_url: str,
) -> None:
    import pgvector.sqlalchemy  # noqa: F401 (registers the vector type for reflection)

    url = make_url(database_url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    live = MetaData()
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_type = 'BASE TABLE' "
                    "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            )
            # The months of hacs_audit.audit_events (revision 0012) are not tables of their own.
            names = {row[0] for row in rows if not is_audit_partition(row[0].split(".", 1)[1])}
            found = await conn.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname, t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE NOT t.tgisinternal ORDER BY 1, 2"
                )
            )
            triggers: dict[str, list[str]] = {}
            for table_name, trigger in found:
                if table_name in names:
                    triggers.setdefault(table_name, []).append(trigger)
            schemas = sorted({name.split(".", 1)[0] for name in names})

            def reflect(sync: Connection) -> None:
                for schema in schemas:
                    live.reflect(
                        sync, schema=schema, only=lambda name, _: not is_audit_partition(name)
                    )

            await conn.run_sync(reflect)
    finally:
        await engine.dispose()

    assert names == set(metadata.tables) | set(UNDECLARED_TABLES)
    assert set(live.tables) == names
    for name, table in metadata.tables.items():
        assert _shape(live.tables[name]) == _shape(table), name

    reported = check_plan(live, PLAN)
    declared = [b for b in reported if b.table in metadata.tables]
    assert declared == check_plan(metadata, PLAN)
    undeclared = [b for b in reported if b.table not in metadata.tables]
    assert _table(BLOCKER_HEADER, UNDECLARED_HEADING).rows == blocker_rows(undeclared)
    # The triggers (the metadata has none) that Citus would refuse, as the page lists them.
    assert set(triggers) <= names
    shown = _table(BLOCKER_HEADER, TRIGGERS_HEADING).rows
    assert shown == blocker_rows(trigger_blockers(triggers, PLAN))
