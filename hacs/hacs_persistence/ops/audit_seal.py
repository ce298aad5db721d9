"""Tamper evidence for the audit trail: seal it in batches, verify it against the seals.

Triggers stop every role from changing audit rows, but the schema owner can drop them and a
superuser can bypass them. Sealing makes such changes visible afterwards:

* ``seal_audit`` (``hacs audit seal``, a batch job) hashes every audit row written since the last
  seal, keeps each row's hash in ``hacs_audit.audit_sealed_rows`` and adds one link to the chain in
  ``hacs_audit.audit_seals``: the digest of those hashes, and a head hash over the seal, its range,
  its digest and the previous head. Writers never wait for it: nothing of it runs on their path.
* ``verify_audit`` (``hacs audit verify``) re-hashes the rows and names every sealed row deleted
  (unless a retention run aged it out) or altered, every row inserted into a sealed range, every
  seal whose digest or link does not add up, and any append-only trigger dropped or disabled
  (on the table, and on each monthly partition of revision 0012). Rows that retention removed,
  row by row or with a whole month's partition, are told from deleted ones by the cutoffs in
  ``hacs_audit.audit_retention_runs``; a partition dropped or detached any other way shows as
  its rows deleted.
  ``expect_head`` checks the chain against a head kept outside the database, which is what
  catches someone who rewrites rows and seals again consistently.

Canonical row hash (version 1), computed by the server with built-in functions only, named here
and sent with each statement, so that nothing stored in the audited database decides it:
``sha256`` of the UTF-8 text of ``jsonb_build_array(id, occurred_at as
YYYY-MM-DDTHH:MI:SS.ffffffZ in UTC, actor_id, actor_name, actor_role, action, resource_type,
resource_id, outcome, result_count, detail, request_id, purpose_of_use, resource_ids,
patient_ids, database_role)``. jsonb's text form is fixed for a value, so the hash survives a
dump and restore. A seal's ``rows_digest`` is the hex sha256 of its rows' 32-byte hashes
concatenated in id order, and its ``head`` the hex sha256 of
``hacs-audit-seal-v1|<seal id>|<previous head or empty>|<after id>|<last id>|<rows>|<digest>``.

A row whose id was drawn before a seal but that commits after it would look inserted into the
sealed range. An INSERT draws its id before its transaction gets a transaction id, so the
snapshot's in-progress list (``pg_snapshot_xip``) can miss it; but it holds its lock on the
table from the start of the statement. So, as CREATE INDEX CONCURRENTLY waits for the lockers of
its table, the seal reads the highest committed id, then waits until every transaction that held
a write lock on ``audit_events`` at that moment has ended, and seals up to that id. (Ids are drawn
in order: the identity sequence has no per-session cache, so any id below the highest committed
one was drawn by a transaction already holding that lock.)
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hacs_persistence.db.engine import one_off_connection, resolve_database
from hacs_persistence.errors import (
    DatabaseTimeoutError,
    HacsPersistenceError,
    PermissionDeniedError,
    ResourceValidationError,
    SchemaNotMigratedError,
    sqlstate_of,
)

__all__ = [
    "Finding",
    "FindingKind",
    "SealResult",
    "VerifyReport",
    "chain_head",
    "rows_digest",
    "seal_audit",
    "verify_audit",
]

SEAL_FORMAT = "hacs-audit-seal-v1"
# Rows hashed per seal: one seal per batch keeps memory bounded on a first seal of a long trail.
DEFAULT_BATCH_SIZE = 50_000
DEFAULT_WAIT_SECONDS = 300.0

# The canonical form of an audit row (version 1; see the module docstring). pg_catalog-qualified
# so that no function of the audited database's own schemas can stand in for these.
ROW_HASH_SQL = (
    "pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array("
    "e.id, "
    "pg_catalog.to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
    "e.actor_id, e.actor_name, e.actor_role, e.action, e.resource_type, e.resource_id, "
    "e.outcome, e.result_count, e.detail, e.request_id, e.purpose_of_use, e.resource_ids, "
    "e.patient_ids, e.database_role)::text, 'UTF8'))"
)

_WRITE_LOCKERS = """
SELECT DISTINCT l.virtualtransaction FROM pg_catalog.pg_locks l
WHERE l.locktype = 'relation' AND l.relation = 'hacs_audit.audit_events'::regclass
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.mode <> 'AccessShareLock' AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
"""
_STILL_RUNNING = (
    "SELECT count(*) FROM pg_catalog.pg_locks WHERE virtualtransaction = ANY($1::text[])"
)
_LAST_SEAL = "SELECT id, last_id, head FROM hacs_audit.audit_seals ORDER BY id DESC LIMIT 1"
_ROWS_TO_SEAL = (
    f"SELECT e.id, e.occurred_at, {ROW_HASH_SQL} AS row_hash FROM hacs_audit.audit_events e "
    "WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3"
)
_INSERT_SEAL = (
    "INSERT INTO hacs_audit.audit_seals "
    "(id, after_id, last_id, row_count, rows_digest, previous_head, head) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_INSERT_SEALED_ROWS = (
    "INSERT INTO hacs_audit.audit_sealed_rows (audit_event_id, seal_id, occurred_at, row_hash) "
    "SELECT r.id, $1, r.occurred_at, r.row_hash "
    "FROM unnest($2::bigint[], $3::timestamptz[], $4::bytea[]) AS r(id, occurred_at, row_hash)"
)
_SEALS = (
    "SELECT id, after_id, last_id, row_count, rows_digest, previous_head, head "
    "FROM hacs_audit.audit_seals ORDER BY id"
)
_SEALED_PAGE = (
    "SELECT audit_event_id, seal_id, occurred_at, row_hash FROM hacs_audit.audit_sealed_rows "
    "WHERE audit_event_id > $1 ORDER BY audit_event_id LIMIT $2"
)
_EVENTS_PAGE = (
    f"SELECT e.id, {ROW_HASH_SQL} AS row_hash FROM hacs_audit.audit_events e "
    "WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id"
)
_RETENTION_CUTOFF = "SELECT max(cutoff) FROM hacs_audit.audit_retention_runs"
# The triggers that keep the trail and the versions append-only (revisions 0001 and 0006).
GUARD_TRIGGERS = (
    "audit_events_no_truncate",
    "audit_events_no_update_delete",
    "audit_events_server_stamp",
    "resource_versions_no_update_delete",
)
_GUARDS_ON = (
    "SELECT t.tgname FROM pg_catalog.pg_trigger t WHERE t.tgname = ANY($1::text[]) "
    "AND t.tgenabled IN ('O', 'A') AND t.tgrelid IN "
    "('hacs_audit.audit_events'::regclass, 'hacs_core.resource_versions'::regclass)"
)
# Revision 0012: the row triggers are cloned on every monthly partition, and each has its own
# TRUNCATE trigger; one disabled or dropped on a single partition lets its rows be changed.
PARTITION_GUARD_TRIGGERS = (
    "audit_events_no_truncate",
    "audit_events_no_update_delete",
    "audit_events_server_stamp",
)
_PARTITION_GUARDS_OFF = (
    "SELECT c.relname AS partition, g.name FROM pg_catalog.pg_inherits i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid CROSS JOIN unnest($1::text[]) AS g(name) "
    "WHERE i.inhparent = 'hacs_audit.audit_events'::regclass AND NOT EXISTS ("
    "SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = g.name "
    "AND t.tgenabled IN ('O', 'A')) ORDER BY 1, 2"
)
_UNSEALED = "SELECT count(*) FROM hacs_audit.audit_events WHERE id > $1"
_MAY = (
    "SELECT pg_catalog.has_table_privilege('hacs_audit.audit_sealed_rows', $1) "
    "AND pg_catalog.has_table_privilege('hacs_audit.audit_seals', $1)"
)


class FindingKind(StrEnum):
    """What verification found wrong."""

    DELETED = "deleted"  # a sealed row is gone, and no retention run aged it out
    ALTERED = "altered"  # a sealed row's content no longer matches its hash
    INSERTED = "inserted"  # a row with an id inside a sealed range that the seal did not have
    SEAL_ALTERED = "seal_altered"  # a seal's digest, range or link to the previous one is wrong
    SEAL_MISSING = "seal_missing"  # a seal number in the chain is gone
    HEAD_MISMATCH = "head_mismatch"  # the expected head is not in the chain
    GUARD_MISSING = "guard_missing"  # an append-only trigger is dropped or disabled (now)


@dataclass(frozen=True)
class Finding:
    """One thing verification found: its kind and the audit row or seal it concerns."""

    kind: FindingKind
    audit_event_id: int | None = None
    seal_id: int | None = None
    trigger: str | None = None

    def __str__(self) -> str:
        if self.audit_event_id is not None:
            return f"{self.kind.value}: audit row {self.audit_event_id}"
        if self.seal_id is not None:
            return f"{self.kind.value}: seal {self.seal_id}"
        if self.trigger is not None:
            return f"{self.kind.value}: trigger {self.trigger} is dropped or disabled"
        return f"{self.kind.value}: the expected head is not the head of any seal"


@dataclass(frozen=True)
class SealResult:
    """What a seal run added: the seals written (none when nothing was new) and the head."""

    seals: int
    rows: int
    last_id: int | None
    head: str | None


@dataclass
class VerifyReport:
    """The outcome of a verification; ``ok`` when nothing was found."""

    seals: int = 0
    head: str | None = None
    sealed_rows: int = 0
    retained_rows: int = 0  # sealed rows removed by retention since (not tampering)
    unsealed_rows: int = 0  # written after the last seal: not covered yet
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row or seal was found deleted, altered or inserted."""
        return not self.findings


def rows_digest(row_hashes: Iterable[bytes]) -> str:
    """The hex sha256 of the rows' 32-byte hashes, concatenated in id order."""
    digest = hashlib.sha256()
    for row_hash in row_hashes:
        digest.update(row_hash)
    return digest.hexdigest()


def chain_head(
    seal_id: int,
    previous_head: str | None,
    after_id: int,
    last_id: int,
    row_count: int,
    digest: str,
) -> str:
    """The head hash of a seal: its number, range, digest and the previous head."""
    text = (
        f"{SEAL_FORMAT}|{seal_id}|{previous_head or ''}|{after_id}|{last_id}|{row_count}|{digest}"
    )
    return hashlib.sha256(text.encode()).hexdigest()


async def seal_audit(
    database_url: str | None = None,
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SealResult:
    """Seal every audit row committed since the last seal; run as the schema owner.

    Waits (at most ``wait_seconds``) for the transactions writing audit rows when it starts, so
    that none commits a row into the sealed range afterwards. Concurrent seals take turns.
    Raises ``PermissionDeniedError`` for a role that is not the owner, ``DatabaseTimeoutError``
    when a writing transaction stays open longer than the wait.
    """
    if batch_size < 1:
        raise ResourceValidationError(
            "batch_size must be at least 1; pass a positive number of rows."
        )
    async with _owner_connection(database_url, "seal", "INSERT") as driver:
        upper = await driver.fetchval("SELECT max(id) FROM hacs_audit.audit_events")
        lockers = [r[0] for r in await driver.fetch(_WRITE_LOCKERS)]
        await _wait_for(driver, lockers, wait_seconds)
        seals = rows = 0
        head: str | None = None
        last_id: int | None = None
        while True:
            async with driver.transaction():
                # Sealers take turns; writers never touch this table.
                await driver.execute(
                    "LOCK TABLE hacs_audit.audit_seals IN SHARE ROW EXCLUSIVE MODE"
                )
                previous = await driver.fetchrow(_LAST_SEAL)
                after = int(previous["last_id"]) if previous else 0
                head = previous["head"] if previous else None
                last_id = after if previous else None
                if upper is None or upper <= after:
                    return SealResult(seals, rows, last_id, head)
                batch = await driver.fetch(_ROWS_TO_SEAL, after, upper, batch_size)
                last = int(batch[-1]["id"]) if len(batch) == batch_size else int(upper)
                seal_id = int(previous["id"]) + 1 if previous else 1
                digest = rows_digest(bytes(r["row_hash"]) for r in batch)
                head = chain_head(seal_id, head, after, last, len(batch), digest)
                await driver.execute(
                    _INSERT_SEAL,
                    seal_id,
                    after,
                    last,
                    len(batch),
                    digest,
                    previous["head"] if previous else None,
                    head,
                )
                await driver.execute(
                    _INSERT_SEALED_ROWS,
                    seal_id,
                    [r["id"] for r in batch],
                    [r["occurred_at"] for r in batch],
                    [bytes(r["row_hash"]) for r in batch],
                )
            seals += 1
            rows += len(batch)
            last_id = last


async def verify_audit(
    database_url: str | None = None, *, expect_head: str | None = None
) -> VerifyReport:
    """Check the audit trail against its seals (and ``expect_head``, a head kept elsewhere).

    Reads one consistent snapshot. Needs the owner's rights (the seal tables are the owner's).
    """
    report = VerifyReport()
    async with (
        _owner_connection(database_url, "verify", "SELECT") as driver,
        driver.transaction(isolation="repeatable_read", readonly=True),
    ):
        seals = list(await driver.fetch(_SEALS))
        cutoff = await driver.fetchval(_RETENTION_CUTOFF)
        guards = {r[0] for r in await driver.fetch(_GUARDS_ON, list(GUARD_TRIGGERS))}
        report.findings.extend(
            Finding(FindingKind.GUARD_MISSING, trigger=name)
            for name in GUARD_TRIGGERS
            if name not in guards
        )
        # One off on the table is off on its partitions too (ALTER TABLE recurses): named once.
        report.findings.extend(
            Finding(FindingKind.GUARD_MISSING, trigger=f"{r['name']} (hacs_audit.{r['partition']})")
            for r in await driver.fetch(_PARTITION_GUARDS_OFF, list(PARTITION_GUARD_TRIGGERS))
            if r["name"] in guards or r["name"] == "audit_events_no_truncate"
        )
        report.findings.extend(_check_chain(seals))
        last_sealed = int(seals[-1]["last_id"]) if seals else 0
        digests = await _check_rows(driver, seals, last_sealed, cutoff, report)
        for seal in seals:
            found = digests.get(int(seal["id"]))
            count, digest = found if found else (0, rows_digest(()))
            if count != seal["row_count"] or digest != seal["rows_digest"]:
                report.findings.append(Finding(FindingKind.SEAL_ALTERED, seal_id=int(seal["id"])))
        report.unsealed_rows = int(await driver.fetchval(_UNSEALED, last_sealed))
    report.seals = len(seals)
    report.head = seals[-1]["head"] if seals else None
    if expect_head is not None and expect_head.strip().lower() not in {s["head"] for s in seals}:
        report.findings.append(Finding(FindingKind.HEAD_MISMATCH))
    # One finding per row or seal, in id order, whatever order the checks found them in.
    report.findings = sorted(
        set(report.findings),
        key=lambda f: (
            f.audit_event_id is None,
            f.audit_event_id or 0,
            f.seal_id or 0,
            f.trigger or "",
            f.kind,
        ),
    )
    return report


def _check_chain(seals: Sequence[Any]) -> list[Finding]:
    """Each seal on its own: numbered in turn, linked to the previous one, head as computed."""
    findings: list[Finding] = []
    previous: Any = None
    for seal in seals:
        seal_id = int(seal["id"])
        expected_id = int(previous["id"]) + 1 if previous is not None else 1
        findings.extend(
            Finding(FindingKind.SEAL_MISSING, seal_id=n) for n in range(expected_id, seal_id)
        )
        # After a gap the link cannot hold; the missing seals are the finding.
        linked = seal_id != expected_id or (
            seal["previous_head"] == (previous["head"] if previous is not None else None)
            and seal["after_id"] == (previous["last_id"] if previous is not None else 0)
        )
        head = chain_head(
            seal_id,
            seal["previous_head"],
            int(seal["after_id"]),
            int(seal["last_id"]),
            int(seal["row_count"]),
            seal["rows_digest"],
        )
        if not linked or head != seal["head"]:
            findings.append(Finding(FindingKind.SEAL_ALTERED, seal_id=seal_id))
        previous = seal
    return findings


async def _check_rows(
    driver: Any, seals: Sequence[Any], last_sealed: int, cutoff: Any, report: VerifyReport
) -> dict[int, tuple[int, str]]:
    """Compare the sealed hashes with the rows as they are now; each seal's recomputed digest."""
    ranges = [(int(s["after_id"]), int(s["last_id"]), int(s["id"])) for s in seals]
    hashers: dict[int, Any] = {}
    counts: dict[int, int] = {}
    cursor = 0
    while cursor < last_sealed:
        page = await driver.fetch(_SEALED_PAGE, cursor, DEFAULT_BATCH_SIZE)
        upper = int(page[-1]["audit_event_id"]) if len(page) == DEFAULT_BATCH_SIZE else last_sealed
        current: dict[int, bytes] = {}
        for r in await driver.fetch(_EVENTS_PAGE, cursor, upper):
            # The primary key is (id, occurred_at) since revision 0012: a second row with a
            # sealed id (written with OVERRIDING SYSTEM VALUE) is an insertion too.
            if int(r["id"]) in current:
                report.findings.append(Finding(FindingKind.INSERTED, audit_event_id=int(r["id"])))
            current.setdefault(int(r["id"]), bytes(r["row_hash"]))
        for sealed in page:
            row_id = int(sealed["audit_event_id"])
            seal_id = int(sealed["seal_id"])
            row_hash = bytes(sealed["row_hash"])
            hashers.setdefault(seal_id, hashlib.sha256()).update(row_hash)
            counts[seal_id] = counts.get(seal_id, 0) + 1
            if not any(a < row_id <= b and s == seal_id for a, b, s in _around(ranges, row_id)):
                report.findings.append(Finding(FindingKind.SEAL_ALTERED, seal_id=seal_id))
            report.sealed_rows += 1
            now = current.pop(row_id, None)
            if now is None:
                if cutoff is not None and sealed["occurred_at"] < cutoff:
                    report.retained_rows += 1
                else:
                    report.findings.append(Finding(FindingKind.DELETED, audit_event_id=row_id))
            elif now != row_hash:
                report.findings.append(Finding(FindingKind.ALTERED, audit_event_id=row_id))
        report.findings.extend(
            Finding(FindingKind.INSERTED, audit_event_id=row_id) for row_id in sorted(current)
        )
        cursor = upper
    return {s: (counts[s], hashers[s].hexdigest()) for s in hashers}


def _around(ranges: Sequence[tuple[int, int, int]], row_id: int) -> list[tuple[int, int, int]]:
    """The seal range holding ``row_id`` (ranges are sorted and disjoint), if any."""
    low, high = 0, len(ranges)
    while low < high:
        middle = (low + high) // 2
        if ranges[middle][1] < row_id:
            low = middle + 1
        else:
            high = middle
    return list(ranges[low : low + 1])


async def _wait_for(driver: Any, lockers: list[str], wait_seconds: float) -> None:
    """Wait until the given transactions have ended (committed or rolled back)."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while lockers and await driver.fetchval(_STILL_RUNNING, lockers):
        if time.monotonic() >= deadline:
            raise DatabaseTimeoutError(
                f"A transaction writing audit rows stayed open for more than {wait_seconds:g} s "
                "while the seal waited for it; run `hacs audit seal` again later, or end the "
                "long transaction (see pg_stat_activity)."
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


@asynccontextmanager
async def _owner_connection(
    database_url: str | None, job: str, privilege: str
) -> AsyncIterator[Any]:
    """An unpooled asyncpg connection of a role that may ``privilege`` the seal tables."""
    try:
        # Without a URL, the embedded server's owner: sealing is the owner's job, as migrating is.
        resolved = await resolve_database(database_url, embedded_role="owner")
        async with one_off_connection(resolved) as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            if await driver.fetchval("SELECT to_regclass('hacs_audit.audit_seals')") is None:
                raise SchemaNotMigratedError(
                    "The audit seal tables are missing: run `hacs db upgrade` (revision 0006)."
                )
            if not await driver.fetchval(_MAY, privilege):
                raise PermissionDeniedError(_owner_only(job))
            yield driver
    except HacsPersistenceError as exc:
        # one_off_connection translated the driver's error; its SQLSTATE is still in the chain.
        if sqlstate_of(exc) == "42501":
            raise PermissionDeniedError(_owner_only(job)) from exc
        raise


def _owner_only(job: str) -> str:
    return (
        f"hacs audit {job} uses tables only the schema owner may use: connect as the owner "
        "(the role that runs migrations)."
    )
