"""ViewDefinition -> one PostgreSQL SELECT over ``hacs_views.fhir_resources``.

Every FHIRPath expression compiles to a SQL expression whose value is the FHIRPath collection as
a ``jsonb`` array (navigation is ``jsonb_path_query_array`` with ``$[*]."name"[*]``, which
flattens lists the way FHIRPath does); booleans come back through ``hacs_views.truth``.
``forEach`` / ``forEachOrNull`` / ``repeat`` are LATERAL joins over ``jsonb_array_elements``,
nested ``select`` are CROSS JOIN LATERAL subqueries, ``unionAll`` is ``UNION ALL``. The helper
functions (``hacs_views.truth``, ``singleton``, ...) come with migration 0008.

Every value taken from the definition (constants, literals, JSON paths, names used in messages)
is a bound parameter; identifiers are quoted by SQLAlchemy's PostgreSQL identifier preparer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import Text

from hacs_persistence.views.definition import Column, SelectNode, ViewDefinition
from hacs_persistence.views.errors import ViewDefinitionError
from hacs_persistence.views.fhirpath import (
    Binary,
    Call,
    Constant,
    Index,
    Literal,
    Member,
    Node,
    This,
    parse,
)
from hacs_persistence.views.typed import TypedPath, typed_path

__all__ = ["FHIR_RESOURCES", "CompiledView", "compile_view", "quote", "typed_table"]

FHIR_RESOURCES = "hacs_views.fhir_resources"
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PREPARER = _DIALECT.identifier_preparer
# Hidden columns view_rows adds for the audit row (which resources and patients were read).
RESOURCE_ID = "__hacs_resource_id"
PATIENT_ID = "__hacs_patient_id"

_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})
_STRING_TYPES = frozenset(
    {"string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown", "base64Binary"}
)
_TEMPORAL_TYPES = frozenset({"date", "dateTime", "instant", "time"})
# Elements that hold resources, not a choice type: ofType() filters them instead of renaming.
_RESOURCE_CONTAINERS = frozenset({"contained", "resource"})
_COMPARISONS = {"<": "< 0", ">": "> 0", "<=": "<= 0", ">=": ">= 0"}
_ARITHMETIC = frozenset({"+", "-", "*", "/"})


def quote(name: str) -> str:
    """A SQL identifier, always quoted by SQLAlchemy's PostgreSQL preparer."""
    return _PREPARER.quote_identifier(name)


@dataclass(frozen=True)
class _Scope:
    focus: str  # SQL: the focus as a jsonb collection
    row_index: str  # SQL: %rowIndex (an integer)
    # SQL of the focus as one jsonb value when it is known to be exactly one (never NULL):
    # paths then start from it directly instead of from a one-element array.
    item: str | None = None


@dataclass
class CompiledView:
    """The SELECT of a view, its column names and its bound parameters."""

    definition: ViewDefinition
    sql: str
    columns: list[str]
    params: dict[str, str]
    column_types: dict[str, str | None] = field(default_factory=dict)

    def statement(self) -> TextClause:
        """The SELECT as a SQLAlchemy text clause with its parameters bound."""
        return text(self.sql).bindparams(
            *(bindparam(k, v, type_=Text) for k, v in self.params.items())
        )

    def literal_sql(self) -> str:
        """The SELECT with its parameters rendered as SQL literals (for ``CREATE VIEW``).

        A view body cannot hold bind parameters; SQLAlchemy's literal rendering escapes them.
        """
        compiled = self.statement().compile(
            dialect=_DIALECT, compile_kwargs={"literal_binds": True}
        )
        return str(compiled)


class _Compiler:
    def __init__(self, definition: ViewDefinition) -> None:
        self.definition = definition
        self.params: dict[str, str] = {}
        self.aliases = 0
        self.constants = {c.name: c.value for c in definition.constant}
        self.types: dict[str, str | None] = {}

    # -- parameters and names -------------------------------------------------------------

    def param(self, value: str) -> str:
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f":{name}"

    def jsonb(self, values: list[Any]) -> str:
        return f"CAST({self.param(_json_array(values))} AS jsonb)"

    def alias(self, prefix: str) -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    # -- FHIRPath -> SQL (jsonb collections) -----------------------------------------------

    def path(self, expression: str, scope: _Scope) -> str:
        return self.expr(parse(expression), scope)

    def expr(self, node: Node, scope: _Scope) -> str:
        if isinstance(node, This):
            return scope.focus
        if isinstance(node, Literal):
            return self.jsonb([node.value])
        if isinstance(node, Constant):
            if node.name == "rowIndex":
                return f"jsonb_build_array({scope.row_index})"
            if node.name not in self.constants:
                raise ViewDefinitionError(
                    f"FHIRPath uses %{node.name}, which is not a constant of the view; add it "
                    "to `constant` or fix the name."
                )
            return self.jsonb([self.constants[node.name]])
        if isinstance(node, Member):
            return self.members(node, scope)
        if isinstance(node, Index):
            return f"hacs_views.item({self.expr(node.base, scope)}, {self.integer(node.index)})"
        if isinstance(node, Call):
            return self.call(node, scope)
        return self.binary(node, scope)

    def members(self, node: Member, scope: _Scope) -> str:
        steps: list[str] = []
        current: Node = node
        while True:
            if isinstance(current, Member):
                steps.append(current.name)
                current = current.base
            elif (choice := _choice_element(current)) is not None:
                # value.ofType(Quantity) is the element valueQuantity: one more path step.
                steps.append(choice.name)
                current = choice.base
            else:
                break
        names = list(reversed(steps))
        if isinstance(current, This) and scope.item is not None:
            jsonpath = "$" + "".join(f'."{name}"[*]' for name in names)
            return f"jsonb_path_query_array({scope.item}, CAST({self.param(jsonpath)} AS jsonpath))"
        return self._step(self.expr(current, scope), *names)

    def _step(self, base: str, *names: str) -> str:
        # $[*]."a"[*]."b"[*]: each step flattens lists, as FHIRPath navigation does.
        jsonpath = "$[*]" + "".join(f'."{name}"[*]' for name in names)
        return f"jsonb_path_query_array({base}, CAST({self.param(jsonpath)} AS jsonpath))"

    def integer(self, node: Node) -> str:
        value: Any
        if isinstance(node, Literal):
            value = node.value
        elif isinstance(node, Constant) and node.name in self.constants:
            value = self.constants[node.name]
        else:
            raise ViewDefinitionError("An indexer must be an integer literal or constant.")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ViewDefinitionError(f"An indexer must be an integer, not {value!r}.")
        return f"CAST({self.param(str(value))} AS integer)"

    def boolean(self, node: Node, scope: _Scope) -> str:
        compiled = self.expr(node, scope)
        inner = _unwrapped_bool(compiled)
        return inner if inner is not None else f"hacs_views.truth({compiled})"

    def elements(self, collection: str, condition: str, alias: str, value: str = "") -> str:
        """The elements (or ``value`` of each) of a collection that satisfy ``condition``."""
        item = value or f"{alias}.e"
        return (
            f"(SELECT coalesce(jsonb_agg({item} ORDER BY {alias}.i), '[]'::jsonb) "
            f"FROM jsonb_array_elements({collection}) WITH ORDINALITY AS {alias}(e, i) "
            f"WHERE {condition})"
        )

    def call(self, node: Call, scope: _Scope) -> str:
        name, args = node.name, node.args
        if name == "ofType":
            type_name = _type_argument(node, required=True)
            assert type_name is not None
            target = node.base
            choice = _choice_element(node)
            if choice is not None:
                # A choice element: value.ofType(Quantity) is the JSON element valueQuantity.
                return self.members(choice, scope)
            alias = self.alias("t")
            return self.elements(
                self.expr(target, scope), _type_test(f"{alias}.e", type_name, self), alias
            )
        if name == "getResourceKey":
            _arity(node, 0)
            return self.members(Member(node.base, "id"), scope)
        base = self.expr(node.base, scope)
        if name == "where":
            _arity(node, 1)
            alias = self.alias("w")
            inner = _Scope(f"jsonb_build_array({alias}.e)", scope.row_index, f"{alias}.e")
            return self.elements(base, self.boolean(args[0], inner), alias)
        if name in ("exists", "empty"):
            if name == "exists" and len(args) == 1:
                alias = self.alias("w")
                inner = _Scope(f"jsonb_build_array({alias}.e)", scope.row_index, f"{alias}.e")
                base = self.elements(base, self.boolean(args[0], inner), alias)
            else:
                _arity(node, 0)
            op = ">" if name == "exists" else "="
            return f"hacs_views.bool(jsonb_array_length({base}) {op} 0)"
        if name == "first":
            _arity(node, 0)
            return f"hacs_views.item({base}, 0)"
        if name == "last":
            _arity(node, 0)
            return f"hacs_views.item({base}, -1)"
        if name == "count":
            _arity(node, 0)
            return f"jsonb_build_array(jsonb_array_length({base}))"
        if name == "not":
            _arity(node, 0)
            return f"hacs_views.bool(NOT hacs_views.truth({base}))"
        if name == "join":
            if len(args) > 1:
                raise ViewDefinitionError("join() takes at most one separator.")
            separator = ""
            if args:
                if not isinstance(args[0], Literal) or not isinstance(args[0].value, str):
                    raise ViewDefinitionError("join() takes a string literal separator.")
                separator = args[0].value
            alias = self.alias("j")
            return (
                f"(SELECT jsonb_build_array(coalesce(string_agg({alias}.e #>> '{{}}', "
                f"CAST({self.param(separator)} AS text) ORDER BY {alias}.i), '')) "
                f"FROM jsonb_array_elements({base}) WITH ORDINALITY AS {alias}(e, i))"
            )
        if name == "extension":
            _arity(node, 1)
            url = args[0]
            if not isinstance(url, Literal) or not isinstance(url.value, str):
                raise ViewDefinitionError("extension() takes the extension's url as a string.")
            alias = self.alias("x")
            extensions = self._step(base, "extension")
            return self.elements(
                extensions, f"{alias}.e ->> 'url' = CAST({self.param(url.value)} AS text)", alias
            )
        if name in ("lowBoundary", "highBoundary"):
            _arity(node, 0)
            of_type = (
                node.base if isinstance(node.base, Call) and node.base.name == "ofType" else None
            )
            kind = _type_argument(of_type, required=True) if of_type is not None else ""
            high = "true" if name == "highBoundary" else "false"
            return f"hacs_views.boundary({base}, CAST({self.param(kind or '')} AS text), {high})"
        if name == "getReferenceKey":
            type_name = _type_argument(node, required=False)
            alias = self.alias("g")
            wanted = "NULL" if type_name is None else f"CAST({self.param(type_name)} AS text)"
            key = f"hacs_views.reference_key({alias}.e, {wanted})"
            return self.elements(base, f"{key} IS NOT NULL", alias, f"to_jsonb({key})")
        raise ViewDefinitionError(
            f"FHIRPath function {name}() is not supported by the SQL compiler; supported: "
            "where, exists, empty, first, last, count, not, join, ofType, extension, "
            "getResourceKey, getReferenceKey, lowBoundary, highBoundary."
        )

    def binary(self, node: Binary, scope: _Scope) -> str:
        op = node.op
        if op in ("and", "or"):
            left, right = self.boolean(node.left, scope), self.boolean(node.right, scope)
            return f"hacs_views.bool({left} {op.upper()} {right})"
        if op == "xor":
            left, right = self.boolean(node.left, scope), self.boolean(node.right, scope)
            return f"hacs_views.bool({left} <> {right})"
        if op == "implies":
            left, right = self.boolean(node.left, scope), self.boolean(node.right, scope)
            return f"hacs_views.bool(NOT {left} OR {right})"
        left, right = self.expr(node.left, scope), self.expr(node.right, scope)
        if op == "=":
            return f"hacs_views.bool(hacs_views.equal({left}, {right}))"
        if op == "!=":
            return f"hacs_views.bool(NOT hacs_views.equal({left}, {right}))"
        if op in _COMPARISONS:
            return f"hacs_views.bool(hacs_views.compare({left}, {right}) {_COMPARISONS[op]})"
        if op in _ARITHMETIC:
            return f"hacs_views.arithmetic({left}, {right}, CAST({self.param(op)} AS text))"
        if op == "|":
            return f"hacs_views.union_of({left}, {right})"
        raise ViewDefinitionError(f"FHIRPath operator {op!r} is not supported.")

    # -- select nodes -> LATERAL subqueries ------------------------------------------------

    def node(
        self, node: SelectNode, element: str, row_index: str, single: bool
    ) -> tuple[str, list[str]]:
        """A select node as a subquery; ``single``: ``element`` is never NULL."""
        scope = _Scope(f"hacs_views.element({element})", row_index, element if single else None)
        base = self.alias("b")
        source = f"(SELECT 1) AS {base}"
        if node.forEach is not None or node.forEachOrNull is not None:
            expression = node.forEach if node.forEach is not None else node.forEachOrNull
            assert expression is not None
            collection = self.path(expression, scope)
            each = self.alias("f")
            elements = f"jsonb_array_elements({collection}) WITH ORDINALITY AS {each}(e, i)"
            if node.forEach is not None:
                source = elements
            else:
                source = f"{source} LEFT JOIN LATERAL {elements} ON true"
            # The null row of forEachOrNull is row 0, as the spec's %rowIndex tests say.
            element, row_index = f"{each}.e", f"CAST(coalesce({each}.i - 1, 0) AS integer)"
            single = node.forEach is not None
        elif node.repeat is not None:
            each = self.alias("f")
            source = f"{self.repeat(node.repeat, scope)} AS {each}"
            element, row_index, single = f"{each}.e", f"{each}.i", True
        inner = _Scope(f"hacs_views.element({element})", row_index, element if single else None)
        selected: list[str] = []
        names: list[str] = []
        for column in node.column:
            selected.append(f"{self.column(column, inner)} AS {quote(column.name)}")
            names.append(column.name)
            self.types[column.name] = None if column.collection else column.type
        joins: list[str] = []
        for child in node.select:
            sql, child_names = self.node(child, element, row_index, single)
            alias = self.alias("n")
            joins.append(f"CROSS JOIN LATERAL ({sql}) AS {alias}")
            selected += [f"{alias}.{quote(n)}" for n in child_names]
            names += child_names
        if node.unionAll:
            parts = [self.node(option, element, row_index, single) for option in node.unionAll]
            first = parts[0][1]
            for _sql, option_names in parts[1:]:
                if option_names != first:
                    raise ViewDefinitionError(
                        "Every unionAll option must have the same columns in the same order: "
                        f"{first} differs from {option_names}."
                    )
            alias = self.alias("u")
            union = " UNION ALL ".join(f"({sql})" for sql, _names in parts)
            joins.append(f"CROSS JOIN LATERAL ({union}) AS {alias}")
            selected += [f"{alias}.{quote(n)}" for n in first]
            names += first
        body = f"SELECT {', '.join(selected)} FROM {source}"
        return " ".join((body, *joins)), names

    def repeat(self, paths: list[str], scope: _Scope) -> str:
        """All elements reached by applying ``paths`` again and again, depth first."""
        tree, step = self.alias("r"), self.alias("y")

        def children(focus: str) -> str:
            inner = _Scope(focus, scope.row_index)
            return " || ".join(self.path(p, inner) for p in paths)

        first, then = self.alias("y"), f"hacs_views.element({tree}.e)"
        return (
            f"(WITH RECURSIVE {tree}(e, ord) AS ("
            f"SELECT {first}.e, ARRAY[{first}.i] "
            f"FROM jsonb_array_elements({children(scope.focus)}) WITH ORDINALITY AS {first}(e, i) "
            f"UNION ALL SELECT {step}.e, {tree}.ord || {step}.i FROM {tree} CROSS JOIN LATERAL "
            f"jsonb_array_elements({children(then)}) WITH ORDINALITY AS {step}(e, i)) "
            f"SELECT e, CAST(row_number() OVER (ORDER BY ord) - 1 AS integer) AS i FROM {tree})"
        )

    def column(self, column: Column, scope: _Scope) -> str:
        collection = self.path(column.path, scope)
        if column.collection:
            return collection
        value = f"hacs_views.singleton({collection}, CAST({self.param(column.name)} AS text))"
        kind = column.type
        if kind == "boolean":
            return f"CAST({value} AS boolean)"
        if kind in _INTEGER_TYPES:
            return f"CAST({value} AS bigint)"
        if kind == "decimal":
            return f"CAST({value} AS numeric)"
        if kind in _STRING_TYPES or kind in _TEMPORAL_TYPES:
            # Dates and times stay their FHIR text: no offset or precision is lost.
            return f"({value} #>> '{{}}')"
        return value

    def view(self, extra: bool, scoped: bool, typed: bool) -> CompiledView:
        table = typed_table(self.definition) if typed else None
        if table is None:
            return self.json_view(extra, scoped, untyped_only=False)
        typed_rows = self.typed_view(table, extra, scoped)
        # The resources of the type that are not in its typed table: their JSON alone.
        json_rows = self.json_view(extra, scoped, untyped_only=True)
        statement = f"{typed_rows} UNION ALL {json_rows.sql}"
        return CompiledView(self.definition, statement, json_rows.columns, self.params, self.types)

    def json_view(self, extra: bool, scoped: bool, *, untyped_only: bool) -> CompiledView:
        """The view over the FHIR JSON (``untyped_only``: of resources not stored typed)."""
        top = SelectNode(select=list(self.definition.select))
        sql, names = self.node(top, "r.resource", "0", True)
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise ViewDefinitionError(f"Column names must be unique; repeated: {duplicates}.")
        root = _Scope("hacs_views.element(r.resource)", "0", "r.resource")
        conditions = [f"r.resource_type = CAST({self.param(self.definition.resource)} AS text)"]
        if untyped_only:
            conditions.append("NOT r.stored_typed")
        conditions += [self.where(w.path, root) for w in self.definition.where]
        if scoped:
            conditions.append("r.patient_id = ANY(CAST(:allowed AS text[]))")
        selected = [f"v.{quote(n)}" for n in names]
        if extra:
            selected += [f"r.id AS {quote(RESOURCE_ID)}", f"r.patient_id AS {quote(PATIENT_ID)}"]
        statement = (
            f"SELECT {', '.join(selected) or '1'} FROM {FHIR_RESOURCES} AS r "
            f"CROSS JOIN LATERAL ({sql}) AS v WHERE {' AND '.join(conditions)}"
        )
        return CompiledView(self.definition, statement, names, self.params, self.types)

    def typed_view(self, table: str, extra: bool, scoped: bool) -> str:
        """The rows of a flat view for the resources stored in the typed table ``t``.

        A column with a typed mapping reads ``t``; the others read the resource's FHIR JSON in
        ``hacs_views.fhir_resources``, one index probe each, made only when the column is
        read. A mapping that is not exact on some rows (``inexact_when``) splits the rows in
        two: the others read ``t`` alone, these (a dangling reference an import cleared, a
        value that is not a Quantity...) read those columns from the JSON.
        Every live typed row has its FHIR JSON (every write keeps them in step, and
        ``create_view`` refuses a typed view over rows stored before revision 0008).
        """
        resource = self.definition.resource
        columns = [c for node in self.definition.select for c in node.column]
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise ViewDefinitionError(f"Column names must be unique; repeated: {duplicates}.")
        root = _Scope("hacs_views.element(r.resource)", "0", "r.resource")
        mapped = {c.name: _mapped(resource, c) for c in columns}
        found = [m.inexact_when for m in mapped.values() if m is not None and m.inexact_when]
        # Bare column names of the typed table: in the same form as the partial index on
        # these rows (ix_observations_view_fallback), whose predicate this then implies.
        inexact = " OR ".join(f"({c})" for c in dict.fromkeys(found))
        kind = self.param(resource)
        same = f"r.resource_type = CAST({kind} AS text) AND r.id = t.id AND r.stored_typed"
        compiled: dict[str, str] = {}

        def json(column: Column) -> str:
            # Compiled once, and only for columns that read the JSON (each binds parameters).
            if column.name not in compiled:
                compiled[column.name] = self.column(column, root)
            return compiled[column.name]

        for column in columns:
            self.types[column.name] = None if column.collection else column.type
        # The view's own where clauses and a patient-scoped actor's rows, on the JSON.
        checks = [self.where(w.path, root) for w in self.definition.where]
        if scoped:
            checks.append("r.patient_id = ANY(CAST(:allowed AS text[]))")

        def part(exact_rows: bool) -> str:
            selected = []
            for column in columns:
                typed = mapped[column.name]
                if typed is not None and (typed.inexact_when is None or exact_rows):
                    value = f"t.{quote(typed.column)}"
                elif exact_rows:
                    value = f"(SELECT {json(column)} FROM {FHIR_RESOURCES} AS r WHERE {same})"
                else:
                    value = json(column)
                selected.append(f"{value} AS {quote(column.name)}")
            if extra:
                patient = "r.patient_id"
                if exact_rows:
                    patient = f"(SELECT r.patient_id FROM {FHIR_RESOURCES} AS r WHERE {same})"
                selected += [f"t.id AS {quote(RESOURCE_ID)}", f"{patient} AS {quote(PATIENT_ID)}"]
            # A subclass of the type (its own resource_type) shares the table.
            rows = [
                "deleted_at IS NULL",
                f"resource_type = CAST({kind} AS text)",
                (f"NOT ({inexact})" if exact_rows else f"({inexact})") if inexact else "true",
            ]
            source = f"(SELECT * FROM {table} WHERE {' AND '.join(rows)}) AS t"
            where: list[str] = []
            if exact_rows:
                if checks:
                    probe = " AND ".join([same, *checks])
                    where.append(f"EXISTS (SELECT 1 FROM {FHIR_RESOURCES} AS r WHERE {probe})")
            else:
                source += f" JOIN {FHIR_RESOURCES} AS r ON {same}"
                where += checks
            statement = f"SELECT {', '.join(selected) or '1'} FROM {source}"
            return statement + (f" WHERE {' AND '.join(where)}" if where else "")

        parts = [part(True)] + ([part(False)] if inexact else [])
        return " UNION ALL ".join(parts)

    def where(self, path: str, root: _Scope) -> str:
        compiled = self.path(path, root)
        inner = _unwrapped_bool(compiled)
        # Known boolean (a comparison, exists(), ...): plain SQL; else checked at run time.
        return (
            f"coalesce({inner}, false)"
            if inner is not None
            else f"hacs_views.where_true({compiled})"
        )


def typed_table(definition: ViewDefinition) -> str | None:
    """The typed table a flat view over a type with typed mappings reads, else None."""
    from hacs_persistence.storage.mapping import mapping_for, model_for

    flat = all(
        not (n.select or n.unionAll or n.repeat is not None)
        and n.forEach is None
        and n.forEachOrNull is None
        for n in definition.select
    )
    if not flat or typed_path(definition.resource, "id") is None:
        return None
    mapping = mapping_for(model_for(definition.resource))
    if not mapping.typed:
        return None
    return f"{quote(str(mapping.table.schema))}.{quote(mapping.table.name)}"


def _mapped(resource: str, column: Column) -> TypedPath | None:
    """The column's typed mapping, when its declared type is the typed column's kind."""
    typed = None if column.collection else typed_path(resource, column.path)
    if typed is None:
        return None
    text = _STRING_TYPES | _TEMPORAL_TYPES
    fits = column.type == "decimal" if typed.numeric else column.type in text
    return typed if fits else None


def _choice_element(node: Node) -> Member | None:
    """``value.ofType(Quantity)`` as the member ``valueQuantity`` (None if not a choice)."""
    if not (isinstance(node, Call) and node.name == "ofType" and isinstance(node.base, Member)):
        return None
    if node.base.name in _RESOURCE_CONTAINERS:
        return None
    type_name = _type_argument(node, required=True)
    assert type_name is not None
    return Member(node.base.base, node.base.name + type_name[0].upper() + type_name[1:])


def _unwrapped_bool(compiled: str) -> str | None:
    """X of ``hacs_views.bool(X)`` (truth(bool(X)) is X), or None for any other expression.

    Compiled SQL holds no quoted parentheses (values are bind parameters), so counting
    parentheses finds whether the opening one closes at the very end.
    """
    prefix = "hacs_views.bool("
    if not compiled.startswith(prefix) or not compiled.endswith(")"):
        return None
    depth = 0
    for position, char in enumerate(compiled[len(prefix) - 1 :], start=len(prefix) - 1):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return compiled[len(prefix) : -1] if position == len(compiled) - 1 else None
    return None


def _json_array(values: list[Any]) -> str:
    # Decimal literals keep their digits (json.dumps would need a float).
    parts = [str(v) if isinstance(v, Decimal) else json.dumps(v) for v in values]
    return "[" + ", ".join(parts) + "]"


def _arity(node: Call, count: int) -> None:
    if len(node.args) != count:
        raise ViewDefinitionError(
            f"FHIRPath {node.name}() takes {count} argument(s), got {len(node.args)}."
        )


def _type_argument(node: Call, *, required: bool) -> str | None:
    if not node.args and not required:
        return None
    if len(node.args) != 1 or not (
        isinstance(node.args[0], Member) and isinstance(node.args[0].base, This)
    ):
        raise ViewDefinitionError(f"FHIRPath {node.name}() takes one type name.")
    return node.args[0].name


def _type_test(element: str, type_name: str, compiler: _Compiler) -> str:
    if type_name in _STRING_TYPES or type_name in _TEMPORAL_TYPES:
        return f"jsonb_typeof({element}) = 'string'"
    if type_name == "boolean":
        return f"jsonb_typeof({element}) = 'boolean'"
    if type_name == "decimal":
        return f"jsonb_typeof({element}) = 'number'"
    if type_name in _INTEGER_TYPES:
        return f"jsonb_typeof({element}) = 'number' AND ({element} #>> '{{}}') ~ '^-?[0-9]+$'"
    return f"{element} ->> 'resourceType' = CAST({compiler.param(type_name)} AS text)"


def compile_view(
    definition: ViewDefinition | dict[str, Any] | str,
    *,
    audit_columns: bool = False,
    scoped: bool = False,
    typed: bool = True,
) -> CompiledView:
    """Compile a ViewDefinition (validated first) into one SELECT.

    ``audit_columns`` adds the resource and patient id of every row (for the audit row of a
    read); ``scoped`` adds ``r.patient_id = ANY(:allowed)`` (a patient-scoped actor's rows).
    ``typed=False`` reads every column from the FHIR JSON even where a typed column maps
    (rows written into ``fhir_resources`` by hand, as the SQL on FHIR suite's fixtures are).
    """
    parsed = ViewDefinition.parse(definition)
    return _Compiler(parsed).view(audit_columns, scoped, typed)
