"""A normal install works: the sdist and the wheel built from it, installed into a fresh venv.

The sdist is built from a copy of the checkout's files (``git ls-files``), the wheel from the
sdist (as ``pip install hacs-*.tar.gz`` does), and the wheel is installed, at the versions of
``constraints.txt``, into a new virtual environment under a temporary directory. Every command
then runs from another temporary directory, without ``PYTHONPATH``: nothing of the checkout is
reachable, so the Alembic scripts and the user guide must come from inside the package. The
database is the suite's real PostgreSQL (URL without a password, ``PGPASSFILE`` for it).

The agent extras are installed the same way into a second venv (``hacs[mcp,langgraph]`` from
the same wheel): `hacs mcp` serves the venv's own SDK client over stdio, and a LangGraph graph
checkpoints through ``HacsCheckpointSaver`` and keeps an item in ``HacsStore``. The first venv,
without the extras, shows that both name the extra to install.

Building and installing take a minute or so (pip's cache holds the dependencies after the first
run); the wheel and each venv are built once for this module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from hacs_auth import get_auth_manager
from hacs_cli.common import ExitCode
from hacs_mcp import TOOL_NAMES
from hacs_persistence.migrations import head_revision
from hacs_persistence.schema import metadata
from tests.conftest import db_connect

ROOT = Path(__file__).resolve().parents[1]
TABLES = len(metadata.tables)
INSTALL_TIMEOUT = 900
COMMAND_TIMEOUT = 300
REVISIONS = sorted(p.name for p in (ROOT / "alembic" / "versions").glob("*.py"))


@dataclass(frozen=True)
class Install:
    """A venv with only the wheel installed, and a working directory outside the checkout."""

    venv: Path
    workdir: Path
    wheel: Path
    sdist: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self) -> dict[str, str]:
        hidden = {"PYTHONPATH", "DATABASE_URL", "HACS_DATABASE_URL", "VIRTUAL_ENV", "PYTHONHOME"}
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(argv),
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert done.returncode == 0, (
                f"{' '.join(argv)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
            )
        return done

    def hacs(self, url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin("hacs"), "--database-url", url, *args, ok=ok)

    def python(self, code: str, *, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.bin("python"), "-c", textwrap.dedent(code), ok=ok)


def _run(argv: Sequence[str], cwd: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _copy_checkout(target: Path) -> None:
    """The checkout's files as git sees them (tracked, plus new ones not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@dataclass(frozen=True)
class Built:
    """The sdist and the wheel built from it, once for the module."""

    base: Path
    wheel: Path
    sdist: Path

    def install(self, name: str, requirement: str) -> Install:
        """A fresh venv with ``requirement`` installed by plain pip from the package registry."""
        venv = self.base / f"venv-{name}"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        _run(
            [
                *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
                *("install", "--quiet", "-c", str(ROOT / "constraints.txt"), requirement),
            ]
        )
        workdir = self.base / f"work-{name}"
        workdir.mkdir()
        return Install(venv=venv, workdir=workdir, wheel=self.wheel, sdist=self.sdist)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("wheel-install")
    source, dist = base / "source", base / "dist"
    source.mkdir()
    _copy_checkout(source)
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), str(source)])
    (sdist,) = dist.glob("hacs-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(sdist)])
    (wheel,) = dist.glob("hacs-*.whl")
    return Built(base=base, wheel=wheel, sdist=sdist)


@pytest.fixture(scope="module")
def install(built: Built) -> Install:
    """The wheel alone: none of the optional extras."""
    return built.install("plain", str(built.wheel))


@pytest.fixture(scope="module")
def install_extras(built: Built) -> Install:
    """The wheel with both agent extras, as a user installs them: ``hacs[mcp,langgraph]``."""
    return built.install("extras", f"{built.wheel}[mcp,langgraph]")


def test_wheel_and_sdist_carry_the_migrations_the_guide_and_the_license(install: Install) -> None:
    wheel = set(zipfile.ZipFile(install.wheel).namelist())
    packaged = {
        "hacs_persistence/_alembic/env.py",
        "hacs_persistence/_alembic/script.py.mako",
        "hacs_persistence/_guide/connect_postgres.md",
        *(f"hacs_persistence/_alembic/versions/{name}" for name in REVISIONS),
    }
    assert packaged <= wheel
    assert "hacs-0.1.0.dist-info/licenses/LICENSE" in wheel
    # docs/ is mapped for the guide alone.
    assert not {n for n in wheel if n.startswith("hacs_persistence/_guide/")} - packaged
    with tarfile.open(install.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"alembic.ini", "LICENSE", "constraints.txt", "docs/connect_postgres.md"} <= names
    assert {f"alembic/versions/{name}" for name in REVISIONS} <= names


def test_the_venv_runs_the_installed_package_not_the_checkout(install: Install) -> None:
    done = install.python(
        """
        import hacs_persistence
        from hacs_persistence.migrations import script_location
        from hacs_persistence.ops.demo import guide_path
        print(hacs_persistence.__file__)
        print(script_location())
        print(guide_path())
        """
    )
    lines = done.stdout.split()
    assert all(line.startswith(str(install.venv)) for line in lines), lines
    assert lines[1].endswith("hacs_persistence/_alembic")


def test_db_commands_doctor_and_the_python_api(install: Install, empty_database_url: str) -> None:
    url = empty_database_url
    install.hacs(url, "db", "upgrade")
    status = install.hacs(url, "db", "status")
    assert f"{TABLES}/{TABLES}" in status.stdout
    assert install.hacs(url, "db", "check").returncode == 0
    report = json.loads(install.hacs(url, "doctor", "--json").stdout)
    assert report["connection_test"]["success"], report
    assert all(report["hacs_schemas"].values()), report
    done = install.python(
        f"""
        import asyncio
        from hacs_persistence import create_postgres_adapter, get_migration_status, run_migration

        async def main():
            assert await run_migration({url!r})
            status = await get_migration_status({url!r})
            assert status["migration_complete"], status
            adapter = await create_postgres_adapter({url!r})
            await adapter.close()
            print("api ok", status["current_revision"])

        asyncio.run(main())
        """
    )
    assert f"api ok {head_revision()}" in done.stdout


def test_demo_import_and_export(install: Install, database_url: str) -> None:
    demo = install.run(install.bin("hacs"), "demo", "--database-url", database_url)
    assert "Running 7 blocks of connect_postgres.md" in demo.stdout
    assert "Patient & Observation persisted" in demo.stdout

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "wheel-check-1",
                    "name": [{"family": "Wheelcheck", "given": ["Ada"]}],
                    "birthDate": "1970-01-01",
                }
            }
        ],
    }
    (install.workdir / "bundle.json").write_text(json.dumps(bundle))
    install.hacs(database_url, "import", "bundle.json")
    install.hacs(database_url, "export", "--type", "Patient", "--out", "patients.ndjson")
    exported = [
        json.loads(line)
        for line in (install.workdir / "patients.ndjson").read_text().splitlines()
        if line
    ]
    assert any(
        name.get("family") == "Wheelcheck" for patient in exported for name in patient["name"]
    ), exported


def test_alembic_with_the_packaged_ini(install: Install, empty_database_url: str) -> None:
    ini = install.run(install.bin("hacs"), "db", "alembic-ini").stdout
    (install.workdir / "alembic.ini").write_text(ini)
    x_url = f"database_url={empty_database_url}"
    install.run(install.bin("alembic"), "-x", x_url, "upgrade", "head")
    current = install.run(install.bin("alembic"), "-x", x_url, "current")
    assert f"{head_revision()} (head)" in current.stdout + current.stderr


# -- the agent extras ----------------------------------------------------------------------


def test_without_the_extras_hacs_mcp_and_the_langgraph_module_name_the_extra(
    install: Install,
) -> None:
    absent = install.python(
        """
        import importlib.util, json
        names = ("mcp", "langgraph", "langchain_core")
        print(json.dumps([n for n in names if importlib.util.find_spec(n) is None]))
        """
    )
    # Otherwise the messages below would not be the ones a user without the extras sees.
    assert json.loads(absent.stdout) == ["mcp", "langgraph", "langchain_core"]

    served = install.hacs("postgresql://hacs@127.0.0.1:1/never", "mcp", ok=False)
    assert served.returncode == ExitCode.USAGE, served.stderr
    assert "pip install 'hacs[mcp]'" in " ".join(served.stderr.split())

    imported = install.python("import hacs_persistence.langgraph", ok=False)
    assert imported.returncode == 1
    last = imported.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: hacs_persistence.langgraph needs LangGraph"), last
    assert last.endswith("pip install 'hacs[langgraph]'"), last


async def test_with_the_extras_hacs_mcp_serves_the_tools_over_stdio(
    install_extras: Install, database_url: str
) -> None:
    venv = install_extras
    assert "--transport" in venv.run(venv.bin("hacs"), "mcp", "--help").stdout
    token = get_auth_manager().create_access_token(
        "dr-wheel", "physician", ("patient:read", "patient:write")
    )
    patient = {"resource_type": "Patient", "id": "wheel-mcp-1", "name": [{"family": "Wheel"}]}
    # The venv's own SDK client starts the venv's `hacs mcp`, as an MCP host would.
    done = venv.python(
        f"""
        import asyncio, json, os
        import hacs_mcp
        from mcp import ClientSession, StdioServerParameters, stdio_client

        async def main():
            params = StdioServerParameters(
                command={venv.bin("hacs")!r},
                args=["--database-url", {database_url!r}, "mcp"],
                env={{**os.environ, "HACS_TOKEN": {token!r}}},
            )
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                tools = sorted(tool.name for tool in (await s.list_tools()).tools)
                saved = await s.call_tool("save_resource", {{"resource": {patient!r}}})
                found = await s.call_tool(
                    "search_resources",
                    {{"resource_type": "Patient", "filters": {{"id": "wheel-mcp-1"}}}},
                )
            print(json.dumps({{
                "module": hacs_mcp.__file__,
                "tools": tools,
                "saved": saved.structured_content,
                "found": found.structured_content,
            }}))

        asyncio.run(main())
        """
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(venv.venv)), result["module"]
    assert result["tools"] == sorted(TOOL_NAMES)
    assert result["saved"]["success"], result["saved"]
    assert result["saved"]["actor_id"] == "dr-wheel", result["saved"]
    assert result["found"]["data"]["count"] == 1, result["found"]
    conn = await db_connect(database_url)
    try:
        audited = await conn.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events WHERE actor_id = $1 AND action = $2",
            "dr-wheel",
            "create",
        )
    finally:
        await conn.close()
    assert audited == 1


async def test_with_the_extras_a_graph_checkpoints_and_the_store_keeps_an_item(
    install_extras: Install, database_url: str
) -> None:
    venv = install_extras
    done = venv.python(
        f"""
        import asyncio, json
        from typing import TypedDict

        import hacs_persistence.langgraph
        from langgraph.graph import END, START, StateGraph
        from hacs_models import Actor
        from hacs_persistence import create_postgres_adapter
        from hacs_persistence.langgraph import HacsCheckpointSaver, HacsStore

        class Count(TypedDict):
            total: int

        def add(state: Count) -> dict:
            return {{"total": state["total"] + 1}}

        def graph():
            builder = StateGraph(Count)
            builder.add_node("add", add)
            builder.add_edge(START, "add")
            builder.add_edge("add", END)
            return builder

        async def main():
            adapter = await create_postgres_adapter({database_url!r})
            try:
                agent = Actor(
                    name="wheel-agent", role="agent",
                    permissions=["agentsession:*", "memoryblock:*"],
                )
                config = {{"configurable": {{"thread_id": "wheel-thread"}}}}
                saver = HacsCheckpointSaver(adapter, agent)
                await graph().compile(checkpointer=saver).ainvoke({{"total": 41}}, config)
                # A new saver reads the thread back from the tables.
                again = HacsCheckpointSaver(adapter, agent)
                state = await graph().compile(checkpointer=again).aget_state(config)
                store = HacsStore(adapter, agent)
                await store.aput(("wheel", "memories"), "m1", {{"text": "prefers mornings"}})
                item = await store.aget(("wheel", "memories"), "m1")
                print(json.dumps({{
                    "module": hacs_persistence.langgraph.__file__,
                    "state": state.values,
                    "item": item.value,
                }}))
            finally:
                await adapter.close()

        asyncio.run(main())
        """
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(venv.venv)), result["module"]
    assert result["state"] == {"total": 42}
    assert result["item"] == {"text": "prefers mornings"}
    conn = await db_connect(database_url)
    try:
        checkpoints = await conn.fetchval(
            "SELECT count(*) FROM hacs_agents.langgraph_checkpoints WHERE thread_id = $1",
            "wheel-thread",
        )
        writes = await conn.fetchval(
            "SELECT count(*) FROM hacs_audit.audit_events "
            "WHERE action = 'checkpoint.write' AND actor_name = 'wheel-agent'"
        )
    finally:
        await conn.close()
    assert checkpoints >= 1
    assert writes >= 1
