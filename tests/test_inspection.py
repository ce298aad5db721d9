"""Inspection helpers: environment check and JSONB table status, safe when the server is down."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hacs_models import BaseResource, Patient
from hacs_persistence import get_generic_table_status, verify_database_environment
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.migrations import get_migration_status
from tests.factories import ADMIN

ROOT = Path(__file__).resolve().parents[1]


class Specimen(BaseResource):
    resource_type: str = "InspectionSpecimen"
    status: str | None = None


async def test_verify_database_environment_reports_server_and_source(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    env = await verify_database_environment()
    assert env["database_url_source"] == "DATABASE_URL"
    assert env["environment_variables"]["DATABASE_URL"] == "set"
    assert env["environment_variables"]["HACS_DATABASE_URL"] == "not set"
    connection = env["connection_test"]
    assert connection["success"] is True
    assert connection["postgresql_version"].startswith("PostgreSQL ")
    major = int(connection["postgresql_version"].split()[1].split(".")[0])
    assert major >= 15
    assert connection["database_name"] == database_url.rsplit("/", 1)[1].split("?")[0]
    assert connection["ssl"] is False
    assert all(env["hacs_schemas"].values())
    assert isinstance(env["recommendations"], list)


async def test_verify_database_environment_with_a_down_server_masks_the_password() -> None:
    env = await verify_database_environment("postgresql://hacs:pa55word@127.0.0.1:1/db")
    assert env["connection_test"]["success"] is False
    assert "pa55word" not in str(env)
    assert env["database_url_source"] == "argument"
    assert env["recommendations"]


async def test_generic_table_status_counts_by_type_largest_first(database_url: str) -> None:
    empty = await get_generic_table_status(database_url)
    assert empty["table_exists"] is True and empty["total_resources"] == 0
    async with await create_postgres_adapter(database_url, kind="jsonb") as adapter:
        for _ in range(3):
            await adapter.save(Patient(full_name="P"), ADMIN)
        specimen = await adapter.save(Specimen(status="available"), ADMIN)
        await adapter.save(Specimen(status="available"), ADMIN)
        await adapter.delete(Specimen, specimen.id, ADMIN)
    status = await get_generic_table_status(database_url)
    assert status["total_resources"] == 4
    assert status["resource_types_count"] == 2
    assert list(status["resource_breakdown"].items()) == [("Patient", 3), ("InspectionSpecimen", 1)]
    assert status["earliest_record"] <= status["latest_record"]


async def test_generic_table_status_on_a_down_server_reports_an_error() -> None:
    status = await get_generic_table_status("postgresql://u:pa55word@127.0.0.1:1/db")
    assert status["table_exists"] is False and "pa55word" not in status["error"]


def test_two_processes_migrating_at_once_are_safe(empty_database_url: str) -> None:
    script = (
        "import asyncio, sys\n"
        "from hacs_persistence.migrations import run_migration\n"
        "sys.exit(0 if asyncio.run(run_migration(sys.argv[1])) else 1)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_database_url],
            cwd=ROOT,
            env=dict(os.environ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    status = asyncio.run(get_migration_status(empty_database_url))
    assert status["migration_complete"] is True
    assert status["total_tables"] == status["expected_tables"]
