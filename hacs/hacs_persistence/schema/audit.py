"""``hacs_audit``: the append-only audit trail, its seals, and what lets rows leave it.

Triggers (revisions 0001, 0003, 0006) reject changes to ``audit_events``, which revision 0012
partitions by UTC month of ``occurred_at`` (``audit_events_y2026m12``, and ``audit_events_default``
for any month not created yet; ``hacs db maintain`` creates them ahead, see
hacs_persistence.ops.partitions). The partitions are not in this metadata: Alembic's comparison
skips them (``is_audit_partition``). The other tables belong to the schema owner alone (no role
is granted anything on them):

* ``transaction_grants``: what the owner's ``SECURITY DEFINER`` functions (retention, purge,
  moving rows out of the DEFAULT partition) allow their own transaction to remove, keyed by its
  transaction id and gone before they return;
* ``audit_retention_runs``: the cutoff of every retention run, so a verification can tell rows
  aged out from rows deleted;
* ``audit_seals`` and ``audit_sealed_rows``: the hash chain of ``hacs audit seal``
  (hacs_persistence.ops.audit_seal) and the hash of every row it sealed.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hacs_persistence.schema.base import Base

__all__ = [
    "AUDIT_OUTCOMES",
    "AUDIT_PARTITION_PREFIX",
    "GRANT_PURPOSES",
    "AuditEventTable",
    "AuditRetentionRunTable",
    "AuditSealTable",
    "SealedAuditRowTable",
    "TransactionGrantTable",
    "is_audit_partition",
]

AUDIT_OUTCOMES = ("success", "denied", "not_found", "conflict", "invalid", "error")
# What a transaction grant lets its transaction do: age out audit rows, erase versions, or move
# audit rows from the DEFAULT partition into their month's (revision 0012).
GRANT_PURPOSES = ("audit_retention", "purge", "audit_partition")
# audit_events_y2026m12 holds December 2026 (UTC); audit_events_default what has no month yet.
AUDIT_PARTITION_PREFIX = "audit_events_"
_AUDIT_PARTITION = re.compile(r"audit_events_(y\d{4}m\d{2}|default)")


def is_audit_partition(name: str | None) -> bool:
    """Whether ``name`` is a partition of ``hacs_audit.audit_events`` (not a table of its own)."""
    return name is not None and _AUDIT_PARTITION.fullmatch(name) is not None


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
        # Revision 0012: one partition per UTC month (the primary key includes the time).
        {"schema": "hacs_audit", "postgresql_partition_by": "RANGE (occurred_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # Set by a BEFORE INSERT trigger from the server clock (a time the writer supplies is
    # replaced in the same UTC month, refused in another); the partition key.
    occurred_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), index=True, primary_key=True
    )
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
    # Reads: the ids returned (at most access.gate.AUDIT_ID_LIMIT; past it, the count
    # and a digest in ``detail``) and the patients whose data they returned.
    resource_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    patient_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # The database role that wrote the row (``session_user``, set by the same trigger); NULL on
    # rows written before revision 0006.
    database_role: Mapped[str | None]


class TransactionGrantTable(Base):
    """A removal the owner's function allows its own transaction, for as long as it runs."""

    __tablename__ = "transaction_grants"
    __table_args__ = (
        CheckConstraint(
            "purpose IN (" + ", ".join(f"'{p}'" for p in GRANT_PURPOSES) + ")", name="purpose"
        ),
        {"schema": "hacs_audit"},
    )

    # pg_current_xact_id() as a bigint: 64 bits with the epoch, never reused.
    xact_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    purpose: Mapped[str] = mapped_column(primary_key=True)
    # Retention: only rows older than this may go.
    cutoff: Mapped[datetime | None]


class AuditRetentionRunTable(Base):
    """One run of ``hacs_audit.apply_retention``: rows older than ``cutoff`` were removed."""

    __tablename__ = "audit_retention_runs"
    __table_args__ = (
        # Retention keeps at least a day, so a run cannot explain away recent rows.
        CheckConstraint("cutoff <= ran_at - interval '1 day'", name="keeps_a_day"),
        {"schema": "hacs_audit"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(server_default=func.now())
    cutoff: Mapped[datetime]
    removed: Mapped[int] = mapped_column(BigInteger)
    requested_by: Mapped[str | None]
    database_role: Mapped[str] = mapped_column(server_default=text("session_user"))


class AuditSealTable(Base):
    """One link of the seal chain: the rows with ids in ``(after_id, last_id]``, hashed."""

    __tablename__ = "audit_seals"
    __table_args__ = (
        CheckConstraint("last_id > after_id", name="range"),
        {"schema": "hacs_audit"},
    )

    # 1, 2, 3, ...: a missing number is a removed seal.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sealed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sealed_by: Mapped[str] = mapped_column(server_default=text("session_user"))
    after_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    # sha256 (hex) of the sealed rows' hashes in id order; the head links to the previous head.
    rows_digest: Mapped[str]
    previous_head: Mapped[str | None]
    head: Mapped[str]


class SealedAuditRowTable(Base):
    """The hash of one sealed audit row, so a verification can name the row that changed."""

    __tablename__ = "audit_sealed_rows"
    __table_args__ = {"schema": "hacs_audit"}  # noqa: RUF012 (SQLAlchemy reads it as is)

    audit_event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seal_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hacs_audit.audit_seals.id"), index=True
    )
    # Kept so that a row gone since is recognised as aged out by a later retention run.
    occurred_at: Mapped[datetime]
    row_hash: Mapped[bytes] = mapped_column(LargeBinary)
