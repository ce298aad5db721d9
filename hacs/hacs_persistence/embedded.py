"""Compatibility import path: the code lives in ``hacs_persistence.db.embedded``.

This name is that module itself (not a copy of its names), so ``monkeypatch.setattr`` and
module attributes behave the same through either path.
"""

import sys

from hacs_persistence.db import embedded as _module
from hacs_persistence.db.embedded import *  # noqa: F403 (what type checkers see)

sys.modules[__name__] = _module
