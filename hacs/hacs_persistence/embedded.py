"""Compatibility import path: the code lives in ``hacs_persistence.db.embedded``."""

from hacs_persistence.db.embedded import *  # noqa: F403
