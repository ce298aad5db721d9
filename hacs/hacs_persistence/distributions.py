"""Other installed distributions that ship hacs's import packages (and so overwrite its files).

An unrelated older project is published as ``hacs-persistence``, ``hacs-auth``, ``hacs-models``
(...) and ships the same import packages (``hacs_persistence``, ``hacs_auth``, ...). pip installs
both into one ``site-packages`` without a word, each overwriting the other's files. This project
is the distribution ``hacs`` (see pyproject.toml).

Three checks: :func:`named_conflicts` looks up the known names only (under a millisecond; run
on every import of ``hacs_persistence``), :func:`conflicting_distributions` also reads the
metadata of every installed distribution to find any other one that provides our packages (a few
hundred milliseconds), and :func:`overwritten_files` compares our installed files with the hashes
of our RECORD (a few milliseconds); ``hacs doctor`` runs the last two.
"""

from __future__ import annotations

import base64
import hashlib
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = [
    "CONFLICTING_NAMES",
    "DISTRIBUTION",
    "PACKAGES",
    "ConflictingDistribution",
    "DistributionConflictWarning",
    "conflict_advice",
    "conflicting_distributions",
    "named_conflicts",
    "overwritten_files",
    "warn_on_conflicts",
]

# Our distribution's name (pyproject.toml) and the import packages it ships.
DISTRIBUTION = "hacs"
PACKAGES = ("hacs_models", "hacs_auth", "hacs_persistence", "hacs_tools", "hacs_mcp", "hacs_cli")
# The other project's distributions, which ship packages of the same names.
CONFLICTING_NAMES = ("hacs-persistence", "hacs-auth", "hacs-models", "hacs-tools", "hacs-core")


class DistributionConflictWarning(UserWarning):
    """Another installed distribution ships hacs's import packages; the message says the fix."""


@dataclass(frozen=True)
class ConflictingDistribution:
    """One installed distribution other than ``hacs`` that ships (or is named as) our packages."""

    name: str
    version: str
    location: str | None
    packages: tuple[str, ...]

    def describe(self) -> str:
        where = f" in {self.location}" if self.location else ""
        ships = f" (ships {', '.join(self.packages)})" if self.packages else ""
        return f"{self.name} {self.version}{where}{ships}"


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The top-level import names of ``dist``: top_level.txt, else the paths in its RECORD."""
    listed = dist.read_text("top_level.txt")
    if listed:
        return {line.strip() for line in listed.splitlines() if line.strip()}
    names: set[str] = set()
    for path in dist.files or ():
        first = path.parts[0] if path.parts else ""
        if first and not first.endswith((".dist-info", ".egg-info", ".data")) and first != "..":
            names.add(first.removesuffix(".py"))
    return names


def _describe(dist: metadata.Distribution) -> ConflictingDistribution:
    located = dist.locate_file("")
    return ConflictingDistribution(
        name=str(dist.metadata["Name"] or "?"),
        version=str(dist.version),
        location=str(located) if located else None,
        packages=tuple(sorted(_top_level(dist) & set(PACKAGES))),
    )


def named_conflicts() -> list[ConflictingDistribution]:
    """The installed distributions with one of :data:`CONFLICTING_NAMES` (cheap: name lookups)."""
    found: list[ConflictingDistribution] = []
    for name in CONFLICTING_NAMES:
        found.extend(_describe(dist) for dist in metadata.distributions(name=name))
    return found


def conflicting_distributions() -> list[ConflictingDistribution]:
    """Every installed distribution other than ``hacs`` that ships one of :data:`PACKAGES`,
    plus those with one of :data:`CONFLICTING_NAMES` (reads all installed metadata)."""
    known = {_normalized(n) for n in CONFLICTING_NAMES}
    found: dict[tuple[str, str | None], ConflictingDistribution] = {}
    for dist in metadata.distributions():
        name = _normalized(str(dist.metadata["Name"] or ""))
        if name == DISTRIBUTION:
            continue
        if name in known or _top_level(dist) & set(PACKAGES):
            conflict = _describe(dist)
            found.setdefault((name, conflict.location), conflict)
    return list(found.values())


def overwritten_files() -> list[str]:
    """Files of our packages that differ from (or are missing against) our installed RECORD.

    Empty for an editable install or a checkout on ``PYTHONPATH`` (their RECORD lists no
    package files) and when hacs is not installed.
    """
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return []
    changed: list[str] = []
    for file in dist.files or ():
        if not file.parts or file.parts[0] not in PACKAGES or file.hash is None:
            continue
        try:
            content = Path(str(dist.locate_file(file))).read_bytes()
        except FileNotFoundError:
            changed.append(str(file))
            continue
        digest = hashlib.new(file.hash.mode, content).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != file.hash.value:
            changed.append(str(file))
    return changed


def conflict_advice(conflicts: list[ConflictingDistribution]) -> str:
    """What is installed and the commands that fix it."""
    names = " ".join(sorted({c.name for c in conflicts}))
    return (
        f"Another project's distribution ships hacs's import packages: "
        f"{'; '.join(c.describe() for c in conflicts)}. pip installs both into the same folders, "
        f"each overwriting the other's files, so what gets imported is a mix of the two. Fix: "
        f"`pip uninstall -y {names}`, then reinstall hacs (`pip install --force-reinstall "
        f"<this project's wheel or checkout>`; `pip install hacs` and `pip install "
        f"hacs-persistence` from PyPI install other projects). See docs/operations.md, "
        f'"Conflicting distributions".'
    )


def warn_on_conflicts() -> None:
    """Warn (:class:`DistributionConflictWarning`) when a known conflicting name is installed."""
    conflicts = named_conflicts()
    if conflicts:
        warnings.warn(conflict_advice(conflicts), DistributionConflictWarning, stacklevel=2)
