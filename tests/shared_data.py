"""Where the shared FHIR test data is (read in place, never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fhir"

# HACS_FHIR_DATA, else shared/ beside the checkout, else the workplace's shared folder (where a
# clone elsewhere still finds it).
FHIR_DATA = next(
    (
        Path(candidate)
        for candidate in (os.environ.get("HACS_FHIR_DATA"), _BESIDE, "/work/shared/data/fhir")
        if candidate and Path(candidate).is_dir()
    ),
    _BESIDE,
)


def require_fhir_data() -> None:
    """Fail loudly without the data: a skipped conformance test hides what it checks."""
    if not FHIR_DATA.is_dir():
        pytest.fail(
            f"The shared FHIR data is not at {FHIR_DATA}: set HACS_FHIR_DATA to its folder."
        )
