"""The columns every resource write fills, named once: the envelope, the version row, the audit row.

The statements (``statements``) and the COPY records (``codec``) both take these tuples and match
each value to its column by name, so the order of a tuple decides nothing but the order the SQL
lists the columns in. Both read them at build time (``columns.ENVELOPE_COLUMNS``, not a copy
imported at load time), so a test can reorder a tuple and rebuild them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_PARAM_OF",
    "ENVELOPE_COLUMNS",
    "ENVELOPE_FIELDS",
    "STAMP_FIELDS",
    "VERSION_COLUMNS",
    "by_name",
    "key_param",
]

T = TypeVar("T")

# The columns of every resource row (typed table or the JSONB table) that are not its content.
ENVELOPE_COLUMNS = (
    "id",
    "resource_type",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
)
# A row of hacs_core.resource_versions (and of the JSONB table's history).
VERSION_COLUMNS = (
    "resource_type",
    "id",
    "version",
    "operation",
    "document",
    "changed_at",
    "changed_by",
)
# What every write's audit row fills (searches add detail, resource_ids and patient_ids).
AUDIT_COLUMNS = (
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "result_count",
    "request_id",
    "purpose_of_use",
)
# The audit columns that come from the caller's ``a_*`` parameters (``access.audit``), by name.
AUDIT_PARAM_OF = {
    "actor_id": "a_actor_id",
    "actor_name": "a_actor_name",
    "actor_role": "a_actor_role",
    "action": "a_action",
    "request_id": "a_request_id",
    "purpose_of_use": "a_purpose",
}

# What the database decides on a write and the saved model takes from it. The names are both
# the model's fields and the row's columns, and the keys the statements stamp into the stored
# document (so comparing documents leaves them out).
STAMP_FIELDS = ("version", "created_at", "updated_at")
# The fields a write may change on the model it saves (a generated id can be drawn again).
ENVELOPE_FIELDS = ("id", *STAMP_FIELDS)


def key_param(key: str) -> str:
    """The bound parameter that carries the value of key column ``key`` in a write."""
    return f"k_{key}"


def by_name(columns: Sequence[str], values: Mapping[str, T], what: str) -> dict[str, T]:
    """``values`` in the order of ``columns``; every column needs a value and every value a column.

    The check runs when a statement or a record layout is built (once per table), so a column
    added to a tuple without a value (or the reverse) fails at once, naming both sides.
    """
    if len(columns) != len(values) or set(columns) != values.keys():
        missing = sorted(set(columns) - values.keys())
        unknown = sorted(values.keys() - set(columns))
        raise RuntimeError(
            f"{what}: the columns and their values do not match (no value for {missing}, "
            f"no column for {unknown}); fix hacs_persistence.storage.columns."
        )
    return {name: values[name] for name in columns}
