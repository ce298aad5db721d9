"""Where an install finds its migrations, and what alembic/env.py accepts as a connection.

tests/test_wheel_install.py proves the same from an installed wheel; these run in the checkout.
"""

from __future__ import annotations

import asyncio
import configparser
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hacs_persistence.db.config import build_connection_target, load_settings
from hacs_persistence.migrations import (
    MigrationError,
    alembic_config,
    alembic_ini,
    get_migration_status,
    script_location,
)
from hacs_persistence.ops.demo import guide_path

ROOT = Path(__file__).resolve().parents[1]
# What only a checkout's alembic.ini needs: the checkout's paths.
CHECKOUT_ONLY = {("alembic", "script_location"), ("alembic", "prepend_sys_path")}


def _options(text: str) -> dict[tuple[str, str], str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return {(s, k): v for s in parser.sections() for k, v in parser.items(s)}


def test_a_checkout_uses_its_own_alembic_folder_and_guide() -> None:
    assert script_location() == ROOT / "alembic"
    assert guide_path() == ROOT / "docs" / "connect_postgres.md"


def test_hacs_alembic_dir_overrides_and_a_missing_folder_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text("")
    monkeypatch.setenv("HACS_ALEMBIC_DIR", str(tmp_path))
    assert script_location() == tmp_path

    import hacs_persistence.ops.resources as resources

    monkeypatch.delenv("HACS_ALEMBIC_DIR")
    monkeypatch.setattr(resources, "checkout_root", lambda: tmp_path / "nowhere")
    with pytest.raises(MigrationError, match="HACS_ALEMBIC_DIR"):
        script_location()


def test_the_written_alembic_ini_is_the_checkouts_but_for_its_paths() -> None:
    written = _options(alembic_ini())
    checkout = _options((ROOT / "alembic.ini").read_text())
    assert written[("alembic", "script_location")] == str(script_location())
    assert {k: v for k, v in written.items() if k not in CHECKOUT_ONLY} == {
        k: v for k, v in checkout.items() if k not in CHECKOUT_ONLY
    }
    # As Alembic reads it (interpolation on): the path comes back as written.
    parser = configparser.ConfigParser()
    parser.read_string(alembic_ini())
    assert parser.get("alembic", "script_location") == str(script_location())


async def test_env_py_migrates_a_sync_connection_inside_the_callers_transaction(
    empty_database_url: str,
) -> None:
    target = build_connection_target(empty_database_url, load_settings())
    engine = create_async_engine(
        target.url, poolclass=pool.NullPool, connect_args=target.connect_args
    )

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection=connection), "head")

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await engine.dispose()
    status = await get_migration_status(empty_database_url)
    assert status["migration_complete"], status


async def test_env_py_refuses_an_async_connection_and_says_how_to_pass_one(
    empty_database_url: str,
) -> None:
    target = build_connection_target(empty_database_url, load_settings())
    engine = create_async_engine(
        target.url, poolclass=pool.NullPool, connect_args=target.connect_args
    )
    try:
        async with engine.connect() as connection:
            config = alembic_config(connection=connection)
            with pytest.raises(TypeError, match="run_sync"):
                await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await engine.dispose()
