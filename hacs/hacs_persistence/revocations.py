"""Compatibility import path: the code lives in ``hacs_persistence.access.revocations``."""

from hacs_persistence.access.revocations import *  # noqa: F403
