"""``hacs_admin``: system configuration and token revocations (Alembic's version table too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Identity, func
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = ["ALEMBIC_VERSION_TABLE", "SystemConfigurationTable", "TokenRevocationTable"]

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


class TokenRevocationTable(Base):
    """Revoked access tokens: one token (``jti``), or an actor's tokens issued before a time.

    Verification reads this table (``hacs_persistence.access.revocations``); rows are only added, by
    ``revoke_token`` / ``revoke_actor`` (audited as ``token.revoke``).
    """

    __tablename__ = "token_revocations"
    __table_args__ = (
        # A row revokes either one token or the tokens of one actor, never both or neither.
        CheckConstraint("(jti IS NULL) <> (actor_id IS NULL)", name="one_subject"),
        CheckConstraint("(actor_id IS NULL) = (issued_before IS NULL)", name="actor_cutoff"),
        {"schema": "hacs_admin"},
    )

    id: Mapped[int] = mapped_column(Identity(always=True), primary_key=True)
    jti: Mapped[str | None] = mapped_column(unique=True)
    actor_id: Mapped[str | None] = mapped_column(index=True)
    issued_before: Mapped[datetime | None]
    revoked_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_by: Mapped[str]
    reason: Mapped[str | None]
