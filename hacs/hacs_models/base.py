"""BaseResource, the root of every stored resource, and the registry of resource classes."""

import difflib
import inspect
import os
import re
from functools import partial
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator
from pydantic.fields import FieldInfo

from ._config import MODEL_CONFIG
from ._time import UtcDatetime, utc_now
from .datatypes import Annotation, Reference

__all__ = [
    "ID_RULE",
    "BaseResource",
    "NotesMixin",
    "UnknownResourceTypeError",
    "find_model_class",
    "get_model_class",
    "is_resource_id",
    "new_resource_id",
    "registered_resource_types",
]

_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REGISTRY: dict[str, type["BaseResource"]] = {}
ID_RULE = "1-64 characters from A-Z, a-z, 0-9, '-' and '.' (a FHIR id)"
"""What a resource id may be, for error messages (which never quote the id itself)."""


def is_resource_id(value: object) -> bool:
    """Whether ``value`` is a valid resource id: FHIR's ``[A-Za-z0-9\\-\\.]{1,64}``."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def new_resource_id(resource_type: str) -> str:
    """Return a fresh id such as ``patient-704ac73d`` for a resource of the given type."""
    return f"{resource_type.lower()}-{os.urandom(4).hex()}"


def _default_id(data: dict[str, Any]) -> str:
    """Id factory of classes without a fixed type: prefix from the validated resource_type."""
    return new_resource_id(data.get("resource_type") or "resource")


class UnknownResourceTypeError(KeyError):
    """Raised by get_model_class for a resource type no class has registered."""

    def __str__(self) -> str:
        """Show the message itself rather than KeyError's quoted repr."""
        return str(self.args[0]) if self.args else ""


class BaseResource(BaseModel):
    """Root of all resources: type, id, timestamps, storage version; unknown elements are kept.

    Each concrete subclass gives ``resource_type`` a default (its type name) and is then
    registered, so stored JSON can be turned back into the right class.
    """

    model_config = MODEL_CONFIG

    resource_type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")
    id: str = Field(default_factory=_default_id)
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    version: int | None = None
    """Storage version, set by the database layer; None until the resource is stored."""

    _type_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a class declaring its own resource_type an id factory for that type.

        Runs before pydantic collects the fields, so the override becomes part of the schema;
        unlike the data-dependent factory it still works when resource_type fails validation.
        """
        super().__init_subclass__(**kwargs)
        own_annotations = inspect.get_annotations(cls)
        if "resource_type" not in own_annotations or "id" in own_annotations:
            return  # the type (or the id field) is inherited or declared by the class itself
        declared = cls.__dict__.get("resource_type")
        type_name = declared.default if isinstance(declared, FieldInfo) else declared
        if isinstance(type_name, str):
            cls.__annotations__["id"] = str
            cls.id = Field(default_factory=partial(new_resource_id, type_name))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Record the class's type name and register it when it declares a new type."""
        super().__pydantic_init_subclass__(**kwargs)
        default = cls.model_fields["resource_type"].default
        if not isinstance(default, str):
            cls._type_name = None  # abstract intermediate class: nothing to register
            return
        cls._type_name = default
        current = _REGISTRY.get(default)
        if current is None or _same_definition(current, cls):
            _REGISTRY[default] = cls
        elif not issubclass(cls, current):
            raise TypeError(
                f"resource_type {default!r} of {cls.__module__}.{cls.__qualname__} is already "
                f"registered by {current.__module__}.{current.__qualname__}; "
                "declare a different resource_type"
            )
        # A subclass that keeps its parent's type stays that type; the parent stays registered.

    @classmethod
    def type_name(cls) -> str:
        """Return the resource type of this class (its resource_type default), e.g. "Patient"."""
        if cls._type_name is None:
            raise TypeError(f"{cls.__qualname__} has no fixed resource_type; it is abstract")
        return cls._type_name

    @field_validator("resource_type")
    @classmethod
    def _check_resource_type(cls, value: str) -> str:
        """Reject data of another resource type than the class being validated."""
        expected = cls._type_name
        if expected is not None and value != expected:
            raise ValueError(
                f"resource_type {value!r} does not match {cls.__qualname__} "
                f"(expected {expected!r}); use get_model_class({value!r}) to pick the class"
            )
        return value

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        """Enforce FHIR id rules: 1-64 characters from A-Z, a-z, 0-9, '-' and '.'."""
        if not is_resource_id(value):
            # The value is not quoted: an id may be (or carry) a person's identifier.
            raise ValueError(f"invalid id: it must be {ID_RULE}")
        return value

    def to_reference(self, display: str | None = None) -> Reference:
        """Return a Reference ("Type/id") pointing at this resource."""
        return Reference(
            reference=f"{self.resource_type}/{self.id}", type=self.resource_type, display=display
        )


class NotesMixin(BaseModel):
    """Adds the FHIR ``note`` element (annotations) and ``add_note`` to a resource.

    List it before BaseResource in the bases so the base fields come first in dumps.
    """

    model_config = MODEL_CONFIG

    note: list[Annotation] = Field(default_factory=list)

    def add_note(self, text: str, author: str | Reference | None = None) -> Annotation:
        """Append a note timestamped now (UTC); ``author`` is a name or a Reference."""
        note = Annotation(
            text=text,
            time=utc_now(),
            author_string=author if isinstance(author, str) else None,
            author_reference=author if isinstance(author, Reference) else None,
        )
        self.note = [*self.note, note]
        return note


def _same_definition(a: type[BaseResource], b: type[BaseResource]) -> bool:
    """Whether two classes are the same definition (e.g. a module reloaded)."""
    return a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__


def find_model_class(resource_type: str) -> type[BaseResource] | None:
    """The registered class for ``resource_type``, or None (no error, no suggestions)."""
    return _REGISTRY.get(resource_type)


def get_model_class(resource_type: str) -> type[BaseResource]:
    """Return the registered class for ``resource_type``, e.g. "Patient" -> Patient."""
    try:
        return _REGISTRY[resource_type]
    except KeyError:
        close = difflib.get_close_matches(resource_type, list(_REGISTRY), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownResourceTypeError(
            f"Unknown resource type {resource_type!r}.{hint} "
            f"({len(_REGISTRY)} types are registered; see registered_resource_types())"
        ) from None


def registered_resource_types() -> dict[str, type[BaseResource]]:
    """Return a copy of the registry: resource type name -> model class."""
    return dict(_REGISTRY)
