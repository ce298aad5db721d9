"""The adapters the guide names: ``create_postgres_adapter`` and the classes it returns.

This is the public import path; the code lives in ``hacs_persistence.adapters``.
"""

from hacs_persistence.adapters.factory import create_postgres_adapter
from hacs_persistence.adapters.granular import GranularPostgreSQLAdapter
from hacs_persistence.adapters.postgres import (
    ActingAdapter,
    HistoryEntry,
    PostgreSQLAdapter,
    SavedBatch,
)

__all__ = [
    "ActingAdapter",
    "GranularPostgreSQLAdapter",
    "HistoryEntry",
    "PostgreSQLAdapter",
    "SavedBatch",
    "create_postgres_adapter",
]
