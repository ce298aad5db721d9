"""pytest-alembic's built-in checks of the migration history, run against real PostgreSQL.

Single head, upgrade, model definitions match the DDL, up/down consistency, and the experimental
downgrade-leaves-no-trace and all-models-register. Each runs on a fresh, empty database of the
suite's server, handed to ``alembic/env.py`` as an ``AsyncEngine`` (pytest-alembic passes it, or
a sync ``Connection`` of it, through ``config.attributes["connection"]``).

The tests are called here by name instead of through the plugin's ``--test-alembic``
collection: pytest-alembic 0.13.1's collector does not work with pytest 9.2 (it sets
``TestCollector._nodeid``, which pytest no longer has, and so breaks the collection of the
whole suite), hence ``-p no:pytest_alembic`` in ``[tool.pytest.ini_options]``. Its test
functions and its ``runner`` are its public API and work as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_alembic import Config, MigrationContext, runner
from pytest_alembic import tests as builtin
from pytest_alembic.tests import experimental
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hacs_persistence.migrations import alembic_config

BUILTIN_TESTS: dict[str, Callable[[MigrationContext], Any]] = {
    "single_head_revision": builtin.test_single_head_revision,
    "upgrade": builtin.test_upgrade,
    "model_definitions_match_ddl": builtin.test_model_definitions_match_ddl,
    "up_down_consistency": builtin.test_up_down_consistency,
    "downgrade_leaves_no_trace": experimental.test_downgrade_leaves_no_trace,
    # Its guess of the models' package also finds ops.migrations (which imports the metadata):
    # name the package, as its documentation says to when the guess fails.
    "all_models_register_on_metadata": functools.partial(
        experimental.test_all_models_register_on_metadata, model_package="hacs_persistence.schema"
    ),
}


@pytest.fixture
def alembic_engine(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AsyncEngine]:
    """An async engine on a fresh database; NullPool, since every step runs on its own loop.

    all-models-register re-creates the engine from ``engine.url`` in a subprocess, through an
    ``alembic.ini`` option, where the ``%2F`` of an encoded ``?host=/socket/dir`` is taken for
    ConfigParser interpolation: the socket directory goes in ``PGHOST`` (read by asyncpg and
    inherited by the subprocess) and the password is already in ``PGPASSFILE``.
    """
    url = make_url(empty_database_url).set(drivername="postgresql+asyncpg")
    socket_dir = url.query.get("host")
    if socket_dir:
        monkeypatch.setenv("PGHOST", str(socket_dir))
        url = url.difference_update_query(["host"])
    engine = create_async_engine(url, poolclass=pool.NullPool)
    yield engine
    engine.sync_engine.dispose()


@pytest.fixture
def alembic_runner(alembic_engine: AsyncEngine) -> Iterator[MigrationContext]:
    """pytest-alembic's context over the hacs scripts, as ``hacs db upgrade`` runs them."""
    config = Config.from_raw_config(alembic_config())
    # pytest-alembic documents async engines but annotates ``engine`` with the sync types only.
    with runner(config=config, engine=alembic_engine) as context:  # type: ignore[arg-type]
        yield context


@pytest.mark.parametrize("name", BUILTIN_TESTS)
def test_pytest_alembic(name: str, alembic_runner: MigrationContext) -> None:
    BUILTIN_TESTS[name](alembic_runner)


def test_every_builtin_test_of_pytest_alembic_runs_here() -> None:
    """A pytest-alembic release that adds a built-in test makes this fail until it runs here."""
    shipped = {
        name.removeprefix("test_")
        for module in (builtin, experimental)
        for name in getattr(module, "__all__", dir(module))
        if name.startswith("test_")
    }
    assert shipped == set(BUILTIN_TESTS)
