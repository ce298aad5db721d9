"""The rules for the real FHIR corpus: loud without it, a failure under CI, no machine paths.

The corpus tests run in a pytest session of their own here, pointed at a folder that does not
exist (``HACS_FHIR_DATA``), once as a developer would and once as CI does (``CI=true``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The corpus test of tests/test_fhir_data.py for one data set, and the same on the fixtures.
SELECTED = "test_every_resource_round_trips_losslessly and (synthea or fixture)"


def _session(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(HACS_FHIR_DATA=str(tmp_path / "nowhere"), PYTHONPATH=str(ROOT / "hacs"))
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:pytest_alembic",
         "tests/test_fhir_data.py", "-k", SELECTED],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_without_the_corpus_its_tests_are_skipped_loudly_and_the_fixture_ones_run(
    tmp_path: Path,
) -> None:
    result = _session(tmp_path, ci=False)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b1 passed, 1 skipped\b", out), out[-2000:]
    assert "FHIR corpus missing" in out
    assert "tests that check the real FHIR corpus were SKIPPED, not passed" in out
    assert f"not at {tmp_path / 'nowhere'} (HACS_FHIR_DATA" in " ".join(out.split())


def test_under_ci_a_missing_corpus_fails_its_tests(tmp_path: Path) -> None:
    result = _session(tmp_path, ci=True)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert re.search(r"\b1 failed, 1 passed\b", out), out[-2000:]
    assert "CI=true and the real FHIR corpus is not at" in out


def test_the_docs_name_no_machine_path() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    machine = re.compile(r"(?<![\w.~])/(work|home|root|Users)/|(?<!\.\./)\bshared/data")
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for page in pages
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if machine.search(line)
    ]
    assert found == []
    # The one mention of the corpus's default folder is relative to the checkout.
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "`../shared/data/fhir` relative to the checkout" in configuration
