"""Where each resource type is stored: its table (typed, or the JSONB fallback) and key columns.

A resource is stored as (a) its full JSON document and (b) for types with a typed table, the key
columns that the table declares, each derived by the source on its column (``Column.info``). Field
lists are never written here: they come from the table metadata. The values of a write and the
loading of a stored document are the row codec's (``storage.codec``), built from a mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import Column, Table

from hacs_models import BaseResource, find_model_class
from hacs_persistence.errors import ResourceValidationError
from hacs_persistence.limits import MAPPING_CACHE_SIZE
from hacs_persistence.schema import TYPED_TABLES, ResourceDocumentTable
from hacs_persistence.schema.base import TypedResourceTable

__all__ = [
    "ResourceMapping",
    "document_mapping",
    "mapping_for",
    "model_for",
]


# eq=False: identity semantics (columns overload ==), so mappings can key caches.
@dataclass(frozen=True, eq=False)
class ResourceMapping:
    """How one resource type is stored: its table (typed or the JSONB fallback) and key columns."""

    resource_type: str
    table: Table
    typed: bool
    key_columns: tuple[Column[Any], ...]
    sources: tuple[Callable[[Any], Any], ...]

    def key_values(self, resource: BaseResource) -> dict[str, Any]:
        """The typed key column values of ``resource`` (empty for the JSONB fallback)."""
        try:
            return {
                column.key: source(resource)
                for column, source in zip(self.key_columns, self.sources, strict=True)
            }
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._underivable(exc) from None

    def key_value(self, resource: BaseResource, key: str) -> Any:
        """One key column's value (None if the table has no such column), without the others:
        the scope and reference checks need one column of each resource, not all of them."""
        source = self._source_of.get(key)
        if source is None:
            return None
        try:
            return source(resource)
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._underivable(exc) from None

    @cached_property
    def _source_of(self) -> dict[str, Callable[[Any], Any]]:
        return {c.key: s for c, s in zip(self.key_columns, self.sources, strict=True)}

    def _underivable(self, exc: Exception) -> ResourceValidationError:
        # Neither the id nor the exception's text (it may quote a value) is shown.
        return ResourceValidationError(
            f"A {self.resource_type} cannot be stored: its indexed columns cannot be derived "
            f"({type(exc).__name__}); check the types of its key elements."
        )

    @property
    def scope_column(self) -> Column[Any] | None:
        """The column that says which patient a row belongs to (patient-scoped access).

        A patient's own row is scoped by its id; other typed rows by ``patient_id``; types
        without either (and the JSONB fallback) are outside every patient compartment.
        """
        if not self.typed:
            return None
        if self.table.name == "patients":
            return self.table.c.id
        return self.table.c.get("patient_id")

    def scope_value(self, resource: BaseResource) -> str | None:
        """The patient id a resource belongs to, as the scope column will hold it."""
        column = self.scope_column
        if column is None:
            return None
        if column.key == "id":
            return resource.id
        value: str | None = self.key_value(resource, column.key)
        return value

    @property
    def filterable(self) -> dict[str, Column[Any]]:
        """Columns a search may filter and sort on: the key columns plus the envelope's."""
        names = (*(c.key for c in self.key_columns), "id", "created_at", "updated_at", "version")
        return {name: self.table.c[name] for name in names if name in self.table.c}


def _typed_table_for(model_cls: type[BaseResource]) -> type[TypedResourceTable] | None:
    # A subclass with its own resource_type (VipPatient(Patient)) lives in its parent's table.
    for cls in model_cls.__mro__:
        if isinstance(cls, type) and issubclass(cls, BaseResource):
            name = cls.model_fields["resource_type"].default
            if isinstance(name, str) and name in TYPED_TABLES:
                return TYPED_TABLES[name]
    return None


def _table(table_cls: type[Any]) -> Table:
    table = table_cls.__table__
    assert isinstance(table, Table)
    return table


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def mapping_for(model_cls: type[BaseResource], *, typed: bool = True) -> ResourceMapping:
    """The mapping of a model class; ``typed=False`` forces the JSONB fallback table."""
    resource_type = model_cls.type_name()
    table_cls = _typed_table_for(model_cls) if typed else None
    if table_cls is None:
        return ResourceMapping(resource_type, _table(ResourceDocumentTable), False, (), ())
    table = _table(table_cls)
    key_columns = tuple(c for c in table.columns if "source" in c.info)
    return ResourceMapping(
        resource_type,
        table,
        True,
        key_columns,
        tuple(c.info["source"] for c in key_columns),
    )


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def document_mapping(resource_type: str) -> ResourceMapping:
    """The JSONB fallback mapping of a type that has no model class (e.g. a FHIR Claim)."""
    return ResourceMapping(resource_type, _table(ResourceDocumentTable), False, (), ())


def model_for(model: type[BaseResource] | str) -> type[BaseResource]:
    """The class for a model class or a resource type name (unmodelled names: BaseResource)."""
    if isinstance(model, str):
        # Not get_model_class: its error suggests close names (difflib), which an import of
        # unmodelled types (Claim, ExplanationOfBenefit) paid on every resource.
        return find_model_class(model) or BaseResource
    return model
