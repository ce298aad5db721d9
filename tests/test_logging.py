"""Logging: the libraries print nothing by themselves, expected outcomes are not warnings, and
the `hacs` command is quiet unless asked (`-v` INFO, `-vv` DEBUG).

The stderr checks run in subprocesses: pytest's own log capture puts a handler on the root
logger, which would hide Python's last-resort handler (what printed the warnings before).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hacs_auth import get_auth_manager
from hacs_auth.errors import InsufficientPermissionError
from hacs_cli.common import ExitCode
from hacs_cli.logs import LOGGERS
from hacs_cli.main import app
from hacs_models import UnknownResourceTypeError
from hacs_persistence.errors import (
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    InvalidQueryError,
    PermissionDeniedError,
    ResourceNotFoundError,
    SchemaNotMigratedError,
    StoredDocumentError,
    UniqueViolationError,
    VersionConflictError,
)
from hacs_persistence.ops.observability import outcome_level

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("hacs_models", "hacs_auth", "hacs_persistence", "hacs_tools")
MISSING = "patient-00000000"


def _env() -> dict[str, str]:
    env = dict(os.environ)  # conftest removed DATABASE_URL; a test may set it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "hacs"), env.get("PYTHONPATH")]))
    return env


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )


def _hacs(*args: str) -> subprocess.CompletedProcess[str]:
    return _python("import sys\nfrom hacs_cli.main import app\nsys.exit(app())", *args)


def test_every_library_package_logs_through_a_null_handler() -> None:
    done = _python(
        f"""
        import logging
        for name in {LIBRARIES!r}:
            __import__(name)
            handlers = logging.getLogger(name).handlers
            assert any(isinstance(h, logging.NullHandler) for h in handlers), name
        """
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "exc",
    [
        ResourceNotFoundError("Patient", MISSING),
        PermissionDeniedError("no patient:read"),
        InsufficientPermissionError("patient:read"),
        VersionConflictError("Patient", MISSING, 1, 2),
        UniqueViolationError("taken"),
        InvalidQueryError("unknown field"),
        UnknownResourceTypeError("Unknown resource type 'Observaton'"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_expected_outcomes_are_logged_at_info(exc: BaseException) -> None:
    assert outcome_level(exc) == logging.INFO


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseUnavailableError("down"),
        DatabaseTimeoutError("slow"),
        SchemaNotMigratedError("not migrated"),
        StoredDocumentError("Patient", []),
        RuntimeError("bug"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_faults_are_logged_at_warning(exc: BaseException) -> None:
    assert outcome_level(exc) == logging.WARNING


def test_a_missing_resource_through_the_tool_prints_nothing(database_url: str) -> None:
    done = _python(
        """
        import sys
        from hacs_auth import Actor, acting_as
        from hacs_tools import configure_tools, read_resource

        actor = Actor(id="dr_smith", name="Dr Smith", role="physician",
                      permissions=["patient:read"])
        with configure_tools(sys.argv[1]), acting_as(actor):
            result = read_resource(resource_id=sys.argv[2], resource_type="Patient")
        assert result.error == "not_found", result
        print(result.error)
        """,
        database_url,
        MISSING,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "not_found\n"
    assert done.stderr == ""  # was: "hacs read Patient: ResourceNotFoundError in 9.38 ms"


def test_the_cli_is_quiet_by_default_and_logs_with_verbose(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A denial: the token's actor may read patients, not observations.
    token = get_auth_manager().create_access_token("dr_smith", "physician", ["patient:read"])
    monkeypatch.setenv("HACS_TOKEN", token)
    # DATABASE_URL, not --database-url: token verification checks the revocations of the
    # configured database before the command's own check.
    monkeypatch.setenv("DATABASE_URL", database_url)
    args = ("export", "--type", "Observation")

    quiet = _hacs(*args)
    assert quiet.returncode == ExitCode.FAILED, quiet.stderr
    # Only the command's own one-line error, no log record (was: "hacs search Observation:
    # PermissionDeniedError in 3.21 ms" from Python's last-resort handler).
    assert quiet.stderr.startswith("Error: ") and quiet.stderr.count("\n") == 1, quiet.stderr

    verbose = _hacs("-v", *args)
    assert verbose.returncode == ExitCode.FAILED
    assert "DEBUG" not in verbose.stderr


def test_verbose_shows_info_and_very_verbose_debug(empty_database_url: str, tmp_path: Path) -> None:
    quiet = _hacs("--database-url", empty_database_url, "db", "upgrade", "0001")
    assert quiet.returncode == ExitCode.OK, quiet.stderr
    assert quiet.stderr == ""

    # -v: Alembic's INFO lines say which migrations ran.
    verbose = _hacs("-v", "--database-url", empty_database_url, "db", "upgrade", "0002")
    assert verbose.returncode == ExitCode.OK, verbose.stderr
    assert "INFO alembic.runtime.migration: Running upgrade 0001 -> 0002" in verbose.stderr
    assert "DEBUG" not in verbose.stderr

    # -vv: every adapter operation too, with its outcome (never an id or content).
    debug = _hacs("-vv", "--database-url", empty_database_url, "db", "upgrade")
    assert debug.returncode == ExitCode.OK, debug.stderr
    patient = tmp_path / "patient.json"
    patient.write_text('{"resourceType": "Patient", "id": "p1", "gender": "female"}')
    imported = _hacs("-vv", "--database-url", empty_database_url, "import", str(patient))
    assert imported.returncode == ExitCode.OK, imported.stderr
    assert "DEBUG hacs_persistence.operations: hacs save_many -: success in " in imported.stderr
    assert "p1" not in imported.stderr.replace(str(patient), "")


def test_verbose_in_process_does_not_pile_up_handlers(database_url: str) -> None:
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["-v", "--database-url", database_url, "db", "status"])
        assert result.exit_code == ExitCode.OK, result.output
    assert all(len(logging.getLogger(name).handlers) <= 2 for name in LOGGERS)
    runner.invoke(app, ["--database-url", database_url, "db", "status"])
    for name in LIBRARIES:
        importlib.import_module(name)
        # Back to the library's own NullHandler only, propagating to the application's logging.
        logger = logging.getLogger(name)
        assert [type(h) for h in logger.handlers] == [logging.NullHandler], name
        assert logger.propagate and logger.level == logging.NOTSET
