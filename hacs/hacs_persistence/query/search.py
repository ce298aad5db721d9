"""Search: filters on an allow-list of columns, documented operators, keyset pagination.

Filter keys are ``field`` (equality) or ``field__op`` with ``op`` one of ``eq``, ``ne``, ``lt``,
``lte``, ``gt``, ``gte``, ``in``, ``prefix`` (strings) and ``contains`` (array columns such as
``tags``). Fields are the typed table's key columns plus ``id``, ``created_at``, ``updated_at`` and
``version``. Types without a typed table filter on top-level document elements by containment
(equality only). Anything else is rejected with ``InvalidQueryError``; no key ever reaches SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from hacs_persistence.errors import InvalidQueryError
from hacs_persistence.limits import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_VALUE_BYTES,
    MAX_FILTERS,
    SEARCH_CACHE_SIZE,
    nesting_exceeds,
    value_size_exceeds,
)
from hacs_persistence.query.cursors import check_cursor_key, open_cursor, query_binding, seal_cursor
from hacs_persistence.storage.mapping import ResourceMapping
from hacs_persistence.storage.statements import (
    counted_audit,
    current_documents,
    patient_ref,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "OPERATORS",
    "Page",
    "build_search",
]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix", "contains")
_DOCUMENT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_IN = 1000


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


class _OwnReason(TypeError):
    """A reason worded here, safe to show (it never quotes the value)."""


_EXPECTED: dict[type, str] = {
    Decimal: "expected a number",
    datetime: "expected an ISO 8601 datetime",
    date: "expected an ISO 8601 date (YYYY-MM-DD)",
}


def _coerce(column: Column[Any], value: Any, key: str) -> Any:
    """Check and convert a filter value to the column's Python type."""
    if value is None:
        raise InvalidQueryError(f"Filter {key!r}: None is not a value; use another operator.")
    target = _python_type(column)
    try:
        if target is str:
            if not isinstance(value, str):
                raise _OwnReason("expected a string")
            if "\x00" in value:
                raise _OwnReason("strings cannot contain NUL characters")
            return value
        if target is bool:
            if not isinstance(value, bool):
                raise _OwnReason("expected true or false")
            return value
        if target is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _OwnReason("expected an integer")
            return value
        if target is Decimal:
            if isinstance(value, bool):
                raise _OwnReason("expected a number")
            return Decimal(str(value))
        if target is datetime:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            if not isinstance(parsed, datetime):
                raise _OwnReason("expected a datetime")
            if parsed.tzinfo is None:
                parsed = parsed.astimezone()
            return parsed
        if target is date:
            if isinstance(value, datetime):
                raise _OwnReason("expected a date, not a datetime")
            parsed_date = date.fromisoformat(value) if isinstance(value, str) else value
            if not isinstance(parsed_date, date):
                raise _OwnReason("expected a date")
            return parsed_date
        if target is list:
            return _coerce_text(value, key)
    except (TypeError, ValueError, InvalidOperation) as exc:
        # Only our own messages are shown: a parser's (fromisoformat, Decimal) quotes the value.
        reason = str(exc) if isinstance(exc, _OwnReason) else _EXPECTED.get(target, "invalid")
        raise InvalidQueryError(
            f"Filter {key!r}: {reason} (got a {type(value).__name__}; the value is not shown)."
        ) from None
    raise InvalidQueryError(f"Filter {key!r}: this column cannot be filtered.")


def _coerce_text(value: Any, key: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidQueryError(f"Filter {key!r}: expected a string without NUL characters.")
    return value


# A filter after validation: which column (or document element) and operator, and its value.
# The statement depends only on the shape (column, operator), so it is built once per shape and
# the values travel as bound parameters.
FilterShape = tuple[tuple[str, str], ...]


def describe_shape(shape: FilterShape, order_by: str | None = None, scoped: bool = False) -> str:
    """What a query asked, for its audit row: field names and operators, never the values.

    ``filters=family_name:prefix,gender:eq;order_by=-birth_date;scope=patients``
    """
    parts = ["filters=" + ",".join(f"{name}:{op}" for name, op in shape)]
    if order_by is not None:
        parts.append(f"order_by={order_by}")
    if scoped:
        parts.append("scope=patients")
    return ";".join(parts)


def _check_value(column: Column[Any], op: str, value: Any, key: str) -> Any:
    """Validate and convert a filter value for ``op`` on ``column``."""
    is_array = isinstance(column.type, ARRAY)
    if is_array and op != "contains":
        raise InvalidQueryError(f"Filter {key!r}: array columns support only 'contains'.")
    if op == "contains":
        if not is_array:
            raise InvalidQueryError(f"Filter {key!r}: 'contains' works on array columns only.")
        items = value if isinstance(value, list) else [value]
        return [_coerce_text(v, key) for v in items]
    if op == "in":
        if not isinstance(value, (list, tuple, set, frozenset)) or not value:
            raise InvalidQueryError(f"Filter {key!r}: 'in' takes a non-empty list.")
        if len(value) > _MAX_IN:
            raise InvalidQueryError(f"Filter {key!r}: at most {_MAX_IN} values for 'in'.")
        return [_coerce(column, v, key) for v in value]
    if op == "prefix":
        if _python_type(column) is not str:
            raise InvalidQueryError(f"Filter {key!r}: 'prefix' works on text columns only.")
        prefix = _coerce(column, value, key)
        # LIKE with the value's own wildcards escaped: a prefix is matched literally.
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped + "%"
    return _coerce(column, value, key)


def _condition(column: Column[Any], op: str, name: str) -> ColumnElement[bool]:
    """The SQL condition of one filter shape, its value bound as parameter ``name``."""
    if op == "contains":
        return column.contains(bindparam(name, type_=column.type))
    if op == "in":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    if op == "prefix":
        return column.like(bindparam(name, type_=Text), escape="\\")
    value = bindparam(name, type_=column.type)
    comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: column == value,
        "ne": lambda: column != value,
        "lt": lambda: column < value,
        "lte": lambda: column <= value,
        "gt": lambda: column > value,
        "gte": lambda: column >= value,
    }
    return comparisons[op]()


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


_DOCUMENT_OP = "document"


def parse_filters(
    mapping: ResourceMapping, filters: Mapping[str, Any] | None
) -> tuple[FilterShape, dict[str, Any]]:
    """Validate filters against the allow-list: their shape and their bound values."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidQueryError("filters must be a mapping of field (or field__op) to value.")
    if filters is not None and len(filters) > MAX_FILTERS:
        raise InvalidQueryError(
            f"{len(filters)} filters: at most {MAX_FILTERS} are accepted "
            "(hacs_persistence.limits.MAX_FILTERS); narrow the search or use 'in'."
        )
    allowed = mapping.filterable
    shape: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        name, op = _split_key(key)
        _check_limits(value, key)
        param = f"f{len(shape)}"
        column = allowed.get(name)
        if column is not None:
            values[param] = _check_value(column, op, value, key)
            shape.append((name, op))
            continue
        if mapping.typed:
            raise InvalidQueryError(
                f"Unknown filter field {name!r} for {mapping.resource_type}; filterable fields: "
                f"{', '.join(sorted(allowed))}."
            )
        if op != "eq" or not _DOCUMENT_KEY.match(name):
            raise InvalidQueryError(
                f"Filter {key!r}: {mapping.resource_type} has no typed table, so it filters only "
                "on top-level elements (snake_case names) by equality."
            )
        try:
            encoded = json.dumps({name: value})
        except (TypeError, ValueError):
            raise InvalidQueryError(f"Filter {key!r}: the value must be JSON.") from None
        if "\\u0000" in encoded:
            raise InvalidQueryError(f"Filter {key!r}: values cannot contain NUL characters.")
        values[param] = encoded
        shape.append((name, _DOCUMENT_OP))
    return tuple(shape), values


def _check_limits(value: Any, key: str) -> None:
    """Refuse a filter value nested too deeply or too large, before it is encoded or sent."""
    if nesting_exceeds(value, MAX_FILTER_DEPTH):
        raise InvalidQueryError(
            f"Filter {key!r}: the value nests deeper than {MAX_FILTER_DEPTH} levels "
            "(hacs_persistence.limits.MAX_FILTER_DEPTH); filter on a simpler value."
        )
    if value_size_exceeds(value, MAX_FILTER_VALUE_BYTES):
        raise InvalidQueryError(
            f"Filter {key!r}: the value is larger than {MAX_FILTER_VALUE_BYTES} bytes "
            "(hacs_persistence.limits.MAX_FILTER_VALUE_BYTES); filter on a smaller value."
        )


def _conditions(mapping: ResourceMapping, shape: FilterShape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for index, (name, op) in enumerate(shape):
        param = f"f{index}"
        if op == _DOCUMENT_OP:
            document = mapping.table.c.document
            conditions.append(document.op("@>")(cast(bindparam(param, type_=Text), JSONB)))
        else:
            conditions.append(_condition(mapping.filterable[name], op, param))
    return conditions


def _encode_cursor(order_by: str, value: Any, resource_id: str, binding: bytes) -> str:
    if isinstance(value, (datetime, date)):
        encoded: Any = value.isoformat()
    elif isinstance(value, Decimal):
        encoded = str(value)
    else:
        encoded = value
    # Sealed, not encoded: the last row's sort value is patient data (a name, a birth date).
    return seal_cursor([order_by, encoded, value is None, resource_id], binding)


def _decode_cursor(
    cursor: str, order_by: str, column: Column[Any], binding: bytes
) -> tuple[Any, bool, str]:
    payload = open_cursor(cursor, binding)
    try:
        name, value, is_null, resource_id = payload
        if name != order_by or not isinstance(resource_id, str) or not isinstance(is_null, bool):
            raise ValueError
        if not is_null:
            value = _coerce(column, value, "cursor")
    except (ValueError, TypeError, InvalidQueryError):
        raise InvalidQueryError(
            "Invalid cursor: pass back the next_cursor of the same search (same filters and "
            "order_by)."
        ) from None
    return value, is_null, resource_id


@dataclass(frozen=True)
class SearchPlan:
    """A search ready to run: its cached statement, parameters, and how to page on."""

    statement: Select[Any]
    params: dict[str, Any]
    order_by: str
    limit: int
    # The authenticated data of this search's cursors (see hacs_persistence.query.cursors).
    binding: bytes = b""


def _sort_column(mapping: ResourceMapping, sort_name: str) -> Column[Any]:
    sortable = mapping.filterable
    column = sortable.get(sort_name)
    if column is None or isinstance(column.type, ARRAY):
        names = sorted(n for n, c in sortable.items() if not isinstance(c.type, ARRAY))
        raise InvalidQueryError(
            f"Unknown sort field {sort_name!r} for {mapping.resource_type}; sortable fields: "
            f"{', '.join(names)}."
        )
    return column


# Bounded: every new filter shape builds a statement (about 22 KB with its compiled form).
@lru_cache(maxsize=SEARCH_CACHE_SIZE)
def _search_statement(
    mapping: ResourceMapping,
    shape: FilterShape,
    sort_name: str,
    descending: bool,
    cursor_state: str | None,
    patient_scoped: bool,
    audited: bool = True,
) -> Select[Any]:
    table = mapping.table
    sort_col = mapping.filterable[sort_name]
    conditions = _conditions(mapping, shape)
    source, stored = current_documents(mapping)
    document = cast(stored, Text)
    conditions.append(table.c.resource_type == bindparam("p_rt", type_=Text))
    conditions.append(table.c.deleted_at.is_(None))
    if patient_scoped and mapping.scope_column is not None:
        conditions.append(mapping.scope_column == any_(bindparam("p_patients", type_=ARRAY(Text))))
    last_id = bindparam("c_id", type_=Text)
    if cursor_state == "null":
        conditions.append(and_(sort_col.is_(None), table.c.id > last_id))
    elif cursor_state == "value":
        value = bindparam("c_value", type_=sort_col.type)
        beyond = sort_col < value if descending else sort_col > value
        conditions.append(
            or_(beyond, and_(sort_col == value, table.c.id > last_id), sort_col.is_(None))
        )
    sort_expr = sort_col.desc().nulls_last() if descending else sort_col.asc().nulls_last()
    page = (
        select(
            document.label("document"),
            sort_col.label("sort_value"),
            table.c.id,
            patient_ref(mapping),
        )
        .select_from(source)
        .where(*conditions)
        .order_by(sort_expr, table.c.id.asc())
        .limit(bindparam("p_limit", type_=Integer))
        .cte("page")
    )
    order = _page_order(page, descending)
    result = select(page.c.document, page.c.sort_value, page.c.id, page.c.patient_ref).order_by(
        *order
    )
    if not audited:
        return result
    # The audit row is written by the same statement (one round trip): the rows of the page,
    # without the extra row fetched to know whether a next page exists.
    return result.add_cte(counted_audit(page, bindparam("p_limit", type_=Integer) - 1, order))


def _page_order(page: Any, descending: bool) -> tuple[Any, Any]:
    value = page.c.sort_value.desc() if descending else page.c.sort_value.asc()
    return (value.nulls_last(), page.c.id.asc())


def build_search(
    mapping: ResourceMapping,
    filters: Mapping[str, Any] | None,
    order_by: str | None,
    limit: int | None,
    cursor: str | None,
    patient_ids: Sequence[str] | None = None,
    *,
    audited: bool = True,
) -> SearchPlan:
    """Validate a search and pick its statement; rows are (document, sort_value, id).

    ``audited``: the statement writes its own audit row (``p_detail`` holds the query shape);
    without it the caller writes that row.
    """
    shape, params = parse_filters(mapping, filters)
    if limit is None:
        limit = DEFAULT_PAGE_SIZE
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}.")
    order = order_by or "id"
    if not isinstance(order, str):
        raise InvalidQueryError("order_by must be a field name, optionally prefixed with '-'.")
    descending = order.startswith("-")
    sort_name = order.removeprefix("-")
    sort_col = _sort_column(mapping, sort_name)
    scoped = patient_ids is not None
    check_cursor_key()  # a bad HACS_CURSOR_SECRET fails here, not after the page was read
    binding = query_binding(mapping.resource_type, describe_shape(shape, order, scoped), params)
    cursor_state = None
    if cursor is not None:
        if not isinstance(cursor, str):
            raise InvalidQueryError("cursor must be the string a previous search returned.")
        value, was_null, last_id = _decode_cursor(cursor, order, sort_col, binding)
        cursor_state = "null" if was_null else "value"
        params.update(c_id=last_id, c_value=value)
    if scoped:
        params["p_patients"] = list(patient_ids or ())
    params.update(
        p_rt=mapping.resource_type,
        p_limit=limit + 1,
        p_detail=describe_shape(shape, order, scoped),
    )
    statement = _search_statement(
        mapping, shape, sort_name, descending, cursor_state, scoped, audited
    )
    return SearchPlan(statement, params, order, limit, binding)


def next_cursor(plan: SearchPlan, rows: Sequence[Any]) -> str | None:
    """The cursor after the last row of this page, if there is a next page."""
    if len(rows) <= plan.limit:
        return None
    last = rows[plan.limit - 1]
    return _encode_cursor(plan.order_by, last["sort_value"], last["id"], plan.binding)
