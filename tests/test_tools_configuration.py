"""The tools' database is configuration, never an argument: no tool can be pointed elsewhere.

Every public tool function is enumerated (the package's and every tool domain's), with the JSON
schema an agent framework derives from its signature; none may take a connection parameter, and
passing one is refused before anything connects. The python block of docs/configuration.md runs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from pydantic import ConfigDict, create_model

import hacs_tools
import hacs_tools.domains
import hacs_tools.domains.database as database_tools
from hacs_auth import Actor, acting_as
from hacs_persistence.errors import ConfigurationError
from hacs_tools import (
    HACSResult,
    aread_resource,
    configure_tools,
    read_resource,
    save_resource,
    tool_configuration,
)
from tests.docs_blocks import _fenced as fenced_blocks

# Anything that would let the caller choose where, or as whom, a tool connects.
CONNECTION_PARAMETERS = {
    "database_url",
    "db_url",
    "url",
    "dsn",
    "uri",
    "connection_string",
    "host",
    "hostname",
    "port",
    "socket",
    "user",
    "username",
    "password",
    "passfile",
    "database",
    "dbname",
    "db",
    "connection",
    "conn",
    "engine",
    "adapter",
    "server",
    "sslmode",
    "settings",
}
KNOWN_TOOLS = {
    "read_resource",
    "save_resource",
    "update_resource",
    "delete_resource",
    "search_resources",
    "aread_resource",
    "asave_resource",
    "aupdate_resource",
    "adelete_resource",
    "asearch_resources",
}
PATIENT = {"resource_type": "Patient", "id": "patient-1", "full_name": "Ana Lima"}


def public_tools() -> dict[str, Callable[..., Any]]:
    """Every public function returning a HACSResult: the package's and every tool domain's."""
    found: dict[str, Callable[..., Any]] = {}
    modules = [hacs_tools, hacs_tools.domains] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(hacs_tools.domains.__path__, "hacs_tools.domains.")
    ]
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) and get_type_hints(obj).get("return") is HACSResult:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


TOOLS = public_tools()


def json_schema(tool: Callable[..., Any]) -> dict[str, Any]:
    """The argument schema a framework (LangChain, an MCP server...) derives from a signature."""
    hints = get_type_hints(tool)
    fields: dict[str, Any] = {
        name: (hints[name], ... if param.default is inspect.Parameter.empty else param.default)
        for name, param in inspect.signature(tool).parameters.items()
    }
    model = create_model(
        f"{tool.__name__}_arguments",
        __config__=ConfigDict(arbitrary_types_allowed=True, extra="forbid"),
        **fields,
    )
    schema: dict[str, Any] = model.model_json_schema()
    return schema


@pytest.fixture
def clinician() -> Actor:
    return Actor(id="dr_a", name="Dr A", role="physician", permissions=["patient:*"])


def test_the_enumeration_finds_every_tool() -> None:
    assert {tool.__name__ for tool in TOOLS.values()} >= KNOWN_TOOLS


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_no_tool_signature_takes_a_connection_parameter(name: str) -> None:
    parameters = inspect.signature(TOOLS[name]).parameters
    assert not set(parameters) & CONNECTION_PARAMETERS, name
    kinds = {p.kind for p in parameters.values()}
    # **kwargs or *args would let a framework pass any argument through.
    assert inspect.Parameter.VAR_KEYWORD not in kinds, name
    assert inspect.Parameter.VAR_POSITIONAL not in kinds, name


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_no_tool_schema_exposes_a_connection_parameter(name: str) -> None:
    schema = json_schema(TOOLS[name])
    assert set(schema["properties"]) == set(inspect.signature(TOOLS[name]).parameters)
    assert not set(schema["properties"]) & CONNECTION_PARAMETERS, schema
    assert schema.get("additionalProperties") is False


@pytest.mark.parametrize("argument", ["database_url", "dsn", "host", "password"])
async def test_a_connection_argument_is_refused_before_anything_connects(
    monkeypatch: pytest.MonkeyPatch, clinician: Actor, argument: str
) -> None:
    opened: list[Any] = []

    async def record(*args: Any, **kwargs: Any) -> Any:
        opened.append((args, kwargs))
        raise AssertionError("a tool connected")

    monkeypatch.setattr(database_tools, "create_postgres_adapter", record)
    target = {argument: "postgresql://attacker@127.0.0.1:22/postgres"}
    with acting_as(clinician):
        with pytest.raises(TypeError, match=argument):
            read_resource("patient-1", "Patient", **target)
        with pytest.raises(TypeError, match=argument):
            save_resource(PATIENT, **target)
        with pytest.raises(TypeError, match=argument):
            await aread_resource("patient-1", "Patient", **target)
    assert opened == []


async def test_tools_use_the_configured_database(database_url: str, clinician: Actor) -> None:
    with configure_tools(database_url), acting_as(clinician):
        assert (await database_tools.asave_resource(PATIENT)).success
        read = await aread_resource("patient-1", "Patient")
    assert read.success, read
    with configure_tools("postgresql://nobody@127.0.0.1:1/hacs"), acting_as(clinician):
        elsewhere = await aread_resource("patient-1", "Patient")  # nothing listens on port 1
    assert elsewhere.error == "database_unavailable", elsewhere


async def test_without_configuration_tools_use_the_environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str, clinician: Actor
) -> None:
    assert tool_configuration().database_url is None
    monkeypatch.setenv("DATABASE_URL", database_url)
    with acting_as(clinician):
        saved = await database_tools.asave_resource(PATIENT)
    assert saved.success, saved


def test_configure_tools_restores_the_previous_configuration() -> None:
    before = tool_configuration()
    with configure_tools("postgresql://app@db.example.org/clinic", kind="jsonb") as configured:
        assert tool_configuration() is configured
        assert (configured.database_url, configured.kind) == (
            "postgresql://app@db.example.org/clinic",
            "jsonb",
        )
        with configure_tools(connection_pool_size=3):
            assert tool_configuration().settings == {"connection_pool_size": 3}
        assert tool_configuration() is configured
    assert tool_configuration() is before


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"database_url": "mysql://app:hunter2-pw@db/clinic"}, "scheme"),
        ({"database_url": "postgresql://app:hunter2-pw@db/clinic?sslmode=sometimes"}, "sslmode"),
        ({"kind": "sqlite"}, "kind"),
        ({"connection_pool_size": 0}, "connection_pool_size"),
        ({"database_urll": "postgresql://app@db/clinic"}, "database_urll"),
    ],
)
def test_configure_tools_checks_its_values_at_once(arguments: dict[str, Any], problem: str) -> None:
    before = tool_configuration()
    with pytest.raises(ConfigurationError, match=problem) as info:
        configure_tools(**arguments)
    assert "hunter2-pw" not in str(info.value)
    assert tool_configuration() is before  # a refused configuration changes nothing


def test_the_configuration_never_shows_its_password() -> None:
    with configure_tools("postgresql://app:hunter2-pw@db.example.org/clinic") as configured:
        for rendered in (repr(configured), str(configured), repr(tool_configuration())):
            assert "hunter2-pw" not in rendered
            assert "app:***@db.example.org" in rendered


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    # Each test starts from, and leaves, the default configuration.
    assert tool_configuration().database_url is None
    yield
    assert tool_configuration().database_url is None


def test_the_configuration_page_block_configures_the_tools(
    monkeypatch: pytest.MonkeyPatch, database_url: str, clinician: Actor
) -> None:
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    [code] = [
        body
        for lang, body, _line in fenced_blocks(page)
        if lang == "python" and "configure_tools" in body
    ]
    monkeypatch.setenv("DATABASE_URL", database_url)
    with configure_tools():  # puts back the default configuration afterwards
        exec(compile(code, "docs/configuration.md", "exec"), {})
        configured = tool_configuration()
        assert (configured.database_url, configured.kind) == (database_url, "granular")
        assert configured.settings == {"connection_pool_size": 5}
        monkeypatch.delenv("DATABASE_URL")  # from now on only the configuration says where
        with acting_as(clinician):
            assert save_resource(PATIENT).success
