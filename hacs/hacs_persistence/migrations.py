"""Compatibility import path: the code lives in ``hacs_persistence.ops.migrations``."""

from hacs_persistence.ops.migrations import *  # noqa: F403
