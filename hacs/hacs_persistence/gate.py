"""Compatibility import path: the code lives in ``hacs_persistence.access.gate``."""

from hacs_persistence.access.gate import *  # noqa: F403
