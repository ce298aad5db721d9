"""Search: filters on an allow-list of columns, documented operators, keyset pagination.

Filter keys are ``field`` (equality) or ``field__op`` with ``op`` one of ``eq``, ``ne``, ``lt``,
``lte``, ``gt``, ``gte``, ``in``, ``prefix`` (strings) and ``contains`` (array columns such as
``tags``). Fields are the typed table's key columns plus ``id``, ``created_at``, ``updated_at`` and
``version``. Types without a typed table filter on top-level document elements by containment
(equality only). Anything else is rejected with ``InvalidQueryError``; no key ever reaches SQL.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    FromClause,
    Select,
    Text,
    and_,
    cast,
    or_,
    select,
)

from hacs_persistence.errors import InvalidQueryError
from hacs_persistence.mapping import ResourceMapping
from hacs_persistence.schema import ResourceVersionTable

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "OPERATORS",
    "Page",
    "build_search",
    "build_similarity",
]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix", "contains")
_DOCUMENT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_IN = 1000
VERSIONS = ResourceVersionTable.__table__


@dataclass
class Page(Generic[T]):
    """One page of search results and the cursor of the next page (None on the last page)."""

    items: list[T]
    next_cursor: str | None = None
    order_by: str = "id"
    filters: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


def _python_type(column: Column[Any]) -> type:
    try:
        return column.type.python_type
    except NotImplementedError:
        return str


def _coerce(column: Column[Any], value: Any, key: str) -> Any:
    """Check and convert a filter value to the column's Python type."""
    if value is None:
        raise InvalidQueryError(f"Filter {key!r}: None is not a value; use another operator.")
    target = _python_type(column)
    try:
        if target is str:
            if not isinstance(value, str):
                raise TypeError("expected a string")
            if "\x00" in value:
                raise ValueError("strings cannot contain NUL characters")
            return value
        if target is bool:
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if target is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("expected an integer")
            return value
        if target is Decimal:
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return Decimal(str(value))
        if target is datetime:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            if not isinstance(parsed, datetime):
                raise TypeError("expected a datetime")
            if parsed.tzinfo is None:
                parsed = parsed.astimezone()
            return parsed
        if target is date:
            if isinstance(value, datetime):
                raise TypeError("expected a date, not a datetime")
            parsed_date = date.fromisoformat(value) if isinstance(value, str) else value
            if not isinstance(parsed_date, date):
                raise TypeError("expected a date")
            return parsed_date
        if target is list:
            return _coerce_text(value, key)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise InvalidQueryError(f"Filter {key!r}: {exc} (got {type(value).__name__}).") from None
    raise InvalidQueryError(f"Filter {key!r}: this column cannot be filtered.")


def _coerce_text(value: Any, key: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidQueryError(f"Filter {key!r}: expected a string without NUL characters.")
    return value


def _condition(column: Column[Any], op: str, value: Any, key: str) -> ColumnElement[bool]:
    is_array = isinstance(column.type, ARRAY)
    if is_array and op not in ("contains",):
        raise InvalidQueryError(f"Filter {key!r}: array columns support only 'contains'.")
    if op == "contains":
        if not is_array:
            raise InvalidQueryError(f"Filter {key!r}: 'contains' works on array columns only.")
        items = value if isinstance(value, list) else [value]
        return column.contains([_coerce_text(v, key) for v in items])
    if op == "in":
        if not isinstance(value, (list, tuple, set, frozenset)) or not value:
            raise InvalidQueryError(f"Filter {key!r}: 'in' takes a non-empty list.")
        if len(value) > _MAX_IN:
            raise InvalidQueryError(f"Filter {key!r}: at most {_MAX_IN} values for 'in'.")
        return column.in_([_coerce(column, v, key) for v in value])
    if op == "prefix":
        if _python_type(column) is not str:
            raise InvalidQueryError(f"Filter {key!r}: 'prefix' works on text columns only.")
        prefix = _coerce(column, value, key)
        # startswith(autoescape) binds the value and escapes % and _ inside it.
        return column.startswith(prefix, autoescape=True)
    coerced = _coerce(column, value, key)
    comparisons: dict[str, ColumnElement[bool]] = {
        "eq": column == coerced,
        "ne": column != coerced,
        "lt": column < coerced,
        "lte": column <= coerced,
        "gt": column > coerced,
        "gte": column >= coerced,
    }
    return comparisons[op]


def _split_key(key: Any) -> tuple[str, str]:
    if not isinstance(key, str):
        raise InvalidQueryError(f"Filter keys must be strings, got {type(key).__name__}.")
    name, sep, op = key.partition("__")
    op = op if sep else "eq"
    if op not in OPERATORS:
        raise InvalidQueryError(
            f"Unknown operator {op!r} in filter {key!r}; use one of {', '.join(OPERATORS)}."
        )
    return name, op


def _typed_conditions(
    mapping: ResourceMapping, filters: Mapping[str, Any]
) -> list[ColumnElement[bool]]:
    allowed = mapping.filterable
    conditions = []
    for key, value in filters.items():
        name, op = _split_key(key)
        column = allowed.get(name)
        if column is None:
            raise InvalidQueryError(
                f"Unknown filter field {name!r} for {mapping.resource_type}; filterable fields: "
                f"{', '.join(sorted(allowed))}."
            )
        conditions.append(_condition(column, op, value, key))
    return conditions


def _document_conditions(
    mapping: ResourceMapping, filters: Mapping[str, Any]
) -> list[ColumnElement[bool]]:
    allowed = mapping.filterable
    document = mapping.table.c.document
    conditions = []
    for key, value in filters.items():
        name, op = _split_key(key)
        if name in allowed:
            conditions.append(_condition(allowed[name], op, value, key))
            continue
        if op != "eq" or not _DOCUMENT_KEY.match(name):
            raise InvalidQueryError(
                f"Filter {key!r}: {mapping.resource_type} has no typed table, so it filters only "
                "on top-level elements (snake_case names) by equality."
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise InvalidQueryError(f"Filter {key!r}: the value must be JSON.") from None
        if "\\u0000" in json.dumps(value):
            raise InvalidQueryError(f"Filter {key!r}: values cannot contain NUL characters.")
        conditions.append(document.contains({name: value}))
    return conditions


def _encode_cursor(order_by: str, value: Any, resource_id: str) -> str:
    if isinstance(value, (datetime, date)):
        encoded: Any = value.isoformat()
    elif isinstance(value, Decimal):
        encoded = str(value)
    else:
        encoded = value
    raw = json.dumps([order_by, encoded, value is None, resource_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, order_by: str, column: Column[Any]) -> tuple[Any, bool, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, is_null, resource_id = json.loads(base64.urlsafe_b64decode(padded))
        if name != order_by or not isinstance(resource_id, str):
            raise ValueError
        if not is_null:
            value = _coerce(column, value, "cursor")
    except (ValueError, TypeError, InvalidQueryError):
        raise InvalidQueryError(
            "Invalid cursor: pass back the next_cursor of a search with the same order_by."
        ) from None
    return value, bool(is_null), resource_id


@dataclass(frozen=True)
class SearchPlan:
    """A compiled search: the statement and how to read its rows into the next cursor."""

    statement: Select[Any]
    order_by: str
    limit: int


def build_search(
    mapping: ResourceMapping,
    filters: Mapping[str, Any] | None,
    order_by: str | None,
    limit: int | None,
    cursor: str | None,
    patient_ids: Sequence[str] | None = None,
) -> SearchPlan:
    """Build the keyset-paginated search statement; rows are (document, sort value, id)."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidQueryError("filters must be a mapping of field (or field__op) to value.")
    filters = filters or {}
    if limit is None:
        limit = DEFAULT_PAGE_SIZE
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}.")
    order = order_by or "id"
    if not isinstance(order, str):
        raise InvalidQueryError("order_by must be a field name, optionally prefixed with '-'.")
    descending = order.startswith("-")
    sort_name = order.removeprefix("-")
    table = mapping.table
    sortable = mapping.filterable
    sort_col = sortable.get(sort_name)
    if sort_col is None or isinstance(sort_col.type, ARRAY):
        raise InvalidQueryError(
            f"Unknown sort field {sort_name!r} for {mapping.resource_type}; sortable fields: "
            f"{', '.join(sorted(n for n, c in sortable.items() if not isinstance(c.type, ARRAY)))}."
        )
    source: FromClause
    if mapping.typed:
        conditions = _typed_conditions(mapping, filters)
        document = cast(VERSIONS.c.document, Text)
        source = table.join(
            VERSIONS,
            and_(
                VERSIONS.c.resource_type == table.c.resource_type,
                VERSIONS.c.id == table.c.id,
                VERSIONS.c.version == table.c.version,
            ),
        )
    else:
        conditions = _document_conditions(mapping, filters)
        document = cast(table.c.document, Text)
        source = table
    conditions.append(table.c.resource_type == mapping.resource_type)
    conditions.append(table.c.deleted_at.is_(None))
    if patient_ids is not None and "patient_id" in table.c:
        conditions.append(table.c.patient_id.in_(list(patient_ids)))
    if cursor is not None:
        if not isinstance(cursor, str):
            raise InvalidQueryError("cursor must be the string a previous search returned.")
        value, was_null, last_id = _decode_cursor(cursor, order, sort_col)
        if was_null:
            conditions.append(and_(sort_col.is_(None), table.c.id > last_id))
        else:
            beyond = sort_col < value if descending else sort_col > value
            conditions.append(
                or_(beyond, and_(sort_col == value, table.c.id > last_id), sort_col.is_(None))
            )
    sort_expr = sort_col.desc().nulls_last() if descending else sort_col.asc().nulls_last()
    statement = (
        select(document.label("document"), sort_col.label("sort_value"), table.c.id)
        .select_from(source)
        .where(*conditions)
        .order_by(sort_expr, table.c.id.asc())
        .limit(limit + 1)
    )
    return SearchPlan(statement, order, limit)


def next_cursor(plan: SearchPlan, rows: Sequence[Any]) -> str | None:
    """The cursor after the last row of this page, if there is a next page."""
    if len(rows) <= plan.limit:
        return None
    last = rows[plan.limit - 1]
    return _encode_cursor(plan.order_by, last.sort_value, last.id)


def build_similarity(
    mapping: ResourceMapping,
    vector: Sequence[float],
    k: int,
    filters: Mapping[str, Any] | None,
    dim: int | None,
) -> Select[Any]:
    """Nearest resources by cosine distance (HNSW index), with the ordinary filters in SQL."""
    table = mapping.table
    if "embedding" not in table.c:
        raise InvalidQueryError(f"{mapping.resource_type} has no embedding to search.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"k must be an integer from 1 to {MAX_PAGE_SIZE}.")
    try:
        values = [float(v) for v in vector]
    except (TypeError, ValueError):
        raise InvalidQueryError("vector must be a sequence of numbers.") from None
    if dim is not None and len(values) != dim:
        raise InvalidQueryError(f"vector has {len(values)} dimensions; the database has {dim}.")
    conditions = _typed_conditions(mapping, filters or {})
    distance = table.c.embedding.cosine_distance(values).label("distance")
    # Inner query: what the HNSW index returns (relaxed order with iterative scans); the outer
    # query restores the exact order of those k rows.
    nearest = (
        select(table.c.id, table.c.resource_type, table.c.version, distance)
        .where(
            table.c.resource_type == mapping.resource_type,
            table.c.deleted_at.is_(None),
            table.c.embedding.is_not(None),
            *conditions,
        )
        .order_by(distance)
        .limit(k)
        .cte("nearest")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return (
        select(cast(VERSIONS.c.document, Text).label("document"), nearest.c.distance)
        .select_from(
            nearest.join(
                VERSIONS,
                and_(
                    VERSIONS.c.resource_type == nearest.c.resource_type,
                    VERSIONS.c.id == nearest.c.id,
                    VERSIONS.c.version == nearest.c.version,
                ),
            )
        )
        .order_by(nearest.c.distance, nearest.c.id)
    )
