"""Where the real FHIR corpus is, for the tests that check it (read in place, never copied).

The corpus (Synthea transaction Bundles, Synthea Bulk Data NDJSON and the HL7 R4 examples, in
the folders ``synthea/``, ``bulk-ndjson-10-patients/`` and ``hl7-examples/``) is not part of the
repository: it is ``HACS_FHIR_DATA``, else ``shared/data/fhir`` beside the checkout
(``<repo>/../shared/data/fhir``) or beside one of its parent folders (a checkout in a
worktree or CI folder one level down), the nearest that exists. docs/fhir.md says how to get it.

Without it, the tests that need it are skipped with the reason in the terminal summary (a
section of its own, not only a ``s``), and under CI (``CI=true``) they fail instead: CI must
never pass without having run them. Every other FHIR test runs on tests/fhir_fixtures.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["FHIR_DATA", "beside_checkout", "pytest_terminal_summary", "require_fhir_data"]

_REPO = Path(__file__).resolve().parents[1]


def beside_checkout(*parts: str) -> Path:
    """``shared/data/<parts>`` beside the checkout or beside the nearest parent that has it."""
    for parent in _REPO.parents:
        candidate = parent.joinpath("shared", "data", *parts)
        if candidate.is_dir():
            return candidate
    return _REPO.parent.joinpath("shared", "data", *parts)


_BESIDE = beside_checkout("fhir")
_CONFIGURED = os.environ.get("HACS_FHIR_DATA")
FHIR_DATA = Path(_CONFIGURED).expanduser() if _CONFIGURED else _BESIDE
_FOLDERS = ("synthea", "bulk-ndjson-10-patients", "hl7-examples")

_SKIP_PREFIX = "Needs the real FHIR corpus: "


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing_reason() -> str | None:
    missing = [name for name in _FOLDERS if not (FHIR_DATA / name).is_dir()]
    if not missing:
        return None
    source = "HACS_FHIR_DATA" if _CONFIGURED else "shared/data/fhir beside the checkout"
    return (
        f"the real FHIR corpus is not at {FHIR_DATA} ({source}; missing: {', '.join(missing)}). "
        "Set HACS_FHIR_DATA to a folder with synthea/, bulk-ndjson-10-patients/ and "
        "hl7-examples/ (docs/fhir.md, 'Sample data', says where to get them)."
    )


def require_fhir_data() -> None:
    """Skip (loudly) or, under CI, fail a test that needs the real corpus when it is absent."""
    reason = _missing_reason()
    if reason is None:
        return
    if _in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(_SKIP_PREFIX + reason)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A section of its own for the corpus tests that did not run (hooked in by conftest)."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if _SKIP_PREFIX in _skip_reason(report)
    ]
    if not skipped:
        return
    reason = _missing_reason() or "the real FHIR corpus is missing."
    terminalreporter.section("FHIR corpus missing", sep="!", red=True, bold=True)
    terminalreporter.line(
        f"{len(skipped)} tests that check the real FHIR corpus were SKIPPED, not passed: "
        f"{reason} Under CI (CI=true) they fail instead.",
        red=True,
    )
