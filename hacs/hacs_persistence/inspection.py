"""Compatibility import path: the code lives in ``hacs_persistence.ops.inspection``.

This name is that module itself (not a copy of its names), so ``monkeypatch.setattr`` and
module attributes behave the same through either path.
"""

import sys

from hacs_persistence.ops import inspection as _module
from hacs_persistence.ops.inspection import *  # noqa: F403 (what type checkers see)

sys.modules[__name__] = _module
