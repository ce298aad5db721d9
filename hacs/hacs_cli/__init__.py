"""The ``hacs`` command line (Typer + Rich): migrations, status, doctor, demo, generated docs."""

from __future__ import annotations

from hacs_cli.main import app

__all__ = ["app"]
