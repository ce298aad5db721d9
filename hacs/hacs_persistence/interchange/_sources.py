"""Reading FHIR files: discovery, Bundles, NDJSON and single resources, as entries with ids.

Nothing here touches the database. Every function is deterministic, so the scan of all files and
the import of each file see the same entries with the same ids.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

__all__ = [
    "ENTRY_BUNDLE_TYPES",
    "SKIPPED_BUNDLE_TYPES",
    "Criterion",
    "Entry",
    "SourceError",
    "SourceFile",
    "discover",
    "identifiers_of",
    "parse_criterion",
    "read_source",
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
    """A parsed file: its entries, or why the whole file is skipped."""

    path: Path
    kind: Literal["bundle", "ndjson", "resource"]
    entries: list[Entry] = field(default_factory=list)
    bundle_type: str | None = None
    skip: str | None = None


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


def read_source(path: Path) -> SourceFile:
    """Parse a file into entries with their types and ids; ``SourceError`` if it is unusable."""
    if path.suffix.lower() == ".ndjson":
        return _read_ndjson(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not an error
    except UnicodeDecodeError as exc:
        raise SourceError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    _check_resource(data, "the file")
    if data["resourceType"] != "Bundle":
        entry = Entry("resource", None, data)
        _plan(entry)
        return SourceFile(path, "resource", [entry])
    bundle_type = data.get("type")
    if bundle_type in SKIPPED_BUNDLE_TYPES:
        return SourceFile(
            path, "bundle", bundle_type=bundle_type, skip=f"{bundle_type} Bundle (not data)"
        )
    if bundle_type not in ENTRY_BUNDLE_TYPES:
        entry = Entry("resource", None, data)
        _plan(entry)
        return SourceFile(path, "resource", [entry], bundle_type=bundle_type)
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        raise SourceError("Bundle.entry is not an array")
    entries = [_bundle_entry(index, raw) for index, raw in enumerate(raw_entries)]
    return SourceFile(path, "bundle", entries, bundle_type=bundle_type)


def _read_ndjson(path: Path) -> SourceFile:
    entries: list[Entry] = []
    try:
        with path.open(encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(
                        f"invalid JSON: {exc.msg} (column {exc.colno})", line=number
                    ) from None
                try:
                    _check_resource(data, "the line")
                except SourceError as exc:
                    exc.line = number
                    raise
                entry = Entry(f"line {number}", number, data)
                _plan(entry)
                entries.append(entry)
    except UnicodeDecodeError as exc:
        raise SourceError(f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None
    return SourceFile(path, "ndjson", entries)


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
    entry.resource_type = (
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
    own = resource.get("id")
    if own is not None:
        if not isinstance(own, str) or not _ID.fullmatch(own):
            raise SourceError(
                f"{entry.resource_type}: invalid id (FHIR ids are 1-64 of A-Z a-z 0-9 - .)",
                line=entry.line,
                where=entry.where,
            )
        entry.id = own
    else:
        entry.id = _derived_id(entry)
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
    canonical = json.dumps(entry.resource, sort_keys=True, separators=(",", ":"))
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
