"""Compatibility import path: the code lives in ``hacs_persistence.query.repositories``."""

from hacs_persistence.query.repositories import *  # noqa: F403
