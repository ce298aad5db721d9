"""Another project's distribution of our package names is detected on import and by doctor.

The conflicting distributions are fakes: ``*.dist-info`` folders (METADATA, RECORD, optionally
top_level.txt) written into a temporary folder put on the path, as pip would leave them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hacs_cli.doctor import distribution_check
from hacs_persistence.distributions import (
    PACKAGES,
    conflicting_distributions,
    named_conflicts,
    overwritten_files,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def fake_distribution(
    folder: Path, name: str, version: str, packages: list[str], *, top_level: bool = True
) -> Path:
    """A ``NAME-VERSION.dist-info`` in ``folder`` claiming ``packages`` (files in its RECORD)."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    record = [f"{package}/__init__.py,," for package in packages]
    record += [f"{info.name}/{part},," for part in ("METADATA", "RECORD", "top_level.txt")]
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    if top_level:
        (info / "top_level.txt").write_text("\n".join(packages) + "\n", encoding="utf-8")
    return info


def _import_in_subprocess(extra_path: Path | None) -> subprocess.CompletedProcess[str]:
    path = [str(ROOT / "hacs"), *([str(extra_path)] if extra_path else [])]
    code = "import warnings; warnings.simplefilter('always'); import hacs_persistence"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_hacs_persistence_warns_about_the_other_projects_distribution(
    tmp_path: Path,
) -> None:
    clean = _import_in_subprocess(None)
    assert clean.returncode == 0 and "DistributionConflictWarning" not in clean.stderr

    fake_distribution(tmp_path, "hacs-persistence", "0.4.3", ["hacs_persistence"])
    fake_distribution(tmp_path, "hacs-auth", "0.4.3", ["hacs_auth"])
    result = _import_in_subprocess(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "DistributionConflictWarning" in result.stderr
    assert "hacs-persistence 0.4.3" in result.stderr and "hacs-auth 0.4.3" in result.stderr
    assert "pip uninstall -y hacs-auth hacs-persistence" in result.stderr
    assert "reinstall hacs" in result.stderr


def test_any_distribution_shipping_our_packages_is_found_by_the_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert conflicting_distributions() == []
    # Another name, no top_level.txt: only its RECORD says it ships hacs_tools.
    fake_distribution(tmp_path, "acme-clinical", "2.0", ["hacs_tools", "acme"], top_level=False)
    fake_distribution(tmp_path, "hacs-core", "0.4.3", ["hacs_core"])
    fake_distribution(tmp_path, "unrelated", "1.0", ["unrelated"])
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {c.name: c for c in conflicting_distributions()}
    assert set(found) == {"acme-clinical", "hacs-core"}
    assert found["acme-clinical"].packages == ("hacs_tools",)
    assert found["hacs-core"].location == str(tmp_path)
    # The cheap check of the import only knows the other project's names.
    assert [c.name for c in named_conflicts()] == ["hacs-core"]
    assert "hacs_cli" in PACKAGES


def test_doctor_fails_on_a_conflicting_distribution_and_says_how_to_fix_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hacs_cli.main import app

    fake_distribution(tmp_path, "hacs-models", "0.4.3", ["hacs_models"])
    monkeypatch.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["doctor", "--database-url", database_url, "--json"])
    assert result.exit_code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    [conflict] = report["distribution_conflicts"]
    assert (conflict["name"], conflict["version"]) == ("hacs-models", "0.4.3")
    assert conflict["packages"] == ["hacs_models"]
    assert "pip uninstall -y hacs-models" in report["distribution_advice"]

    result = runner.invoke(app, ["doctor", "--database-url", database_url])
    assert result.exit_code == 1
    assert "conflict: hacs-models 0.4.3" in result.stdout
    assert "pip uninstall -y hacs-models" in " ".join(result.stdout.split())


def _record_hash(content: bytes) -> str:
    digest = hashlib.sha256(content).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_files_of_hacs_that_another_install_overwrote_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed hacs (not editable): its RECORD holds the hash of every file it wrote.
    info = fake_distribution(tmp_path, "hacs", "0.1.0", [])
    package = tmp_path / "hacs_models"
    package.mkdir()
    kept, replaced = package / "base.py", package / "__init__.py"
    kept.write_bytes(b"# ours\n")
    replaced.write_bytes(b"# the other project's\n")
    record = [
        f"hacs_models/base.py,{_record_hash(b'# ours' + bytes([10]))},7",
        f"hacs_models/__init__.py,{_record_hash(b'# ours, too' + bytes([10]))},12",
        "hacs_models/gone.py,sha256=AAAA,4",
        "hacs_models/__pycache__/base.cpython-311.pyc,,",
    ]
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert overwritten_files() == ["hacs_models/__init__.py", "hacs_models/gone.py"]
    check = distribution_check()
    assert check["distribution_conflicts"] == []
    assert "reinstall hacs" in check["distribution_advice"]
