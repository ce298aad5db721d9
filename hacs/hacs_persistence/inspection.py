"""Compatibility import path: the code lives in ``hacs_persistence.ops.inspection``."""

from hacs_persistence.ops.inspection import *  # noqa: F403
