"""Unknown resource types are mistakes: `hacs export --type Observaton` is a usage error naming
the closest type, and the importer refuses a resource whose type hacs does not know.

"Known" is every FHIR R4/R4B resource type (a type without a hacs model is stored in the JSONB
fallback) and every type a hacs model registers.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import io
import json
import pkgutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hacs_cli.common import ExitCode
from hacs_cli.main import app
from hacs_models import Actor, UnknownResourceTypeError, registered_resource_types
from hacs_models.fhir import FHIR_RESOURCE_TYPES, known_resource_types, unknown_resource_type
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.interchange import export_type_ndjson, import_paths
from tests.conftest import db_connect

ADMIN = Actor(name="unknown-types-test", role="system", permissions=["admin:*"])
runner = CliRunner()
UNREACHABLE = "postgresql://hacs@127.0.0.1:1/hacs"


def _r4b_resource_types() -> set[str]:
    """The resource types fhir.resources' R4B models define, found without our list."""
    import fhir.resources.R4B as r4b
    from fhir.resources.R4B.resource import Resource

    found = set()
    for module_info in pkgutil.iter_modules(r4b.__path__):
        module = importlib.import_module(f"{r4b.__name__}.{module_info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Resource)
                and value.__module__ == module.__name__
                and value.get_resource_type() == name
            ):
                found.add(name)
    return found - {"Resource", "DomainResource"}


def test_every_fhir_r4b_resource_type_is_known() -> None:
    r4b = _r4b_resource_types()
    assert len(r4b) > 130  # the reading above found the models
    assert r4b <= FHIR_RESOURCE_TYPES, sorted(r4b - FHIR_RESOURCE_TYPES)
    assert set(registered_resource_types()) <= known_resource_types()


def test_the_message_names_the_closest_known_type() -> None:
    assert str(unknown_resource_type("Observaton")) == (
        "Unknown resource type 'Observaton': did you mean 'Observation'?"
    )
    assert isinstance(unknown_resource_type("Observaton"), UnknownResourceTypeError)
    assert "did you mean" not in str(unknown_resource_type("NoSuchType"))


@pytest.mark.parametrize("out", [False, True])
def test_export_of_an_unknown_type_is_a_usage_error(tmp_path: Path, out: bool) -> None:
    target = tmp_path / "out.ndjson"
    # An unreachable database: the type is refused before anything connects.
    args = ["--database-url", UNREACHABLE, "export", "--type", "Observaton"]
    result = runner.invoke(app, [*args, *(["--out", str(target)] if out else [])])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr == (
        "Error: --type: Unknown resource type 'Observaton': did you mean 'Observation'?\n"
    )
    assert result.stdout == ""
    assert not target.exists()


def test_export_of_a_fhir_type_without_a_model_still_works(database_url: str) -> None:
    result = runner.invoke(app, ["--database-url", database_url, "export", "--type", "Basic"])
    assert result.exit_code == ExitCode.OK, result.output
    assert "Exported 0 resources (Basic)" in result.stderr


async def test_the_library_export_refuses_an_unknown_type(database_url: str) -> None:
    async with await create_postgres_adapter(database_url) as adapter:
        with pytest.raises(UnknownResourceTypeError, match="did you mean 'Observation'"):
            await export_type_ndjson(adapter, "Observaton", ADMIN, io.StringIO())


async def _stored(url: str) -> dict[str, int]:
    conn = await db_connect(url)
    try:
        patients = await conn.fetchval("SELECT count(*) FROM hacs_core.patients")
        documents = await conn.fetch(
            "SELECT resource_type, count(*) AS n FROM public.hacs_resources GROUP BY 1"
        )
    finally:
        await conn.close()
    return {"Patient": int(patients), **{r["resource_type"]: int(r["n"]) for r in documents}}


def _write(path: Path, *resources: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


async def test_import_refuses_unknown_types_per_file(database_url: str, tmp_path: Path) -> None:
    bad_lines = _write(
        tmp_path / "bad.ndjson",
        {"resourceType": "Patient", "id": "p-bad", "gender": "female"},
        {"resourceType": "NoSuchType", "id": "x1"},
    )
    bad_entry = tmp_path / "bad-bundle.json"
    bad_entry.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {"resource": {"resourceType": "Patient", "id": "p-bundle"}},
                    {"resource": {"resourceType": "Observaton", "id": "o1", "status": "final"}},
                ],
            }
        ),
        encoding="utf-8",
    )
    single = _write(tmp_path / "single.json", {"resourceType": "NoSuchType", "id": "x2"})
    good = _write(
        tmp_path / "good.ndjson",
        {"resourceType": "Patient", "id": "p-good", "gender": "male"},
        # A FHIR type without a hacs model is known: stored in the JSONB fallback.
        {"resourceType": "Basic", "id": "b1", "code": {"text": "note"}},
    )
    async with await create_postgres_adapter(database_url) as adapter:
        summary = await import_paths([bad_lines, bad_entry, single, good], adapter, ADMIN)
    results = {Path(f.path).name: f for f in summary.files}
    assert results["good.ndjson"].status == "imported"
    assert [results[n].reason for n in ("bad.ndjson", "single.json")] == [
        "Unknown resource type 'NoSuchType' (not a FHIR R4 or hacs resource type).",
        "Unknown resource type 'NoSuchType' (not a FHIR R4 or hacs resource type).",
    ]
    assert results["bad.ndjson"].line == 2
    assert (
        results["bad-bundle.json"]
        .describe()
        .endswith(
            "bad-bundle.json: entry[1]: Unknown resource type 'Observaton': did you mean "
            "'Observation'?"
        )
    )
    assert summary.count("failed") == 3
    # Nothing of a failed file is stored (its Patient neither), the good file is.
    assert await _stored(database_url) == {"Patient": 1, "Basic": 1}


def test_cli_import_reports_the_unknown_type(database_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "typo.ndjson", {"resourceType": "NoSuchType", "id": "x3"})
    result = runner.invoke(app, ["--database-url", database_url, "import", str(path)])
    assert result.exit_code == ExitCode.FAILED, result.output
    assert f"{path}:1: Unknown resource type 'NoSuchType'" in result.stdout
    assert asyncio.run(_stored(database_url)) == {"Patient": 0}
