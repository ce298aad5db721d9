"""Compatibility import path: the code lives in ``hacs_persistence.access.revocations``.

This name is that module itself (not a copy of its names), so ``monkeypatch.setattr`` and
module attributes behave the same through either path.
"""

import sys

from hacs_persistence.access import revocations as _module
from hacs_persistence.access.revocations import *  # noqa: F403 (what type checkers see)

sys.modules[__name__] = _module
