"""Where the files hacs ships besides its code are: the Alembic scripts and the user guide.

An installed wheel (or sdist) carries them inside the package, as ``hacs_persistence/_alembic``
and ``hacs_persistence/_guide/connect_postgres.md`` (``setup.py`` maps the top-level ``alembic/``
and ``docs/`` folders there); they are found through ``importlib.resources``. A checkout (or an
editable install, or ``PYTHONPATH=hacs``) has no such copies: there they are the checkout's own
``alembic/`` and ``docs/``, next to ``alembic.ini``.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from hacs_persistence.errors import ConfigurationError

__all__ = ["MissingPackageFileError", "alembic_scripts", "checkout_root", "user_guide"]

PACKAGE = "hacs_persistence"


class MissingPackageFileError(ConfigurationError):
    """A file hacs ships (migrations, guide) is missing: a broken install or checkout."""


def checkout_root() -> Path:
    """The source tree this package runs from (``hacs/hacs_persistence/ops`` -> the root)."""
    return Path(__file__).resolve().parents[3]


def _packaged(name: str) -> Path | None:
    resource = files(PACKAGE).joinpath(name)
    # Alembic needs real files: an installed wheel is a folder, never a zip.
    return Path(str(resource)) if resource.is_dir() or resource.is_file() else None


def alembic_scripts() -> Path:
    """The folder holding ``env.py`` and ``versions/``: packaged, else the checkout's."""
    configured = os.environ.get("HACS_ALEMBIC_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [p for p in (_packaged("_alembic"),) if p is not None]
    candidates.append(checkout_root() / "alembic")
    for candidate in candidates:
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise MissingPackageFileError(
        f"Cannot find the hacs Alembic scripts (env.py and versions/; looked in {tried}). "
        "Reinstall hacs from its wheel or checkout (`pip install --force-reinstall hacs-*.whl`), "
        "or set HACS_ALEMBIC_DIR to a folder holding them."
    )


def user_guide() -> Path:
    """``connect_postgres.md``, the guide ``hacs demo`` runs: packaged, else the checkout's."""
    candidates = [p for p in (_packaged("_guide/connect_postgres.md"),) if p is not None]
    candidates.append(checkout_root() / "docs" / "connect_postgres.md")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MissingPackageFileError(
        f"Cannot find the user guide connect_postgres.md (looked in "
        f"{', '.join(str(c) for c in candidates)}); reinstall hacs from its wheel or checkout."
    )
