"""`hacs export --out` writes patient data to a private, new file and never through a symlink."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hacs_cli.main import app

runner = CliRunner()
VICTIM_TEXT = "do not overwrite me\n"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> str:
    """A database with two patients, imported through the CLI."""
    data = tmp_path / "in" / "Patient.ndjson"
    data.parent.mkdir()
    lines = [
        {"resourceType": "Patient", "id": f"pat-{n}", "name": [{"family": f"Fam{n}"}]}
        for n in (1, 2)
    ]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = invoke("--database-url", database_url, "import", str(data))
    assert result.exit_code == 0, result.stdout + result.stderr
    return database_url


@pytest.fixture
def umask() -> Iterator[None]:
    # The widest umask (0): a file created with the default mode would be world-readable.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def export(url: str, out: Path, *extra: str) -> Result:
    return invoke("--database-url", url, "export", "--type", "Patient", "--out", str(out), *extra)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    victim.chmod(0o644)
    return victim


def test_export_file_is_mode_0600_whatever_the_umask(
    seeded: str, tmp_path: Path, umask: None
) -> None:
    for mask in (0, 0o277):
        os.umask(mask)
        out = tmp_path / f"patients-{mask}.ndjson"
        result = export(seeded, out)
        assert result.exit_code == 0, result.stderr
        assert _mode(out) == 0o600
        assert len(out.read_text().splitlines()) == 2


def test_a_symlink_planted_at_the_old_partial_path_is_never_followed(
    seeded: str, tmp_path: Path, umask: None
) -> None:
    victim = _victim(tmp_path)
    out = tmp_path / "patients.ndjson"
    planted = tmp_path / ".patients.ndjson.partial"
    planted.symlink_to(victim)
    result = export(seeded, out)
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == VICTIM_TEXT and _mode(victim) == 0o644
    assert planted.is_symlink() and planted.readlink() == victim
    assert not out.is_symlink() and _mode(out) == 0o600
    assert "Fam1" in out.read_text()
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"in", "victim.txt", ".patients.ndjson.partial", "patients.ndjson"}


def test_an_existing_target_is_kept_unless_forced_and_a_symlink_there_is_replaced(
    seeded: str, tmp_path: Path, umask: None
) -> None:
    victim = _victim(tmp_path)
    out = tmp_path / "patients.ndjson"
    out.symlink_to(victim)
    result = export(seeded, out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.is_symlink() and victim.read_text() == VICTIM_TEXT

    result = export(seeded, out, "--force")
    assert result.exit_code == 0, result.stderr
    # The link itself was replaced by the export; what it pointed at is untouched.
    assert not out.is_symlink() and _mode(out) == 0o600
    assert victim.read_text() == VICTIM_TEXT and _mode(victim) == 0o644

    before = out.read_text()
    result = export(seeded, out)
    assert result.exit_code == 2 and out.read_text() == before


def test_a_failed_export_leaves_nothing_behind(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    result = invoke("--database-url", seeded, "export", "--patient", "nobody", "--out", str(out))
    assert result.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
