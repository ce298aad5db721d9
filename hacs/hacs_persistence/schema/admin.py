"""``hacs_admin``: system configuration (Alembic's version table also lives in this schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Identity, func
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = ["ALEMBIC_VERSION_TABLE", "SystemConfigurationTable"]

ALEMBIC_VERSION_TABLE = "alembic_version"


class SystemConfigurationTable(Base):
    """Operational settings, one row per unique key."""

    __tablename__ = "system_configuration"
    __table_args__ = {"schema": "hacs_admin"}  # noqa: RUF012 (SQLAlchemy reads it as is)

    id: Mapped[int] = mapped_column(Identity(always=True), primary_key=True)
    key: Mapped[str] = mapped_column(unique=True)
    value: Mapped[dict[str, Any]]
    description: Mapped[str | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_by: Mapped[str | None]
