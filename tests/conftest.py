"""Test fixtures: a real PostgreSQL (embedded by default, or HACS_TEST_DATABASE_URL).

The schema is built once per session by running the Alembic migrations into a template database;
every test that needs isolation gets its own database cloned from that template, dropped afterwards.

The server starts only when a test asks for it (``server_url`` and every fixture built on it).
Such tests, and those that start a server of their own (``pytest.mark.db`` by hand), carry the
``db`` marker; ``pytest -m "not db"`` (``make test-fast``) runs the rest without PostgreSQL, and
a test without the marker that starts a server in this process (or asks hacs for the embedded
one) fails saying so (tests/test_markers.py).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from hacs_persistence import PostgreSQLAdapter, create_postgres_adapter
from hacs_persistence.db import embedded
from hacs_persistence.db.engine import close_engines
from tests import pgservers
from tests.shared_data import pytest_terminal_summary  # noqa: F401 (the FHIR corpus summary)

if TYPE_CHECKING:
    from hacs_persistence.db.embedded import EmbeddedLease

TEMPLATE = f"hacs_test_template_{os.getpid()}"
# A fresh strong signing secret per session: a fixed test value would be a known secret.
JWT_SECRET = secrets.token_urlsafe(48)


_LEASES: list[EmbeddedLease] = []


def _server_url() -> str:
    """The suite's server, as a superuser (the tests create and drop databases).

    The URL carries no password: the password is in a libpq password file named by
    ``PGPASSFILE``, as docs/configuration.md recommends, so the URL can be passed to
    ``hacs --database-url`` (which refuses passwords: the process list would show them).
    """
    configured = os.environ.get("HACS_TEST_DATABASE_URL")
    if configured:
        return _password_to_passfile(configured)
    from hacs_persistence.db.embedded import lease_embedded_server, suite_data_dir

    # A lease: at the end of the session the server is stopped if this session or a concurrent
    # one started it and no other session still holds it (pytest_sessionfinish).
    server, lease = lease_embedded_server(suite_data_dir())
    _LEASES.append(lease)
    os.environ["PGPASSFILE"] = str(server.passfile)
    return server.url("postgres", "postgres", with_password=False)


def _password_to_passfile(url: str) -> str:
    """Move the password of ``HACS_TEST_DATABASE_URL`` into a private password file."""
    parsed = make_url(url)
    if parsed.password is None:
        return url
    password = str(parsed.password)
    if ":" in password or "\\" in password:
        # asyncpg reads password files without libpq's escapes.
        raise RuntimeError(
            "HACS_TEST_DATABASE_URL: a password with ':' or '\\' cannot go into a password "
            "file; use a URL without a password and set PGPASSFILE yourself."
        )
    descriptor, name = tempfile.mkstemp(prefix="hacs-test-pgpass-")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"*:*:*:{parsed.username}:{password}\n")
    os.environ["PGPASSFILE"] = name
    return parsed.set(password=None).render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def admin_connect(url: str) -> asyncpg.Connection:
    """A raw asyncpg connection to the server's maintenance database."""
    return await db_connect(with_database(url, "postgres"))


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``db`` every test whose fixtures reach the suite's server, however indirectly."""
    for item in items:
        if "server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def _refuse_server(*_args: object, **_kwargs: object) -> NoReturn:
    raise RuntimeError(
        "This test starts PostgreSQL but is not marked db, so `make test-fast` would run it: "
        "mark it @pytest.mark.db (or its module `pytestmark = pytest.mark.db`)."
    )


@pytest.fixture(autouse=True)
def _no_server_unless_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process starts only (a server started by a child process is not seen): the embedded
    # server, even one this process already started, and the throwaway servers of pgservers.
    if request.node.get_closest_marker("db") is not None:
        return
    monkeypatch.setattr(embedded, "_started", {})
    monkeypatch.setattr(embedded, "_start_locked", _refuse_server)
    monkeypatch.setattr(pgservers._Runner, "run", _refuse_server)


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the PostgreSQL server the suite runs against."""
    return _server_url()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the embedded test server if this session started it and is its last user."""
    while _LEASES:
        _LEASES.pop().release()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Tests pass URLs explicitly; a developer's own DATABASE_URL must never leak into them.
    for name in ("DATABASE_URL", "HACS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HACS_JWT_SECRET", JWT_SECRET)
    # By default every verification consults the configured database's revocations; tests have
    # no configured database (above), so each one starts with checks off and turns on the list
    # it tests (tests/test_token_revocation.py covers the default itself).
    from hacs_auth import set_revocation_list

    set_revocation_list(None)
    yield
    set_revocation_list(None)


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    """A database migrated to head with `alembic upgrade head`, used as the clone template."""
    from hacs_persistence.migrations import upgrade

    admin = await admin_connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        url = with_database(server_url, TEMPLATE)
        await upgrade(url)
        yield url
        await close_engines()
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    finally:
        await admin.close()


async def _fresh_database(server_url: str, template: str | None) -> AsyncIterator[str]:
    name = f"hacs_t_{uuid.uuid4().hex[:12]}"
    admin = await admin_connect(server_url)
    try:
        clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{clause}')
        yield with_database(server_url, name)
        await close_engines()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    async for url in _fresh_database(server_url, TEMPLATE):
        yield url


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database with no hacs schema at all (for migration tests)."""
    async for url in _fresh_database(server_url, None):
        yield url


async def db_connect(url: str) -> asyncpg.Connection:
    """A raw asyncpg connection to the database of ``url`` (for assertions in SQL)."""
    parsed = make_url(url)
    query = dict(parsed.query)
    return await asyncpg.connect(
        host=query.get("host") or parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the test's database."""
    conn = await db_connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(params=["granular", "jsonb"])
async def adapter(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Any]:
    """Each adapter in turn (typed tables, JSONB only) on a fresh database."""
    created = await create_postgres_adapter(database_url, kind=request.param)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def granular(database_url: str) -> AsyncIterator[PostgreSQLAdapter]:
    """The default (typed tables) adapter on a fresh database."""
    created = await create_postgres_adapter(database_url)
    try:
        yield created
    finally:
        await created.close()
