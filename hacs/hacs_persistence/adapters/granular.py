"""The granular adapter: typed, indexed tables per resource type; documents in the versions."""

from __future__ import annotations

from typing import ClassVar

from hacs_persistence.adapters.postgres import PostgreSQLAdapter

__all__ = ["GranularPostgreSQLAdapter"]


class GranularPostgreSQLAdapter(PostgreSQLAdapter):
    """Stores types with a typed table there (key columns for SQL users) and the rest as JSONB.

    The API is the adapter's; only the storage route differs, chosen per type by the mapping.
    """

    typed_storage: ClassVar[bool] = True
