"""The row codec: the one place where a resource becomes the values of a write, and back.

A ``RowCodec`` belongs to one ``ResourceMapping`` and is built once (``codec_for``). It gives

* the bound parameters of a write statement (``write_params``; the statements are in
  ``statements``),
* the records that ``COPY`` streams into the versions table, the resource's table and the audit
  table (``version_records``, ``row_records``, ``audit_records``),
* the stamping of a saved model with what the database decided (``stamp``, ``stamp_new``), and
  putting a model back as it was when its write fails (``Envelopes``),
* the loading of a stored document into a model (``load``).

Every value is matched to its column by name (``columns``): a record's columns are laid out when
the codec is built, so the order of a column tuple never decides which value lands where, and a
row costs no look-up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import ARRAY

from hacs_models import BaseResource
from hacs_persistence.errors import StoredDocumentError, validation_details
from hacs_persistence.limits import MAPPING_CACHE_SIZE
from hacs_persistence.storage import columns
from hacs_persistence.storage.columns import (
    AUDIT_PARAM_OF,
    ENVELOPE_FIELDS,
    STAMP_FIELDS,
    by_name,
    key_param,
)
from hacs_persistence.storage.mapping import ResourceMapping, model_for

__all__ = [
    "Envelopes",
    "RowCodec",
    "audit_row",
    "codec_for",
    "document_json",
    "stamp",
    "stamp_new",
]

R = TypeVar("R", bound=BaseResource)

# What a stored document is: the text a statement returns, or what JSONB decodes to (the ORM).
Document = str | bytes | Mapping[str, Any]
# The key column values of a resource of a mapping (``KeyResolver.values``).
KeySource = Callable[[ResourceMapping, BaseResource], dict[str, Any]]


def document_json(resource: BaseResource) -> str:
    """The resource as the JSON document stored in ``resource_versions``/``hacs_resources``."""
    return resource.model_dump_json()


class _Records:
    """The layout of one COPY target: which columns hold the same value for a whole batch
    (``fixed``) and which a value of each resource (``varying``), in the order of the records.

    COPY is told the columns in this order, so a record's values need no reordering: the
    column list and every record are built from the same names.
    """

    def __init__(self, what: str, table_columns: Sequence[str], varying: Sequence[str]) -> None:
        unknown = [name for name in varying if name not in table_columns]
        if unknown or len(set(table_columns)) != len(table_columns):
            raise RuntimeError(
                f"{what}: the per-resource columns {unknown} are not in {list(table_columns)} "
                "(or a column is listed twice); fix hacs_persistence.storage.columns."
            )
        self.what = what
        self.fixed = tuple(name for name in table_columns if name not in varying)
        self.varying = tuple(varying)
        self.columns = (*self.fixed, *self.varying)

    def head(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The batch's values of the fixed columns (looked up by name once per batch)."""
        return tuple(by_name(self.fixed, values, self.what).values())


def _values_of(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving the values of ``names`` of a mapping as a tuple (in C: itemgetter)."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda values: (values[name],)
    return lambda values: ()


class RowCodec:
    """How the resources of one mapping become write parameters and COPY records, and back."""

    # The per-resource values of each COPY target, in the order the record generators below
    # append them to a record.
    _VERSION_VARYING = ("id", "document")
    _AUDIT_VARYING = ("resource_id",)

    def __init__(self, mapping: ResourceMapping) -> None:
        self.mapping = mapping
        self.resource_type = mapping.resource_type
        # The class a stored document validates into unless the caller names another.
        self.model: type[BaseResource] = model_for(mapping.resource_type)
        self.key_names = tuple(c.key for c in mapping.key_columns)
        self._key_params = tuple((c.key, key_param(c.key)) for c in mapping.key_columns)
        # The parameters of ``write_params`` that hold a value of the resource itself (the rest
        # are the call's: the ``a_*`` audit parameters and ``p_rt``); a batch statement binds
        # each as an array of the same name (``statements.batch_update_for``).
        self.row_params = ("p_id", "p_doc", *(param for _, param in self._key_params))
        # A resource's key values (a dict by key) as a tuple in the order of ``key_names``.
        self._ordered_keys = _values_of(self.key_names)
        # Array key values go to COPY as lists (a source may give a tuple).
        self._array_keys = frozenset(
            c.key for c in mapping.key_columns if isinstance(c.type, ARRAY)
        )
        self.versions = _Records("version record", columns.VERSION_COLUMNS, self._VERSION_VARYING)
        self.audit = _Records("audit record", columns.AUDIT_COLUMNS, self._AUDIT_VARYING)
        if mapping.typed:
            keys = tuple(c.name for c in mapping.key_columns)  # in the order of key_names
            self.rows = _Records(
                f"{mapping.table.name} record", (*columns.ENVELOPE_COLUMNS, *keys), ("id", *keys)
            )
        else:
            self.rows = _Records(
                f"{mapping.table.name} record",
                (*columns.ENVELOPE_COLUMNS, "document"),
                ("id", "document"),
            )

    # -- write statements ------------------------------------------------------------------

    def write_params(
        self,
        resource: BaseResource,
        audit: Mapping[str, Any],
        keys: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The bound parameters of an insert or update of ``resource``.

        ``audit``: the ``a_*`` parameters (``AccessGate.params``); ``keys``: the key column
        values when the caller resolved them (``KeyResolver``), else they are derived here.
        """
        params = dict(audit)
        params["p_rt"] = self.resource_type
        params.update(self.row_values(resource, keys))
        return params

    def row_values(
        self, resource: BaseResource, keys: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``row_params`` of ``resource`` by name (the per-resource part of a write)."""
        values = self.mapping.key_values(resource) if keys is None else keys
        params = {"p_id": resource.id, "p_doc": document_json(resource)}
        for name, param in self._key_params:
            params[param] = values[name]
        return params  # built in the order of row_params

    # -- COPY records ----------------------------------------------------------------------

    def version_records(
        self, resources: Iterable[BaseResource], now: datetime, actor_id: str
    ) -> Iterator[tuple[Any, ...]]:
        """The first version of each new resource (already stamped: ``stamp_new``)."""
        head = self.versions.head(
            {
                "resource_type": self.resource_type,
                "version": 1,
                "operation": "create",
                "changed_at": now,
                "changed_by": actor_id,
            }
        )
        for resource in resources:
            yield (*head, resource.id, document_json(resource))  # _VERSION_VARYING

    def row_records(
        self,
        resources: Iterable[BaseResource],
        now: datetime,
        actor_id: str,
        keys: KeySource | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """The typed (or JSONB table) row of each new resource.

        ``keys(mapping, resource)`` gives the key column values (``KeyResolver.values``); by
        default they are derived from the resource.
        """
        head = self.rows.head(
            {
                "resource_type": self.resource_type,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": actor_id,
                "updated_by": actor_id,
            }
        )
        if not self.mapping.typed:
            for resource in resources:
                yield (*head, resource.id, document_json(resource))
            return
        mapping = self.mapping
        ordered = self._ordered_keys
        arrays = self._array_keys
        for resource in resources:
            values = mapping.key_values(resource) if keys is None else keys(mapping, resource)
            for name in arrays:
                if values[name] is not None:
                    values[name] = list(values[name])
            yield (*head, resource.id, *ordered(values))

    def audit_records(
        self, resources: Iterable[BaseResource], audit: Mapping[str, Any]
    ) -> Iterator[tuple[Any, ...]]:
        """The success audit row of each created resource (``audit``: the ``a_*`` parameters)."""
        values = audit_row(audit)
        # No result count: a row per resource.
        values.update(resource_type=self.resource_type, outcome="success", result_count=None)
        head = self.audit.head(values)
        for resource in resources:
            yield (*head, resource.id)  # _AUDIT_VARYING

    # -- stored documents ------------------------------------------------------------------

    def load(
        self,
        document: Document,
        model: type[R],
        *,
        position: int = 1,
        page: bool = False,
        resource_type: str | None = None,
    ) -> R:
        """A stored document as a ``model``; ``StoredDocumentError`` (no values) if it no longer
        validates. ``position``/``page`` place it in a page for the error."""
        try:
            if isinstance(document, (str, bytes)):
                return model.model_validate_json(document)
            return model.model_validate(document)
        except ValueError as exc:
            # Not chained: pydantic's own text quotes the stored values (patient data).
            raise StoredDocumentError(
                resource_type or self.resource_type,
                validation_details(exc),
                position=position,
                page=page,
            ) from None


@lru_cache(maxsize=MAPPING_CACHE_SIZE)
def codec_for(mapping: ResourceMapping) -> RowCodec:
    """The codec of a mapping, built once and reused."""
    return RowCodec(mapping)


def audit_row(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The ``a_*`` parameters of a call as the audit columns they fill (who, why, request)."""
    return {column: audit[param] for column, param in AUDIT_PARAM_OF.items()}


# -- the saved model -------------------------------------------------------------------------


def stamp(resource: BaseResource, row: Mapping[str, Any]) -> None:
    """Make ``resource`` the stored one: the version and timestamps of its written ``row``.

    Its id is then a real one too (set), so saving it again is an update, never an insert.
    """
    resource.__dict__.update({name: row[name] for name in STAMP_FIELDS})
    resource.__pydantic_fields_set__.update(ENVELOPE_FIELDS)


def stamp_new(resources: Iterable[BaseResource], now: datetime) -> None:
    """Stamp resources about to be created in one batch (version 1, created now)."""
    for resource in resources:
        stamp(resource, {"version": 1, "created_at": now, "updated_at": now})


class Envelopes:
    """The envelope (id, version, timestamps, which fields are set) of models before a write,
    to put back when it fails: nothing was stored, so the objects must not look stored.

    ``with Envelopes([resource]):`` restores on any exception and re-raises it.
    """

    def __init__(self, resources: Iterable[BaseResource]) -> None:
        self._saved = [
            (
                r,
                {name: r.__dict__[name] for name in ENVELOPE_FIELDS},
                set(r.__pydantic_fields_set__),
            )
            for r in resources
        ]

    def restore(self) -> None:
        """Put every model's envelope back as it was when this was taken."""
        for resource, fields, fields_set in self._saved:
            resource.__dict__.update(fields)
            resource.__pydantic_fields_set__.clear()
            resource.__pydantic_fields_set__.update(fields_set)

    def __enter__(self) -> Envelopes:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.restore()
