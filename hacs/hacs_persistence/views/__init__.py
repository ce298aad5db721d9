"""SQL on FHIR v2 views: ViewDefinitions compiled to PostgreSQL views in ``hacs_views``.

``create_view(adapter, definition)`` creates ``hacs_views.<name>``; ``view_rows(adapter,
definition)`` yields its rows (dicts keyed by column name) from one SQL SELECT;
``drop_view(adapter, name)``. ``compile_view`` gives the SQL. Invalid or unsupported
definitions raise :class:`ViewDefinitionError`. See ``docs/views.md``.
"""

from __future__ import annotations

from hacs_persistence.views.api import (
    VIEW_ACTION,
    create_view,
    drop_view,
    sync_fhir_resources,
    view_name,
    view_rows,
)
from hacs_persistence.views.compiler import FHIR_RESOURCES, CompiledView, compile_view
from hacs_persistence.views.definition import ViewDefinition, load_definition
from hacs_persistence.views.errors import ViewDefinitionError

__all__ = [
    "FHIR_RESOURCES",
    "VIEW_ACTION",
    "CompiledView",
    "ViewDefinition",
    "ViewDefinitionError",
    "compile_view",
    "create_view",
    "drop_view",
    "load_definition",
    "sync_fhir_resources",
    "view_name",
    "view_rows",
]
