"""FHIR import: Bundles, Bulk Data NDJSON and single resources into the adapter, idempotently.

``import_paths`` streams every file three times and never holds a whole file. The scan (no
database) learns which copy of a resource is the last one of the import (the one that wins when
the same ``Type/id`` comes several times with different content), the identifiers of every
resource (to resolve conditional references across files) and how many entries there are
(progress). Then file after file, each in one transaction: a planning pass learns the file's
fullUrls, identifiers and conditional entries, and the import pass takes the entries in batches
(``IMPORT_BATCH_ENTRIES`` entries or ``IMPORT_BATCH_BYTES`` of source text): references are
rewritten, each resource goes through ``from_fhir``, is compared with its stored version and
saved with ``save_many(..., dangling="null")`` when it is new or changed. Memory holds one batch
plus a few short strings per resource (ids, fullUrls, identifiers), never the files.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Table

from hacs_auth import Actor
from hacs_models import BaseResource
from hacs_models.fhir import from_fhir
from hacs_persistence.adapters.postgres import PostgreSQLAdapter
from hacs_persistence.errors import (
    DatabaseTimeoutError,
    PermissionDeniedError,
    ResourceValidationError,
    TransientDatabaseError,
    VersionConflictError,
)
from hacs_persistence.interchange._references import (
    IdentifierIndex,
    _Ambiguous,
    reference_slots,
)
from hacs_persistence.interchange._sources import (
    Criterion,
    Entry,
    SourceError,
    Stamp,
    discover,
    open_source,
    parse_criterion,
    stamp,
)
from hacs_persistence.interchange._store import (
    criteria_shape,
    find_by_identifier,
    stored_versions,
    unchanged_ids,
)
from hacs_persistence.limits import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    IMPORT_BATCH_BYTES,
    IMPORT_BATCH_ENTRIES,
)
from hacs_persistence.schema import TYPED_TABLES
from hacs_persistence.storage.codec import document_json
from hacs_persistence.storage.mapping import ResourceMapping

__all__ = [
    "FileResult",
    "ImportProgress",
    "ImportSummary",
    "ProgressCallback",
    "TypeCounts",
    "import_paths",
]

# Errors that fail one file (reported, the others still import); anything else (the database
# is gone, the schema is not migrated) ends the import.
_FILE_ERRORS = (
    ResourceValidationError,
    VersionConflictError,
    TransientDatabaseError,
    DatabaseTimeoutError,
    PermissionDeniedError,
)
_ATTEMPTS = 3
_LAST_RANK = 1_000_000
SUPERSEDED = "superseded by a later copy in this import"
_UNSET = object()
# Audit actions: the permission and patient-scope checks of a file, its identifier look-ups in
# the database and its comparison with the stored versions (its writes are save_many's).
IMPORT = "import"
RESOLVE = "import.resolve"
COMPARE = "import.compare"


@dataclass
class TypeCounts:
    """What an import did with the resources of one type."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def add(self, other: TypeCounts) -> None:
        """Add another count to this one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped

    @property
    def total(self) -> int:
        """Every entry of the type the import saw."""
        return self.created + self.updated + self.unchanged + self.skipped


@dataclass
class FileResult:
    """One file of an import: imported, skipped (not data, e.g. a searchset) or failed."""

    path: str
    status: Literal["imported", "skipped", "failed"]
    entries: int = 0
    reason: str | None = None
    line: int | None = None
    where: str | None = None

    def describe(self) -> str:
        """``path[:line]: reason`` (``path: entry[3]: reason`` for Bundle entries)."""
        location = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.where and self.line is None:
            location = f"{location}: {self.where}"
        return f"{location}: {self.reason}" if self.reason else location


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: files and entries done of the totals, and the file just finished."""

    files_done: int
    files_total: int
    entries_done: int
    entries_total: int
    path: str | None = None


ProgressCallback = Callable[[ImportProgress], None]


@dataclass
class ImportSummary:
    """Per-type counts, per-file results and what happened to references."""

    types: dict[str, TypeCounts] = field(default_factory=dict)
    files: list[FileResult] = field(default_factory=list)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    # "bundle" (urn:uuid / fullUrl of an entry), "identifier-import", "identifier-database"
    resolved_references: Counter[str] = field(default_factory=Counter)
    # "urn" (no entry has that fullUrl), "conditional" (no or several matches, or not by identifier)
    unresolved_references: Counter[str] = field(default_factory=Counter)
    # target table -> references kept in the document with a NULL foreign key
    dangling_references: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No file failed."""
        return not self.failed

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed (nothing of them was written)."""
        return [f for f in self.files if f.status == "failed"]

    @property
    def totals(self) -> TypeCounts:
        """The counts of every type added up."""
        total = TypeCounts()
        for counts in self.types.values():
            total.add(counts)
        return total

    def count(self, status: Literal["imported", "skipped", "failed"]) -> int:
        """How many files have this status."""
        return sum(f.status == status for f in self.files)


# --- the first pass ---------------------------------------------------------------------------


@dataclass
class _Scanned:
    index: int
    path: Path
    rank: int = _LAST_RANK
    entries: int = 0
    error: SourceError | None = None
    skip: str | None = None
    stamp: Stamp | None = None  # the file as the scan read it without error


@dataclass
class _Scan:
    files: list[_Scanned]
    missing: list[Path]
    # (type, id) -> (file index, entry index) of its last copy: the one that may update.
    winners: dict[tuple[str, str], int]
    identifiers: IdentifierIndex
    entries_total: int


@cache
def _ranks() -> dict[str, int]:
    """Import order of the types other typed rows point at: patients, then encounters, ...

    Files holding them are imported first, so that a foreign key to a resource of another file
    of the same import (NDJSON: Encounter -> Patient) finds its target.
    """
    targets: dict[str, set[str]] = {}
    names = {}
    for name, table_cls in TYPED_TABLES.items():
        table = table_cls.__table__
        assert isinstance(table, Table)
        names[table.fullname] = name
        targets[table.fullname] = {
            fk.column.table.fullname
            for column in table.columns
            if "source" in column.info
            for fk in column.foreign_keys
        }
    referenced = set().union(*targets.values())

    def depth(table: str, seen: frozenset[str] = frozenset()) -> int:
        parents = targets.get(table, set()) - seen - {table}
        return 1 + max((depth(p, seen | {table}) for p in parents), default=-1)

    return {names[t]: depth(t) for t in referenced if t in names}


def _where(file_index: int, position: int) -> int:
    """(file, entry) as one int: the winners map holds one per resource of the import."""
    return file_index << 32 | position


def _scan(paths: Iterable[str | Path], max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> _Scan:
    """Stream every file once: entry counts, the last copy of each Type/id, identifiers.

    What a file adds is kept aside until the file has been read to its end, so a file that
    fails (invalid JSON in its last line) leaves no winner and no identifier behind.
    """
    found, missing = discover(paths)
    ranks = _ranks()
    scan = _Scan([], missing, {}, IdentifierIndex(), 0)
    for index, path in enumerate(found):
        scanned = _Scanned(index, path)
        scan.files.append(scanned)
        winners: dict[tuple[str, str], int] = {}
        identifiers = IdentifierIndex()
        rank = _LAST_RANK
        count = 0
        try:
            before = stamp(path)
            source = open_source(path, max_bytes)
            for position, entry in enumerate(source.entries()):
                count += 1
                if entry.skip is not None or entry.resource is None:
                    continue
                winners[entry.key] = _where(index, position)
                identifiers.add(entry.resource_type, entry.id, entry.resource)
                rank = min(rank, ranks.get(entry.resource_type, _LAST_RANK))
        except SourceError as exc:
            scanned.error = exc
            continue
        scanned.skip = source.skip
        scanned.stamp = before
        scanned.rank = rank
        scanned.entries = max(count, 1)
        scan.entries_total += scanned.entries
        scan.winners.update(winners)
        scan.identifiers.update(identifiers)
    return scan


# --- the second pass --------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one file did; merged into the summary only when the file's transaction commits."""

    counts: defaultdict[str, TypeCounts] = field(default_factory=lambda: defaultdict(TypeCounts))
    skip_reasons: Counter[str] = field(default_factory=Counter)
    resolved: Counter[str] = field(default_factory=Counter)
    unresolved: Counter[str] = field(default_factory=Counter)
    dangling: Counter[str] = field(default_factory=Counter)

    def skip(self, resource_type: str, reason: str) -> None:
        self.counts[resource_type].skipped += 1
        self.skip_reasons[reason] += 1


@dataclass
class _Item:
    entry: Entry
    resource: BaseResource
    winner: bool  # the last copy of its Type/id in the import: may update a stored version


@dataclass
class _Plan:
    """What a file's batches need from the whole file, learned in one streaming pass.

    Per stored entry it keeps a few short strings (never the resource): the file's identifiers,
    the ``Type/id`` of each fullUrl, the settled id of conditional entries and the position of
    the last copy of each ``Type/id``.
    """

    scanned: _Scanned
    types: set[str] = field(default_factory=set)
    local: IdentifierIndex = field(default_factory=IdentifierIndex)
    full_urls: dict[str, str] = field(default_factory=dict)
    # entry position -> (its ifNoneExist / conditional PUT criterion, the other resource found)
    conditional: dict[int, tuple[Criterion, str | _Ambiguous | None]] = field(default_factory=dict)
    # entry position -> (id, skip reason) of a conditional entry once its match is known
    settled: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    updates: set[int] = field(default_factory=set)  # positions of conditional updates
    # Type/id -> position of its last copy in this file (the only copy of the file written)
    last: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def pending(self) -> dict[str, Collection[str]]:
        """Type -> ids the file writes (a batch's references to later batches are kept)."""
        return {resource_type: _Written(self.last, resource_type) for resource_type in self.types}


class _Written(Collection[str]):
    """The ids of one type among a file's last copies: a view, no second set of ids."""

    def __init__(self, last: dict[tuple[str, str], int], resource_type: str) -> None:
        self._last = last
        self._type = resource_type

    def __contains__(self, resource_id: object) -> bool:
        return (self._type, resource_id) in self._last

    def __iter__(self) -> Iterator[str]:
        return (rid for rtype, rid in self._last if rtype == self._type)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class _Batch:
    """Consecutive entries of a file, parsed, resolved and written together."""

    entries: list[tuple[int, Entry]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


class _Importer:
    def __init__(self, adapter: PostgreSQLAdapter, actor: Actor, scan: _Scan) -> None:
        self.adapter = adapter
        self.gate = adapter.gate
        self.actor = actor
        self.scan = scan
        # type -> the actor's patients for it (None: not scoped), once permitted in this import.
        self._permitted: dict[str, list[str] | None] = {}

    async def permit(self, resource_types: Iterable[str]) -> None:
        """Refuse (through the gate, audited as denied) types the actor may not import.

        Importing a type needs write permission and read permission (the comparison reads the
        stored version); a patient-scoped actor also needs the type to be in a patient
        compartment. Only successes are remembered: a refusal fails, and audits, every file.
        """
        for resource_type in sorted(set(resource_types) - set(self._permitted)):
            mapping = self.adapter.mapping(resource_type)
            await self.gate.authorize(self.actor, "write", mapping.resource_type, None, IMPORT)
            await self.gate.authorize(self.actor, "read", mapping.resource_type, None, IMPORT)
            allowed = await self.gate.scope(self.actor, mapping, IMPORT)
            self._permitted[resource_type] = allowed

    def _entries(self, scanned: _Scanned) -> Iterator[Entry]:
        source = open_source(scanned.path, self.adapter.max_document_bytes)
        return source.entries(checked=scanned.stamp)

    # -- the file: one streaming pass, then its conditional entries ---------------------------

    async def plan(self, scanned: _Scanned) -> _Plan:
        """Learn what every batch of the file needs; refused types fail the file here."""
        plan = _Plan(scanned)
        # Only conditional entries wait for their match; the others are settled as they come.
        waiting: list[tuple[int, str, str, str | None]] = []
        for position, entry in enumerate(self._entries(scanned)):
            if entry.skip is not None or entry.resource is None:
                continue
            plan.types.add(entry.resource_type)
            plan.local.add(entry.resource_type, entry.id, entry.resource)
            criterion = entry.update_criterion or entry.create_criterion
            if criterion is not None:
                plan.conditional[position] = (criterion, None)
                if entry.update_criterion is not None:
                    plan.updates.add(position)
                waiting.append((position, entry.resource_type, entry.id, entry.full_url))
                continue
            if entry.full_url:
                plan.full_urls[entry.full_url] = f"{entry.resource_type}/{entry.id}"
            plan.last[entry.key] = position
        # Refused types fail the file (audited) before anything is looked up.
        await self.permit(plan.types)
        # Conditional creates/updates: resolved in the data of this file, then of the whole
        # import, then in the database. They must not match their own entry.
        for position, _type, resource_id, _url in waiting:
            criterion = plan.conditional[position][0]
            plan.conditional[position] = (
                criterion,
                self._in_data(criterion, plan.local, resource_id),
            )
        wanted = [c for c, found in plan.conditional.values() if found is None]
        matches = await self._lookup(wanted)
        for position, (criterion, found) in plan.conditional.items():
            if found is None and criterion in matches:
                plan.conditional[position] = (criterion, matches[criterion])
        for position, resource_type, resource_id, full_url in waiting:
            resource_id, skip = self._settle(position, resource_id, plan)
            plan.settled[position] = (resource_id, skip)
            if full_url:
                plan.full_urls[full_url] = f"{resource_type}/{resource_id}"
            key = (resource_type, resource_id)
            if skip is None and plan.last.get(key, -1) < position:
                plan.last[key] = position
        return plan

    def _settle(self, position: int, resource_id: str, plan: _Plan) -> tuple[str, str | None]:
        """The id of a conditional entry, and why it is skipped (it matched another resource)."""
        _criterion, match = plan.conditional[position]
        if not isinstance(match, str):
            return resource_id, None
        if position in plan.updates:
            return match, None  # a conditional update of the resource it matched
        if match != resource_id:
            # ifNoneExist matched another resource: use it, create nothing.
            return match, "conditional create matched an existing resource"
        return resource_id, None

    async def _lookup(self, wanted: Iterable[Criterion]) -> dict[Criterion, str | _Ambiguous]:
        """Resolve identifier criteria in the database (one query per type)."""
        by_type: defaultdict[str, list[Criterion]] = defaultdict(list)
        for criterion in set(wanted):
            by_type[criterion[0]].append(criterion)
        matches: dict[Criterion, str | _Ambiguous] = {}
        for resource_type, criteria in sorted(by_type.items()):
            for criterion, match in (await self._find(resource_type, criteria)).items():
                matches[criterion] = _DatabaseMatch(match) if isinstance(match, str) else match
        return matches

    # -- a batch: resolve references, convert, write ------------------------------------------

    def batches(self, plan: _Plan, outcome: _Outcome) -> Iterator[_Batch]:
        """The file's entries to store, in batches bounded in count and source bytes."""
        batch = _Batch()
        for position, entry in enumerate(self._entries(plan.scanned)):
            if entry.skip is not None or entry.resource is None:
                outcome.skip(entry.resource_type, entry.skip or "entry without a resource")
                continue
            if position in plan.settled:
                entry.id, entry.skip = plan.settled[position]
                if entry.skip is not None:
                    outcome.skip(entry.resource_type, entry.skip)
                    continue
            if plan.last.get(entry.key) != position:
                outcome.skip(entry.resource_type, SUPERSEDED)
                continue
            batch.entries.append((position, entry))
            batch.slots.extend(reference_slots(entry.resource, plan.full_urls))
            batch.size += entry.size
            if len(batch.entries) >= IMPORT_BATCH_ENTRIES or batch.size >= IMPORT_BATCH_BYTES:
                yield batch
                batch = _Batch()
        if batch.entries:
            yield batch

    async def prepare(self, plan: _Plan, batch: _Batch, outcome: _Outcome) -> list[_Item]:
        """Rewrite the batch's references (file, import, then database) and convert it."""
        criteria: dict[Criterion, str | _Ambiguous | None] = {}
        for slot in batch.slots:
            reference = slot["reference"]
            if "?" in reference and reference not in plan.full_urls:
                found = parse_criterion(reference)
                if found is not None and found not in criteria:
                    criteria[found] = self._in_data(found, plan.local, None)
        matches = await self._lookup(c for c, found in criteria.items() if found is None)
        criteria.update(matches)
        for slot in batch.slots:
            self._rewrite(slot, plan.full_urls, criteria, outcome)
        index = plan.scanned.index
        return [
            _Item(
                entry,
                _convert(entry),
                self.scan.winners.get(entry.key, _where(index, position))
                == _where(index, position),
            )
            for position, entry in batch.entries
        ]

    async def _find(
        self, resource_type: str, criteria: list[Criterion]
    ) -> dict[Criterion, str | _Ambiguous]:
        """One identifier look-up batch: permitted, scoped in its SQL, audited.

        It needs read permission on the type (and, for a patient-scoped actor, a type in a
        patient compartment); a refusal is audited as denied and leaves the references
        unresolved, exactly as identifiers that match nothing. Rows outside the actor's patients
        are not found. The audit row names the identifier systems asked for, never the values,
        and the ids found.
        """
        mapping = self.adapter.mapping(resource_type)
        try:
            await self.gate.authorize(self.actor, "read", mapping.resource_type, None, RESOLVE)
            allowed = await self.gate.scope(self.actor, mapping, RESOLVE)
        except PermissionDeniedError:
            return {}
        async with self.adapter._unit() as unit:
            found = await find_by_identifier(unit, mapping, criteria, allowed)
        ids = [match for match in found.values() if isinstance(match, str)]
        await self._audit(RESOLVE, mapping, criteria_shape(criteria), ids, allowed)
        return found

    async def _audit(
        self,
        action: str,
        mapping: ResourceMapping,
        shape: str,
        ids: Sequence[str],
        allowed: Sequence[str] | None,
    ) -> None:
        """A success row through the gate (it survives any rollback) before the result is used."""
        detail = ";".join(
            part for part in (shape, "scope=patients" if allowed is not None else "") if part
        )
        await self.gate.record(
            self.actor,
            action,
            mapping.resource_type,
            None,
            "success",
            detail,
            count=len(set(ids)),
            resource_ids=ids,
        )

    def _in_data(
        self, criterion: Criterion, local: IdentifierIndex, own_id: str | None
    ) -> str | _Ambiguous | None:
        found = local.lookup(criterion, own_id)
        if found is None:
            found = self.scan.identifiers.lookup(criterion, own_id)
        return found

    def _rewrite(
        self,
        slot: dict[str, Any],
        full_urls: dict[str, str],
        criteria: dict[Criterion, str | _Ambiguous | None],
        outcome: _Outcome,
    ) -> None:
        reference: str = slot["reference"]
        target = full_urls.get(reference)
        if target:
            slot["reference"] = target
            outcome.resolved["bundle"] += 1
            return
        if "?" in reference:
            criterion = parse_criterion(reference)
            match = criteria.get(criterion) if criterion is not None else None
            if criterion is None or not isinstance(match, str):
                outcome.unresolved["conditional"] += 1
                return
            slot["reference"] = f"{criterion[0]}/{match}"
            found_in = "database" if isinstance(match, _DatabaseMatch) else "import"
            outcome.resolved[f"identifier-{found_in}"] += 1
            return
        if reference.startswith("urn:"):
            outcome.unresolved["urn"] += 1

    async def check_scope(self, items: Sequence[_Item]) -> None:
        """A patient-scoped actor's resources must stay in its patients (before any stored row
        is compared with them); save_many checks the same again."""
        for item in items:
            resource_type = item.resource.resource_type
            await self.gate.check_new_row(
                self.actor,
                self.adapter.mapping(resource_type),
                item.resource,
                IMPORT,
                self._permitted[resource_type],
            )

    async def store(self, plan: _Plan, items: Sequence[_Item], outcome: _Outcome) -> None:
        """Compare a batch with the stored versions and save what is new or changed."""
        groups: defaultdict[ResourceMapping, list[_Item]] = defaultdict(list)
        for item in items:
            groups[self.adapter.mapping(item.resource.resource_type)].append(item)
        # The file's transaction: the comparison and save_many's writes share its unit.
        async with self.adapter._unit() as unit:
            batch: list[BaseResource] = []
            for mapping, group in groups.items():
                # Stored rows outside the actor's patients are neither found nor compared: for
                # the import they do not exist (an insert of a taken id then fails the file).
                allowed = self._permitted[mapping.resource_type]
                ids = [i.resource.id for i in group]
                state = await stored_versions(unit, mapping, ids, allowed)
                live = [
                    (i.resource.id, document_json(i.resource))
                    for i in group
                    if i.resource.id in state and not state[i.resource.id][1]
                ]
                same = await unchanged_ids(unit, mapping, live, allowed)
                if state:
                    # The versions and contents of these stored rows were read.
                    shape = f"compare=document;unchanged={len(same)}"
                    await self._audit(COMPARE, mapping, shape, list(state), allowed)
                counts = outcome.counts[mapping.resource_type]
                for item in group:
                    resource = item.resource
                    stored = state.get(resource.id)
                    if stored is None:
                        if resource.version is not None:
                            resource.version = None
                        batch.append(resource)
                        counts.created += 1
                    elif resource.id in same:
                        counts.unchanged += 1
                    elif not item.winner:
                        # Another copy later in this import is the one that may update.
                        outcome.skip(mapping.resource_type, SUPERSEDED)
                    else:
                        resource.version = stored[0]  # update only that version
                        batch.append(resource)
                        counts.updated += 1
            if batch:
                # Later batches of the file write the rest: references to them are not dangling.
                saved = await self.adapter.save_many(
                    batch, self.actor, dangling="null", pending=plan.pending
                )
                for key, count in saved.dangling_references.items():
                    outcome.dangling[key.split(":", 1)[0]] += count


class _DatabaseMatch(str):
    """An id found by identifier in the database (not in the imported data)."""

    __slots__ = ()


def _convert(entry: Entry) -> BaseResource:
    data = dict(entry.resource or {})
    data["id"] = entry.id
    try:
        resource = from_fhir(data)
    except RecursionError:
        # Nesting is checked when a file is read; this only guards a file changed since.
        raise SourceError(
            "the resource nests too deeply to convert", line=entry.line, where=entry.where
        ) from None
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(resource)'}: {_message(error)}"
            for error in exc.errors()[:3]
        )
        raise SourceError(
            # The file and line (or entry) locate it; the id is the patient's data.
            f"{entry.resource_type} resource is not valid: {details}",
            line=entry.line,
            where=entry.where,
        ) from None
    except ValueError:
        raise SourceError(
            f"{entry.resource_type} resource does not convert to a hacs model",
            line=entry.line,
            where=entry.where,
        ) from None
    return resource


def _message(error: Any) -> str:
    # A model validator's own message may quote the value it rejected (possibly PHI); the
    # built-in messages ("Field required", "Input should be ...") never do.
    if error["type"] in ("value_error", "assertion_error"):
        return "invalid value"
    return str(error["msg"])


async def _acting(adapter: PostgreSQLAdapter, actor: Actor | None) -> Actor:
    resolved = adapter.gate.actor(actor)
    if not resolved.is_active:
        await adapter.gate.record(resolved, IMPORT, None, None, "denied", "is inactive")
        raise PermissionDeniedError("The acting actor is inactive.", actor_id=resolved.id)
    return resolved


async def import_paths(
    paths: Iterable[str | Path],
    adapter: PostgreSQLAdapter,
    actor: Actor | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import FHIR files and folders: one transaction per file; returns what happened.

    Accepts Bundles (transaction, batch, collection: their entries; other data Bundles such as
    documents are stored whole; responses, searchsets and messages are skipped), Bulk Data
    NDJSON (``.ndjson``) and single-resource JSON files; folders are searched recursively for
    ``*.json`` and ``*.ndjson``. A file that cannot be read or has an invalid resource fails as
    a whole (nothing of it is written) and is reported with its line or entry; the other files
    still import. Running the same import again changes nothing.
    """
    acting = await _acting(adapter, actor)
    started = time.perf_counter()
    scan = _scan(paths, adapter.max_document_bytes)
    summary = ImportSummary()
    for path in scan.missing:
        summary.files.append(FileResult(str(path), "failed", reason="no such file or directory"))
    importer = _Importer(adapter, acting, scan)
    files_total = len(scan.files)
    done_files = 0
    done_entries = 0

    def report(path: Path | None) -> None:
        if progress is not None:
            progress(
                ImportProgress(
                    done_files,
                    files_total,
                    done_entries,
                    scan.entries_total,
                    None if path is None else str(path),
                )
            )

    report(None)
    results: dict[int, FileResult] = {}
    for scanned in sorted(scan.files, key=lambda f: (f.rank, f.index)):
        results[scanned.index] = await _import_file(importer, scanned, summary)
        done_files += 1
        done_entries += scanned.entries
        report(scanned.path)
    summary.files.extend(results[index] for index in sorted(results))
    summary.seconds = time.perf_counter() - started
    return summary


async def _import_file(
    importer: _Importer, scanned: _Scanned, summary: ImportSummary
) -> FileResult:
    """One file in one transaction, batch after batch; its counts join the summary on commit.

    A serialization failure or deadlock runs the whole file again (it was rolled back).
    """
    name = str(scanned.path)
    if scanned.error is not None:
        return _failure(name, scanned.error)
    if scanned.skip is not None:
        summary.types.setdefault("Bundle", TypeCounts()).skipped += 1
        summary.skip_reasons[scanned.skip] += 1
        return FileResult(name, "skipped", scanned.entries, reason=scanned.skip)
    for attempt in range(1, _ATTEMPTS + 1):
        outcome = _Outcome()
        try:
            plan = await importer.plan(scanned)
            async with importer.adapter.transaction():
                for batch in importer.batches(plan, outcome):
                    items = await importer.prepare(plan, batch, outcome)
                    await importer.check_scope(items)
                    await importer.store(plan, items, outcome)
        except SourceError as exc:
            return _failure(name, exc)
        except TransientDatabaseError as exc:
            if attempt == _ATTEMPTS:
                return FileResult(name, "failed", scanned.entries, reason=str(exc))
            continue
        except _FILE_ERRORS as exc:
            return FileResult(name, "failed", scanned.entries, reason=str(exc))
        break
    for resource_type, counts in outcome.counts.items():
        summary.types.setdefault(resource_type, TypeCounts()).add(counts)
    summary.skip_reasons.update(outcome.skip_reasons)
    summary.resolved_references.update(outcome.resolved)
    summary.unresolved_references.update(outcome.unresolved)
    summary.dangling_references.update(outcome.dangling)
    return FileResult(name, "imported", scanned.entries)


def _failure(name: str, exc: SourceError) -> FileResult:
    return FileResult(name, "failed", reason=exc.message, line=exc.line, where=exc.where)
