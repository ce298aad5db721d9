"""Limits on what callers may send, and the sizes of the caches: every bound in one place.

Each limit turns hostile or accidental input (a huge document, a deeply nested value, thousands
of filters) into a typed error before anything reaches PostgreSQL, instead of a
``RecursionError``, a driver error or unbounded memory. The values are documented in
``docs/configuration.md`` ("Limits"); only the document size is a setting.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from hacs_models import BaseResource
from hacs_persistence.errors import ResourceValidationError

__all__ = [
    "BULK_UPDATE_CHUNK",
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "IMPORT_BATCH_BYTES",
    "IMPORT_BATCH_ENTRIES",
    "MAPPING_CACHE_SIZE",
    "MAX_DOCUMENT_DEPTH",
    "MAX_FILTERS",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_VALUE_BYTES",
    "SEARCH_CACHE_SIZE",
    "STATEMENT_CACHE_SIZE",
    "check_document",
    "json_nesting_exceeds",
    "nesting_exceeds",
    "value_size_exceeds",
]

# Documents: the JSON of one resource. 16 MiB is far above any clinical resource (the largest of
# the shared FHIR data is under 1 MiB) and keeps one write's memory in the tens of MiB.
DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# Nesting of objects and arrays in a document. Well below the 254 levels at which pydantic's JSON
# parser refuses to read a stored document back (and Python's recursion limit), far above FHIR's
# real nesting (at most 21 levels in the shared test data).
MAX_DOCUMENT_DEPTH = 100

# Searches: how many filters, and how deep and how large one filter value may be.
MAX_FILTERS = 64
MAX_FILTER_DEPTH = 16
MAX_FILTER_VALUE_BYTES = 64 * 1024

# FHIR import: entries are parsed, converted and written in batches of at most this many entries
# or bytes of source text (whichever comes first), so memory does not grow with the file.
IMPORT_BATCH_ENTRIES = 500
IMPORT_BATCH_BYTES = 4 * 1024 * 1024

# Rows of one set-based update statement of save_many: large enough that a round trip and its
# planning are nothing per row, small enough that one statement's arrays stay a few MB.
BULK_UPDATE_CHUNK = 5000

# Caches (least recently used entries are dropped). A search statement and its compiled form take
# about 22 KB per filter shape; statements per storage mapping are a few per type.
SEARCH_CACHE_SIZE = 128
STATEMENT_CACHE_SIZE = 1024
MAPPING_CACHE_SIZE = 512


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects/arrays (dicts, lists, tuples, pydantic models) nest deeper than ``limit``.

    Iterative, so a value nested a million levels deep is measured without recursion; it stops
    at the first container beyond the limit. A walk in Python: for small values (filters).
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in _children(node):
            if isinstance(child, (dict, list, tuple, BaseModel)):
                stack.append((child, depth + 1))
    return False


def _children(node: Any) -> Any:
    if isinstance(node, dict):
        return node.values()
    if isinstance(node, BaseModel):
        extra = node.__pydantic_extra__
        values = list(node.__dict__.values())
        return values + list(extra.values()) if extra else values
    if isinstance(node, (list, tuple)):
        return node
    return ()


# JSON strings (with their escapes), the bytes that open and close a level, and everything else.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LEVEL_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def json_nesting_exceeds(text: bytes, limit: int) -> bool:
    """Whether JSON text nests objects and arrays deeper than ``limit``, without parsing it.

    Linear and in C: fewer than ``limit`` opening brackets cannot be too deep (most resources
    stop there); otherwise strings are removed, the brackets become +1/-1 steps and the running
    sum is the depth. Run before ``json.loads`` (which would raise ``RecursionError`` past about
    a thousand levels) and on the JSON of every document written.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    steps = _JSON_STRING.sub(b"", text).translate(_LEVEL_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


def value_size_exceeds(value: Any, limit: int) -> bool:
    """Whether a JSON-like value is larger than about ``limit`` bytes (strings by length).

    Iterative and stops as soon as the limit is passed; call it after ``nesting_exceeds``.
    """
    total = 0
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, (str, bytes)):
            total += len(node) + 2
        elif isinstance(node, dict):
            total += 2
            for key, child in node.items():
                total += len(key) + 3 if isinstance(key, str) else 8
                stack.append(child)
        elif isinstance(node, (list, tuple)):
            total += 2
            stack.extend(node)
        else:
            total += 8
        if total > limit:
            return True
    return False


def check_document(resource: BaseResource, max_bytes: int) -> None:
    """Refuse a resource whose document is larger than ``max_bytes`` or nested too deeply.

    Every write path (save, update, save_many, and so imports and tools) calls this before any
    statement is sent. Both are measured on the document's JSON (a few microseconds for a
    typical resource), which is then dropped. Messages name the limit, never the content.
    """
    where = f"{resource.resource_type} resource"
    too_deep = (
        f"The {where} nests objects and arrays deeper than {MAX_DOCUMENT_DEPTH} levels "
        "(hacs_persistence.limits.MAX_DOCUMENT_DEPTH); flatten it before saving."
    )
    try:
        document = resource.__pydantic_serializer__.to_json(resource)
    except PydanticSerializationError as exc:
        # pydantic stops at 255 levels, far beyond the limit.
        if "depth" in str(exc):
            raise ResourceValidationError(too_deep) from None
        raise ResourceValidationError(
            f"The {where} cannot be serialised to JSON; check its values."
        ) from None
    if len(document) > max_bytes:
        raise ResourceValidationError(
            f"The {where} is {len(document)} bytes as JSON, more than the limit of {max_bytes} "
            "bytes (setting max_document_bytes, HACS_DB_MAX_DOCUMENT_BYTES); store large "
            "content elsewhere and reference it, or raise the limit."
        )
    if json_nesting_exceeds(document, MAX_DOCUMENT_DEPTH):
        raise ResourceValidationError(too_deep)
