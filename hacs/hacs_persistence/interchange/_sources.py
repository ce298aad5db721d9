"""Reading FHIR files: discovery, Bundles, NDJSON and single resources, as entries with ids.

Nothing here touches the database. Every function is deterministic, so the scan of all files and
the import of each file see the same entries with the same ids. Files are streamed: nothing here
holds more than one entry (or one document) of a file at a time.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal
from urllib.parse import parse_qsl

import ijson  # type: ignore[import-untyped]

from hacs_models import fhir as fhir_json
from hacs_models.fhir.resource_types import is_known_resource_type, unknown_resource_type
from hacs_persistence.limits import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    json_nesting_exceeds,
)

__all__ = [
    "ENTRY_BUNDLE_TYPES",
    "SKIPPED_BUNDLE_TYPES",
    "Criterion",
    "Entry",
    "SourceError",
    "SourceFile",
    "Stamp",
    "discover",
    "identifiers_of",
    "open_source",
    "parse_criterion",
    "stamp",
]

# Bundles whose entries are imported one by one.
ENTRY_BUNDLE_TYPES = frozenset({"transaction", "batch", "collection"})
# Bundles that are server answers or messages, not data to store: the whole file is skipped.
SKIPPED_BUNDLE_TYPES = frozenset(
    {
        "batch-response",
        "transaction-response",
        "searchset",
        "history",
        "message",
        "subscription-notification",
    }
)
# Any other Bundle (a FHIR document) is one resource and is stored whole, as a FHIR server would.

SUFFIXES = (".json", ".ndjson")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
# Ids derived from content (resources with neither id nor a usable fullUrl) are stable uuid5s.
_CONTENT_NAMESPACE = uuid.UUID("5b0e6c1e-6f53-4d3e-9a57-3f1b3b2a8c11")
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "DELETE", "PATCH"})
_BOM = b"\xef\xbb\xbf"
_END: Final = object()
_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})
_HEADER_BUFFER = 16 * 1024
# An entry object holds the resource: one level more than the resource's own limit.
_MAX_ITEM_DEPTH = MAX_DOCUMENT_DEPTH + 1
_INVALID_JSON = "invalid JSON (the file is not well-formed)"
_TOO_DEEP = (
    f"objects and arrays nest deeper than {MAX_DOCUMENT_DEPTH} levels "
    "(hacs_persistence.limits.MAX_DOCUMENT_DEPTH)"
)

# (resource type, identifier system or None for "any system" / "" for "no system", value)
Criterion = tuple[str, str | None, str]


class SourceError(Exception):
    """A file (or one line or entry of it) that cannot be imported; nothing of it is written."""

    def __init__(self, message: str, *, line: int | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.where = where

    def __str__(self) -> str:
        prefix = f"line {self.line}: " if self.line is not None else ""
        if self.where and self.line is None:
            prefix = f"{self.where}: "
        return prefix + self.message


@dataclass
class Entry:
    """One unit of a file: a Bundle entry, an NDJSON line or the file's single resource.

    ``resource_type``/``id`` are set for entries to store; ``skip`` says why an entry is not
    stored (a GET or DELETE request, an operation call, no resource).
    """

    where: str
    line: int | None
    resource: dict[str, Any] | None
    # Bytes of source text (approximate for Bundle entries): what import batches are sized by.
    size: int = 0
    full_url: str | None = None
    method: str | None = None
    url: str | None = None
    if_none_exist: str | None = None
    resource_type: str = ""
    id: str = ""
    skip: str | None = None
    # A conditional update (PUT Type?identifier=...): the id comes from the match, if any.
    update_criterion: Criterion | None = None
    create_criterion: Criterion | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(resource type, id): ids are unique per type."""
        return self.resource_type, self.id


@dataclass
class SourceFile:
    """A file, opened lazily: its kind, why it is skipped, and its entries as a stream.

    ``entries()`` reads the file again each time it is called and yields one entry at a time:
    a Bundle's entries are parsed one by one (``ijson`` over ``entry.item``) and NDJSON line by
    line, so memory holds one entry, never the file. A single resource (or a Bundle stored
    whole) is one document, read whole only if it is within the document size limit.
    """

    path: Path
    kind: Literal["bundle", "ndjson", "resource"]
    bundle_type: str | None = None
    skip: str | None = None
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES

    def entries(self, checked: Stamp | None = None) -> Iterator[Entry]:
        """The file's entries in order; ``SourceError`` at the first one that is unusable.

        ``checked``: the ``stamp()`` of the file when a first pass read all of it without
        error. A Bundle is then parsed by ijson's C item builder (fast, but unbounded in
        nesting), which is safe only because the file is still the one that was checked.
        """
        if self.skip is not None:
            return iter(())
        if checked is not None and stamp(self.path) != checked:
            raise SourceError("the file changed during the import; run the import again")
        if self.kind == "ndjson":
            return _ndjson_entries(self.path, self.max_bytes)
        if self.kind == "bundle":
            return _bundle_entries(self.path, fast=checked is not None)
        return _whole_entries(self.path, self.max_bytes)


# (size, modification time in ns): a file read again must be the one read before.
Stamp = tuple[int, int]


def stamp(path: Path) -> Stamp:
    """Size and modification time of a file (``SourceError`` if it is gone)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None
    return info.st_size, info.st_mtime_ns


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Files to import (folders recursively: ``*.json``, ``*.ndjson``) and paths that are missing.

    Files inside a folder come in sorted order; hidden files and folders are left out. A file
    named explicitly is taken whatever its suffix. Each file is listed once.
    """
    found: list[Path] = []
    missing: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            found.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            children = [
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            for child in sorted(children, key=lambda p: p.as_posix()):
                add(child)
        elif path.is_file():
            add(path)
        else:
            missing.append(path)
    return found, missing


def open_source(path: Path, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> SourceFile:
    """What kind of file this is (reading only its first top-level keys); ``SourceError`` if bad.

    ``max_bytes`` is the document size limit: an NDJSON line, a single resource or a Bundle
    stored whole that is larger fails the file before it is parsed.
    """
    if path.suffix.lower() == ".ndjson":
        return SourceFile(path, "ndjson", max_bytes=max_bytes)
    resource_type, bundle_type, entry_event = _header(path)
    if resource_type == "Bundle" and bundle_type in SKIPPED_BUNDLE_TYPES:
        skip = f"{bundle_type} Bundle (not data)"
        return SourceFile(path, "bundle", bundle_type, skip=skip, max_bytes=max_bytes)
    if resource_type == "Bundle" and bundle_type in ENTRY_BUNDLE_TYPES:
        if entry_event not in (None, "start_array"):
            raise SourceError("Bundle.entry is not an array")
        return SourceFile(path, "bundle", bundle_type, max_bytes=max_bytes)
    # Any other resource, or a data Bundle stored whole (a FHIR document): one document.
    return SourceFile(
        path, "resource", bundle_type if resource_type == "Bundle" else None, max_bytes=max_bytes
    )


def _binary(path: Path) -> BinaryIO:
    """The file opened for reading bytes, past a UTF-8 byte order mark (which is not an error)."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None
    if stream.read(3) != _BOM:
        stream.seek(0)
    return stream


def _header(path: Path) -> tuple[str | None, str | None, str | None]:
    """resourceType, Bundle.type and the first event of Bundle.entry, from the top of the file.

    Stops as soon as they are known (FHIR writers put them first), so a large Bundle is not
    read here. ``basic_parse`` (no prefixes): ijson's prefixed events cost time quadratic in
    the nesting depth. The error messages never quote the file: yajl's own quote its text.
    """
    resource_type: str | None = None
    bundle_type: str | None = None
    entry_event: str | None = None
    depth = 0
    key: str | None = None
    with _binary(path) as stream:
        try:
            for event, value in ijson.basic_parse(stream, buf_size=_HEADER_BUFFER):
                if depth == 0 and event != "start_map":
                    raise SourceError("the file is not a JSON object")
                if depth == 1 and event == "map_key":
                    key = value
                    continue
                if depth == 1 and key == "entry" and entry_event is None:
                    entry_event = event
                if event in _STARTS:
                    depth += 1
                elif event in _ENDS:
                    depth -= 1
                    if depth == 0:
                        break
                elif depth == 1 and event == "string" and key == "resourceType":
                    resource_type = value
                elif depth == 1 and event == "string" and key == "type":
                    bundle_type = value
                if resource_type is not None and resource_type != "Bundle":
                    break
                if resource_type and bundle_type and entry_event:
                    break
        except ijson.JSONError:
            raise SourceError(_INVALID_JSON) from None
        except UnicodeDecodeError:
            raise SourceError("not UTF-8 text") from None
    if not isinstance(resource_type, str) or not _TYPE.fullmatch(resource_type):
        raise SourceError("the file has no valid resourceType")
    return resource_type, bundle_type, entry_event


def _entry_items(stream: BinaryIO) -> Iterator[Any]:
    """The items of the top-level ``entry`` array, built one at a time from ijson's events.

    A hand-built item (rather than ``ijson.items``) so that nesting is bounded while it is
    built: a hostile entry nested a million levels deep fails at level MAX_DOCUMENT_DEPTH,
    in time linear in its size, and is never held.
    """
    depth = 0  # of the Bundle's own structure, outside an item
    key: str | None = None
    in_entry = False
    stack: list[Any] = []  # the item being built, outermost first
    keys: list[Any] = []
    for event, value in ijson.basic_parse(stream):
        if stack:
            if event == "map_key":
                keys[-1] = value
                continue
            if event in _STARTS:
                if len(stack) > _MAX_ITEM_DEPTH:
                    raise _Deep()
                child: Any = {} if event == "start_map" else []
                _put(stack[-1], keys[-1], child)
                stack.append(child)
                keys.append(None)
                continue
            if event in _ENDS:
                done = stack.pop()
                keys.pop()
                if not stack:
                    yield done
                continue
            _put(stack[-1], keys[-1], value)
            continue
        if event == "map_key":
            if depth == 1:
                key = value
            continue
        if depth == 2 and in_entry:
            if event in _STARTS:
                stack.append({} if event == "start_map" else [])
                keys.append(None)
                continue
            if event not in _ENDS:
                yield value  # a scalar entry: refused by the caller
                continue
        if event in _STARTS:
            depth += 1
            if depth == 2:
                in_entry = key == "entry" and event == "start_array"
        elif event in _ENDS:
            depth -= 1
            if depth == 1:
                in_entry = False


def _put(container: Any, key: Any, value: Any) -> None:
    if type(container) is dict:
        container[key] = value
    else:
        container.append(value)


class _Deep(Exception):
    """An entry nests deeper than the limit (raised while it is being built)."""


def _whole_entries(path: Path, max_bytes: int) -> Iterator[Entry]:
    """The one entry of a single-resource file (read whole: it is one document)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None
    if size > max_bytes:
        raise SourceError(_too_large("the resource", size, max_bytes))
    with _binary(path) as stream:
        raw = stream.read()
    # Before json.loads and anything recursive (reference rewriting, from_fhir) meets it.
    if json_nesting_exceeds(raw, MAX_DOCUMENT_DEPTH):
        raise SourceError(f"the resource: {_TOO_DEEP}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    data = _loads(text, None)
    _check_resource(data, "the file")
    entry = Entry("resource", None, data, size=size)
    _plan(entry)
    yield entry


def _bundle_entries(path: Path, *, fast: bool = False) -> Iterator[Entry]:
    """A transaction/batch/collection Bundle's entries, parsed one at a time.

    ``fast``: the file was read whole before and its nesting is within the limit.
    """
    index = -1
    with _binary(path) as stream:
        items: Iterator[Any] = ijson.items(stream, "entry.item") if fast else _entry_items(stream)
        position = stream.tell()
        while True:
            try:
                raw = next(items, _END)
            except ijson.JSONError:
                after = f" after entry[{index}]" if index >= 0 else ""
                raise SourceError(_INVALID_JSON + after) from None
            except UnicodeDecodeError:
                raise SourceError("not UTF-8 text") from None
            except _Deep:
                raise SourceError(
                    f"the resource: {_TOO_DEEP}", where=f"entry[{index + 1}]"
                ) from None
            if raw is _END:
                return
            index += 1
            # The file position moves in read-ahead chunks: the sizes add up over a batch.
            now = stream.tell()
            entry = _bundle_entry(index, raw)
            entry.size = now - position
            position = now
            yield entry


def _ndjson_entries(path: Path, max_bytes: int) -> Iterator[Entry]:
    """One entry per non-empty line; a line over the size limit is refused unread."""
    with _binary(path) as stream:
        number = 0
        while True:
            # +2: the line ending. A longer line is refused without being held in memory.
            line = stream.readline(max_bytes + 2)
            if not line:
                return
            number += 1
            if len(line) > max_bytes + 1 or (len(line) > max_bytes and not line.endswith(b"\n")):
                raise SourceError(_too_large("the line", len(line), max_bytes), line=number)
            if json_nesting_exceeds(line, MAX_DOCUMENT_DEPTH):
                raise SourceError(f"the line: {_TOO_DEEP}", line=number)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(f"not UTF-8 text ({exc.reason})", line=number) from None
            if not text.strip():
                continue
            data = _loads(text, number)
            try:
                _check_resource(data, "the line")
            except SourceError as exc:
                exc.line = number
                raise
            entry = Entry(f"line {number}", number, data, size=len(line))
            _plan(entry)
            yield entry


def _loads(text: str, line: int | None) -> Any:
    try:
        return fhir_json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"invalid JSON: {exc.msg} (column {exc.colno})",
            line=exc.lineno if line is None else line,
        ) from None
    except RecursionError:
        raise SourceError(_TOO_DEEP, line=line) from None


def _too_large(what: str, size: int, max_bytes: int) -> str:
    return (
        f"{what} is {size} bytes or more, over the document size limit of {max_bytes} bytes "
        "(setting max_document_bytes, HACS_DB_MAX_DOCUMENT_BYTES)"
    )


def _check_resource(data: Any, what: str) -> None:
    if not isinstance(data, dict):
        raise SourceError(f"{what} is not a JSON object")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not _TYPE.fullmatch(resource_type):
        raise SourceError(f"{what} has no valid resourceType")


def _bundle_entry(index: int, raw: Any) -> Entry:
    where = f"entry[{index}]"
    if not isinstance(raw, dict):
        raise SourceError("not a JSON object", where=where)
    resource = raw.get("resource")
    request = raw.get("request")
    request = request if isinstance(request, dict) else {}
    method = request.get("method")
    url = request.get("url")
    if_none_exist = request.get("ifNoneExist")
    full_url = raw.get("fullUrl")
    entry = Entry(
        where,
        None,
        None,
        full_url=full_url if isinstance(full_url, str) else None,
        method=method.upper() if isinstance(method, str) else None,
        url=url if isinstance(url, str) else None,
        if_none_exist=if_none_exist if isinstance(if_none_exist, str) else None,
    )
    if resource is not None:
        try:
            _check_resource(resource, "the resource")
        except SourceError as exc:
            exc.where = where
            raise
        entry.resource = resource
    _plan(entry)
    return entry


def _plan(entry: Entry) -> None:
    """Decide whether an entry is stored, under which type and id (never random)."""
    resource = entry.resource
    # Skipped entries are counted under their resource's type, else the type of their URL.
    # Interned: the import keeps (type, id) of every resource across passes, one copy each.
    entry.resource_type = sys.intern(
        resource["resourceType"] if resource is not None else _type_of_url(entry.url) or "(none)"
    )
    if entry.method in _READ_ONLY_METHODS:
        entry.skip = f"{entry.method} entry"
        return
    if entry.url is not None and "$" in entry.url.split("?", 1)[0]:
        entry.skip = "operation call"
        return
    if resource is None:
        entry.skip = "entry without a resource"
        return
    if not is_known_resource_type(entry.resource_type):
        # Stored in the JSONB fallback it would be data no FHIR server or hacs model reads:
        # almost always a typo. The file fails, as for any invalid resource.
        raise SourceError(
            str(unknown_resource_type(entry.resource_type)), line=entry.line, where=entry.where
        )
    own = resource.get("id")
    if own is not None:
        if not isinstance(own, str) or not _ID.fullmatch(own):
            raise SourceError(
                f"{entry.resource_type}: invalid id (FHIR ids are 1-64 of A-Z a-z 0-9 - .)",
                line=entry.line,
                where=entry.where,
            )
        entry.id = sys.intern(own)
    else:
        entry.id = sys.intern(_derived_id(entry))
    if entry.url is not None and "?" in entry.url:
        criterion = parse_criterion(entry.url, entry.resource_type)
        if entry.method == "PUT" and criterion is not None:
            entry.update_criterion = criterion
    if entry.if_none_exist and entry.method == "POST":
        entry.create_criterion = parse_criterion(entry.if_none_exist, entry.resource_type)


def _derived_id(entry: Entry) -> str:
    """The id of a resource without one: from the request URL or fullUrl, else from content."""
    resource_type = entry.resource_type
    if entry.method == "PUT" and entry.url:
        parts = entry.url.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == resource_type and _ID.fullmatch(parts[1]):
            return parts[1]
    full_url = entry.full_url
    if full_url:
        if full_url.startswith("urn:uuid:"):
            candidate = full_url.removeprefix("urn:uuid:")
            if _ID.fullmatch(candidate):
                return candidate
        parts = full_url.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == resource_type and _ID.fullmatch(parts[-1]):
            return parts[-1]
    canonical = fhir_json.dumps(entry.resource, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(_CONTENT_NAMESPACE, canonical))


def _type_of_url(url: str | None) -> str | None:
    if not url:
        return None
    head = url.split("?", 1)[0].strip("/").split("/", 1)[0]
    return head if _TYPE.fullmatch(head) else None


def parse_criterion(query: str, resource_type: str | None = None) -> Criterion | None:
    """``Type?identifier=system|value`` (or ``identifier=...`` for ``resource_type``) as a key.

    Only a single ``identifier`` parameter is understood; anything else gives None. ``value``
    alone matches any system, ``|value`` only identifiers without a system.
    """
    head, sep, params = query.partition("?")
    if sep:
        resource_type = head.strip("/").rsplit("/", 1)[-1]
    else:
        params = head
    if not resource_type or not _TYPE.fullmatch(resource_type):
        return None
    pairs = parse_qsl(params.replace("+", "%2B"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "identifier" or not pairs[0][1]:
        return None
    token = pairs[0][1]
    if "|" not in token:
        return resource_type, None, token
    system, value = token.split("|", 1)
    if not value:
        return None
    return resource_type, system, value


def identifiers_of(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(system or "", value) of each identifier of a FHIR resource."""
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):  # a few resource types have a single identifier
        identifiers = [identifiers]
    if not isinstance(identifiers, list):
        return
    for item in identifiers:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            system = item.get("system")
            yield (system if isinstance(system, str) else ""), item["value"]
