"""Embedding columns (pgvector) and their HNSW indexes.

The dimension is fixed when the schema is first migrated: 1536 unless ``HACS_VECTOR_DIM`` says
otherwise at that moment. The adapter reads the real dimension back from the column at start-up,
so models and database always agree.
"""

from __future__ import annotations

import os
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Index
from sqlalchemy.orm import MappedColumn

from hacs_persistence.errors import ConfigurationError
from hacs_persistence.schema.base import key_column
from hacs_persistence.schema.sources import attr

__all__ = [
    "DEFAULT_VECTOR_DIM",
    "MAX_VECTOR_DIM",
    "configured_vector_dim",
    "embedding_column",
    "hnsw_index",
]

DEFAULT_VECTOR_DIM = 1536
# pgvector's largest dimension for an HNSW index on a ``vector`` column.
MAX_VECTOR_DIM = 2000


def configured_vector_dim() -> int:
    """The dimension new schemas get: ``HACS_VECTOR_DIM`` or 1536.

    Raises:
        ConfigurationError: not an integer from 1 to :data:`MAX_VECTOR_DIM`.
    """
    raw = os.environ.get("HACS_VECTOR_DIM", "").strip()
    if not raw:
        return DEFAULT_VECTOR_DIM
    # The embedding columns get an HNSW index, which pgvector builds for at most 2,000
    # dimensions (a vector column itself holds 16,000): a larger value would fail mid-migration.
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_VECTOR_DIM:
        raise ConfigurationError(
            f"HACS_VECTOR_DIM must be a whole number from 1 to {MAX_VECTOR_DIM:,} (pgvector's "
            f"limit for an HNSW index), not {raw[:20]!r}: fix or unset it (default "
            f"{DEFAULT_VECTOR_DIM})."
        )
    return int(raw)


def _metadata_dim() -> int:
    # The tables are declared at import time; an invalid HACS_VECTOR_DIM must not make every
    # import fail with a traceback. The metadata then uses the default: the adapter reads the
    # real dimension from the database, and the migration and the CLI's configuration check
    # call configured_vector_dim() and report the setting.
    try:
        return configured_vector_dim()
    except ConfigurationError:
        return DEFAULT_VECTOR_DIM


def embedding_column() -> MappedColumn[Any]:
    """A nullable ``vector(dim)`` column filled from the resource's ``embedding``."""
    return key_column(attr("embedding"), type_=Vector(_metadata_dim()), nullable=True)


def hnsw_index(table: str) -> Index:
    """The cosine-distance HNSW index on ``embedding``."""
    return Index(
        f"ix_{table}_embedding_hnsw",
        "embedding",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def vector_columns(metadata: Any) -> list[Any]:
    """Every pgvector column in the metadata."""
    return [c for t in metadata.tables.values() for c in t.columns if isinstance(c.type, Vector)]


def apply_vector_dim(metadata: Any, dim: int) -> None:
    """Make the metadata's vector columns use ``dim`` (the dimension the database really has)."""
    for column in vector_columns(metadata):
        column.type = Vector(dim)
