"""The ``db`` marker: every test that reaches PostgreSQL has it, so ``make test-fast`` needs none.

tests/conftest.py sets the marker from each test's fixtures and refuses, in a test without it, to
start a server; these tests run in the fast set and prove both halves.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hacs_persistence.db.embedded import ensure_embedded_server, stop_embedded
from tests.pgservers import embedded_bin_dir, running_server


def test_every_collected_test_whose_fixtures_reach_the_server_is_marked_db(
    request: pytest.FixtureRequest,
) -> None:
    # In `pytest -m "not db"` the marked ones are gone already: any left here were missed.
    unmarked = [
        item.nodeid
        for item in request.session.items
        if "server_url" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("db") is None
    ]
    assert not unmarked, unmarked[:5]
    assert request.node.get_closest_marker("db") is None


def test_a_test_without_the_marker_cannot_start_the_embedded_server() -> None:
    # A short path, so that only the guard (not the socket path length check) can refuse it.
    data_dir = Path("/tmp") / f"hacs-guard-{os.getpid()}"
    try:
        with pytest.raises(RuntimeError, match="not marked db"):
            ensure_embedded_server(data_dir, announce=False)
        assert not data_dir.exists()  # refused before initdb
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        Path(f"{data_dir}.lock").unlink(missing_ok=True)


def test_a_test_without_the_marker_cannot_start_a_throwaway_server() -> None:
    with pytest.raises(RuntimeError, match="not marked db"), running_server(embedded_bin_dir()):
        pass
