"""``public.hacs_resources``: the JSONB table for every resource type without a typed table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, func
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = ["ResourceDocumentTable"]


class ResourceDocumentTable(Base):
    """One row per (resource_type, id) with the current document inline."""

    __tablename__ = "hacs_resources"
    __table_args__ = (
        Index(
            "ix_hacs_resources_document",
            "document",
            postgresql_using="gin",
            postgresql_ops={"document": "jsonb_path_ops"},
        ),
        Index("ix_hacs_resources_updated_at", "updated_at"),
        {"schema": "public"},
    )

    resource_type: Mapped[str] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column()
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str | None]
    updated_by: Mapped[str | None]
    deleted_at: Mapped[datetime | None]

    __mapper_args__ = {  # noqa: RUF012 (SQLAlchemy reads it as is)
        "version_id_col": version,
        "version_id_generator": False,
    }
