"""hacs_persistence: PostgreSQL storage for hacs resources (typed tables, JSONB, audit, history).

Public entry points: ``create_postgres_adapter`` and the adapters (``adapter``), the migration
API (``migrations``) and the inspection helpers re-exported here.

The first thing an import does is look for another project's distribution of the same package
names (``hacs_persistence.distributions``): it warns with ``DistributionConflictWarning`` before
the imports below fail on files that project overwrote.
"""

# ruff: noqa: E402 (the conflict check runs before the other imports, on purpose)
from __future__ import annotations

import logging as _logging

from hacs_persistence.distributions import DistributionConflictWarning, warn_on_conflicts

warn_on_conflicts()

from hacs_persistence.access.audit import audit_context
from hacs_persistence.adapter import (
    GranularPostgreSQLAdapter,
    HistoryEntry,
    PostgreSQLAdapter,
    SavedBatch,
    create_postgres_adapter,
)
from hacs_persistence.db.config import DatabaseSettings, load_settings, mask_url
from hacs_persistence.errors import (
    ConfigurationError,
    ConnectTimeoutError,
    DatabaseTimeoutError,
    DatabaseUnavailableError,
    HacsPersistenceError,
    InvalidQueryError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    ResourceNotFoundError,
    ResourceValidationError,
    SchemaNotMigratedError,
    StoredDocumentError,
    VersionConflictError,
)
from hacs_persistence.ops.inspection import get_generic_table_status, verify_database_environment
from hacs_persistence.ops.migrations import get_migration_status, run_migration
from hacs_persistence.ops.observability import enable_opentelemetry
from hacs_persistence.query.repositories import repository_for, session_scope
from hacs_persistence.query.search import Page
from hacs_persistence.storage.erasure import PurgeReport

__all__ = [
    "ConfigurationError",
    "ConnectTimeoutError",
    "DatabaseSettings",
    "DatabaseTimeoutError",
    "DatabaseUnavailableError",
    "DistributionConflictWarning",
    "GranularPostgreSQLAdapter",
    "HacsPersistenceError",
    "HistoryEntry",
    "InvalidQueryError",
    "OutcomeUnknownError",
    "Page",
    "PermissionDeniedError",
    "PostgreSQLAdapter",
    "PurgeReport",
    "ReferentialIntegrityError",
    "ResourceNotFoundError",
    "ResourceValidationError",
    "SavedBatch",
    "SchemaNotMigratedError",
    "StoredDocumentError",
    "VersionConflictError",
    "audit_context",
    "create_postgres_adapter",
    "enable_opentelemetry",
    "get_generic_table_status",
    "get_migration_status",
    "load_settings",
    "mask_url",
    "repository_for",
    "run_migration",
    "session_scope",
    "verify_database_environment",
]

# A library leaves logging to the application: without this handler, Python's last-resort
# handler would print this package's WARNING and ERROR records on stderr.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
