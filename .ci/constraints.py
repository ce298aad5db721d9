"""Print constraints.txt: the exact versions, installed in the running environment, of the
dependencies pyproject.toml declares (with the dev, mcp and otel extras) and of theirs, transitively.
`make constraints` runs it."""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = "pyproject.toml"
EXTRAS = ("dev", "langgraph", "mcp", "otel")


def declared() -> list[str]:
    """This checkout's own requirements (the installed hacs may be another checkout's)."""
    with open(PYPROJECT, "rb") as handle:
        project = tomllib.load(handle)["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    return lines


def requirements(name: str | None, extras: tuple[str, ...]) -> list[Requirement]:
    found = []
    lines = declared() if name is None else distribution(name).requires or []
    for line in lines:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras)):
            found.append(requirement)
    return found


def main() -> int:
    pinned: dict[str, str] = {}
    pending: list[tuple[str | None, tuple[str, ...]]] = [(None, ())]
    seen: set[tuple[str | None, tuple[str, ...]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for requirement in requirements(name, extras):
            key = canonicalize_name(requirement.name)
            try:
                pinned[key] = distribution(requirement.name).version
            except PackageNotFoundError:
                print(f"{requirement} is not installed: run make install", file=sys.stderr)
                return 1
            pending.append((requirement.name, tuple(sorted(requirement.extras))))
    print("# Exact versions CI installs: `make install` applies them (pip install -c).")
    print("# Regenerate with `make constraints` after changing pyproject.toml's dependencies.")
    for key in sorted(pinned):
        print(f"{key}=={pinned[key]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
