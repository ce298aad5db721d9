"""FHIR import: Bundles, Bulk Data NDJSON and single resources into the adapter, idempotently.

``import_paths`` reads every file twice. The first pass (no database) parses each file to learn
which copy of a resource is the last one of the import (the one that wins when the same
``Type/id`` comes several times with different content), the identifiers of every resource (to
resolve conditional references across files) and how many entries there are (progress). The
second pass imports file after file, each in one transaction: references are rewritten, each
resource goes through ``from_fhir``, is compared with its stored version and saved with
``save_many(..., dangling="null")`` when it is new or changed.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Table

from hacs_auth import Actor
from hacs_models import BaseResource
from hacs_models.fhir import from_fhir
from hacs_persistence.adapter import PostgreSQLAdapter
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
    discover,
    parse_criterion,
    read_source,
)
from hacs_persistence.interchange._store import (
    criteria_shape,
    find_by_identifier,
    stored_versions,
    unchanged_ids,
)
from hacs_persistence.mapping import ResourceMapping, document_json
from hacs_persistence.schema import TYPED_TABLES

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


@dataclass
class _Scan:
    files: list[_Scanned]
    missing: list[Path]
    # (type, id) -> (file index, entry index) of its last copy: the one that may update.
    winners: dict[tuple[str, str], tuple[int, int]]
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


def _scan(paths: Iterable[str | Path]) -> _Scan:
    found, missing = discover(paths)
    ranks = _ranks()
    scan = _Scan([], missing, {}, IdentifierIndex(), 0)
    for index, path in enumerate(found):
        scanned = _Scanned(index, path)
        scan.files.append(scanned)
        try:
            source = read_source(path)
        except SourceError as exc:
            scanned.error = exc
            continue
        scanned.skip = source.skip
        scanned.entries = max(len(source.entries), 1)
        scan.entries_total += scanned.entries
        for position, entry in enumerate(source.entries):
            if entry.skip is not None or entry.resource is None:
                continue
            scan.winners[entry.key] = (index, position)
            scan.identifiers.add(entry.resource_type, entry.id, entry.resource)
            scanned.rank = min(scanned.rank, ranks.get(entry.resource_type, _LAST_RANK))
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
class _Draft:
    """A file between parsing and conversion."""

    scanned: _Scanned
    outcome: _Outcome = field(default_factory=lambda: _Outcome())
    stored: list[tuple[int, Entry]] = field(default_factory=list)
    full_urls: dict[str, str] = field(default_factory=dict)
    slots: list[dict[str, Any]] = field(default_factory=list)
    # conditional reference -> the id it resolves to (None: not yet, AMBIGUOUS: several)
    criteria: dict[Criterion, str | _Ambiguous | None] = field(default_factory=dict)
    # entry position -> (its ifNoneExist / conditional PUT criterion, the other resource found)
    conditional: dict[int, tuple[Criterion, str | _Ambiguous | None]] = field(default_factory=dict)


@dataclass
class _Prepared:
    scanned: _Scanned
    items: list[_Item]
    outcome: _Outcome


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

    # -- phase A: parse, resolve, convert (no write) -----------------------------------------

    def read(self, scanned: _Scanned) -> _Draft:
        """Parse the file and resolve what the imported data itself can resolve."""
        draft = _Draft(scanned)
        local = IdentifierIndex()
        for position, entry in enumerate(read_source(scanned.path).entries):
            if entry.skip is not None or entry.resource is None:
                draft.outcome.skip(entry.resource_type, entry.skip or "entry without a resource")
                continue
            draft.stored.append((position, entry))
            local.add(entry.resource_type, entry.id, entry.resource)
        draft.full_urls = {e.full_url: "" for _, e in draft.stored if e.full_url}
        draft.slots = [
            slot
            for _, entry in draft.stored
            for slot in reference_slots(entry.resource or {}, draft.full_urls)
        ]
        # Conditional creates/updates and conditional references: resolved in the data of this
        # file, then of the whole import, then (``lookup``) in the database. A conditional
        # create or update must not match its own entry; a reference may.
        for position, entry in draft.stored:
            criterion = entry.update_criterion or entry.create_criterion
            if criterion is not None:
                draft.conditional[position] = (
                    criterion,
                    self._in_data(criterion, local, entry.id),
                )
        for slot in draft.slots:
            reference = slot["reference"]
            if "?" in reference and reference not in draft.full_urls:
                found = parse_criterion(reference)
                if found is not None and found not in draft.criteria:
                    draft.criteria[found] = self._in_data(found, local, None)
        return draft

    async def lookup(self, draft: _Draft) -> None:
        """Resolve the remaining identifier criteria in the database (one query per type)."""
        wanted = {c for c, found in draft.criteria.items() if found is None}
        wanted.update(c for c, found in draft.conditional.values() if found is None)
        by_type: defaultdict[str, list[Criterion]] = defaultdict(list)
        for criterion in wanted:
            by_type[criterion[0]].append(criterion)
        matches: dict[Criterion, str | _Ambiguous] = {}
        for resource_type, criteria in sorted(by_type.items()):
            matches.update(await self._find(resource_type, criteria))
        for criterion, match in matches.items():
            resolved = _DatabaseMatch(match) if isinstance(match, str) else match
            if draft.criteria.get(criterion, _UNSET) is None:
                draft.criteria[criterion] = resolved
            for position, (wanted_criterion, found) in draft.conditional.items():
                if found is None and wanted_criterion == criterion:
                    draft.conditional[position] = (criterion, resolved)

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

    def finish(self, draft: _Draft) -> list[_Item]:
        """Rewrite references, keep the last copy of each Type/id, convert with from_fhir."""
        outcome, criteria, scanned = draft.outcome, draft.criteria, draft.scanned
        for position, entry in draft.stored:
            _criterion, match = draft.conditional.get(position, (None, None))
            if not isinstance(match, str):
                continue
            if entry.update_criterion is not None:
                entry.id = match  # a conditional update of the resource it matched
            elif match != entry.id:
                # ifNoneExist matched another resource: use it, create nothing.
                entry.skip = "conditional create matched an existing resource"
                entry.id = match
        for _, entry in draft.stored:
            if entry.full_url:
                draft.full_urls[entry.full_url] = f"{entry.resource_type}/{entry.id}"
        for slot in draft.slots:
            self._rewrite(slot, draft.full_urls, criteria, outcome)
        latest: dict[tuple[str, str], tuple[int, Entry]] = {}
        for position, entry in draft.stored:
            if entry.skip is not None:
                outcome.skip(entry.resource_type, entry.skip)
                continue
            if entry.key in latest:
                outcome.skip(entry.resource_type, SUPERSEDED)
            latest[entry.key] = (position, entry)
        items = []
        for key, (position, entry) in latest.items():
            here = (scanned.index, position)
            items.append(_Item(entry, _convert(entry), self.scan.winners.get(key, here) == here))
        return items

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

    # -- phase B: compare and write, in one transaction --------------------------------------

    async def store(self, items: Sequence[_Item], outcome: _Outcome) -> None:
        await self.permit(item.resource.resource_type for item in items)
        for item in items:
            # A patient-scoped actor's resources must stay in its patients (before any stored
            # row is compared with them); save_many checks the same again.
            resource_type = item.resource.resource_type
            await self.gate.check_new_row(
                self.actor,
                self.adapter.mapping(resource_type),
                item.resource,
                IMPORT,
                self._permitted[resource_type],
            )
        for attempt in range(1, _ATTEMPTS + 1):
            result = _Outcome()
            try:
                await self._store_once(items, result)
            except TransientDatabaseError:
                if attempt == _ATTEMPTS:
                    raise
                continue
            for resource_type, counts in result.counts.items():
                outcome.counts[resource_type].add(counts)
            outcome.skip_reasons.update(result.skip_reasons)
            outcome.dangling.update(result.dangling)
            return

    async def _store_once(self, items: Sequence[_Item], outcome: _Outcome) -> None:
        groups: defaultdict[ResourceMapping, list[_Item]] = defaultdict(list)
        for item in items:
            groups[self.adapter.mapping(item.resource.resource_type)].append(item)
        # One transaction, the adapter's: the comparison and save_many's writes share its unit.
        async with self.adapter.transaction(), self.adapter._unit() as unit:
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
                saved = await self.adapter.save_many(batch, self.actor, dangling="null")
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
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(resource)'}: {_message(error)}"
            for error in exc.errors()[:3]
        )
        raise SourceError(
            f"{entry.resource_type}/{entry.id} is not valid: {details}",
            line=entry.line,
            where=entry.where,
        ) from None
    except ValueError as exc:
        raise SourceError(
            f"{entry.resource_type}/{entry.id}: {exc}", line=entry.line, where=entry.where
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
        raise PermissionDeniedError(f"Actor {resolved.id} is inactive.", actor_id=resolved.id)
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
    scan = _scan(paths)
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
        prepared = await _prepare(importer, scanned)
        results[scanned.index] = await _store(importer, prepared, summary)
        done_files += 1
        done_entries += scanned.entries
        report(scanned.path)
    summary.files.extend(results[index] for index in sorted(results))
    summary.seconds = time.perf_counter() - started
    return summary


async def _prepare(importer: _Importer, scanned: _Scanned) -> _Prepared | FileResult:
    """Phase A of one file, or its result when it fails or is skipped without a write."""
    name = str(scanned.path)
    if scanned.error is not None:
        return _failure(name, scanned.error)
    if scanned.skip is not None:
        return FileResult(name, "skipped", scanned.entries, reason=scanned.skip)
    try:
        draft = importer.read(scanned)
        # Refused types fail the file (audited) before anything is looked up.
        await importer.permit(entry.resource_type for _, entry in draft.stored)
        await importer.lookup(draft)
        items = importer.finish(draft)
    except SourceError as exc:
        return _failure(name, exc)
    except _FILE_ERRORS as exc:
        return FileResult(name, "failed", scanned.entries, reason=str(exc))
    return _Prepared(scanned, items, draft.outcome)


async def _store(
    importer: _Importer, prepared: _Prepared | FileResult, summary: ImportSummary
) -> FileResult:
    """Phase B of one file; its counts join the summary only once it has committed."""
    if isinstance(prepared, FileResult):
        if prepared.status == "skipped":
            summary.types.setdefault("Bundle", TypeCounts()).skipped += 1
            summary.skip_reasons[prepared.reason or "skipped"] += 1
        return prepared
    name, outcome = str(prepared.scanned.path), prepared.outcome
    try:
        await importer.store(prepared.items, outcome)
    except _FILE_ERRORS as exc:
        return FileResult(name, "failed", prepared.scanned.entries, reason=str(exc))
    for resource_type, counts in outcome.counts.items():
        summary.types.setdefault(resource_type, TypeCounts()).add(counts)
    summary.skip_reasons.update(outcome.skip_reasons)
    summary.resolved_references.update(outcome.resolved)
    summary.unresolved_references.update(outcome.unresolved)
    summary.dangling_references.update(outcome.dangling)
    return FileResult(name, "imported", prepared.scanned.entries)


def _failure(name: str, exc: SourceError) -> FileResult:
    return FileResult(name, "failed", reason=exc.message, line=exc.line, where=exc.where)
