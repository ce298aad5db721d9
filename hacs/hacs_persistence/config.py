"""Compatibility import path: the code lives in ``hacs_persistence.db.config``."""

from hacs_persistence.db.config import *  # noqa: F403
