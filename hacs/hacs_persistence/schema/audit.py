"""``hacs_audit``: the append-only audit trail (triggers in the migration reject changes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = ["AUDIT_OUTCOMES", "AuditEventTable"]

AUDIT_OUTCOMES = ("success", "denied", "not_found", "conflict", "invalid", "error")


class AuditEventTable(Base):
    """Who did what to which resource, when, and how it ended. Never resource content or PHI."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{o}'" for o in AUDIT_OUTCOMES) + ")", name="outcome"
        ),
        Index("ix_audit_events_resource", "resource_type", "resource_id"),
        # "Who saw patient X's record": reads list the patients whose data they returned.
        Index("ix_audit_events_patient_ids", "patient_ids", postgresql_using="gin"),
        {"schema": "hacs_audit"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    actor_id: Mapped[str | None] = mapped_column(index=True)
    actor_name: Mapped[str | None]
    actor_role: Mapped[str | None]
    action: Mapped[str]
    resource_type: Mapped[str | None]
    resource_id: Mapped[str | None]
    outcome: Mapped[str]
    result_count: Mapped[int | None]
    detail: Mapped[str | None]
    request_id: Mapped[str | None]
    purpose_of_use: Mapped[str | None]
    # Reads: the ids returned (at most hacs_persistence.gate.AUDIT_ID_LIMIT; past it, the count
    # and a digest in ``detail``) and the patients whose data they returned.
    resource_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    patient_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
