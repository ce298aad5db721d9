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

from hacs_persistence.schema.base import key_column
from hacs_persistence.schema.sources import attr

__all__ = ["DEFAULT_VECTOR_DIM", "configured_vector_dim", "embedding_column", "hnsw_index"]

DEFAULT_VECTOR_DIM = 1536


def configured_vector_dim() -> int:
    """The dimension new schemas get: ``HACS_VECTOR_DIM`` or 1536."""
    raw = os.environ.get("HACS_VECTOR_DIM", "").strip()
    if not raw:
        return DEFAULT_VECTOR_DIM
    if not raw.isdigit() or not 1 <= int(raw) <= 16000:
        raise ValueError(f"HACS_VECTOR_DIM must be an integer from 1 to 16000, got {raw!r}")
    return int(raw)


def embedding_column() -> MappedColumn[Any]:
    """A nullable ``vector(dim)`` column filled from the resource's ``embedding``."""
    return key_column(attr("embedding"), type_=Vector(configured_vector_dim()), nullable=True)


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
