"""The SQL on FHIR v2 ``ViewDefinition`` as a pydantic model, validated when it is loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hacs_persistence.views.errors import ViewDefinitionError

__all__ = [
    "Column",
    "Constant",
    "SelectNode",
    "ViewDefinition",
    "WhereClause",
    "load_definition",
]

# Column and view names become SQL identifiers: the spec's pattern (letters, digits, underscore).
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_STRICT = ConfigDict(extra="ignore", strict=True)


class Column(BaseModel):
    """One output column: its name, FHIRPath, declared FHIR type and whether it is a list."""

    model_config = _STRICT

    name: str
    path: str
    type: str | None = None
    collection: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _name(self) -> Column:
        if not NAME.match(self.name):
            raise ValueError(
                f"column name {self.name!r} must start with a letter and hold only letters, "
                "digits and '_'"
            )
        return self


class SelectNode(BaseModel):
    """A ``select`` entry: columns, nested selects, ``unionAll``, and what it iterates over."""

    model_config = _STRICT

    column: list[Column] = []
    select: list[SelectNode] = []
    unionAll: list[SelectNode] = []
    forEach: str | None = None
    forEachOrNull: str | None = None
    repeat: list[str] | None = None

    @model_validator(mode="after")
    def _one_iteration(self) -> SelectNode:
        given = [k for k in ("forEach", "forEachOrNull", "repeat") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"a select may have only one of {', '.join(given)}")
        if self.repeat is not None and not self.repeat:
            raise ValueError("repeat needs at least one path")
        return self


class WhereClause(BaseModel):
    """A ``where`` entry: a FHIRPath that must be true for a resource to give rows."""

    model_config = _STRICT

    path: str
    description: str | None = None


class Constant(BaseModel):
    """A named constant: ``name`` and exactly one ``value[x]``."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: str

    @model_validator(mode="after")
    def _one_value(self) -> Constant:
        values = [k for k in (self.__pydantic_extra__ or {}) if k.startswith("value")]
        if len(values) != 1:
            raise ValueError(
                f"constant {self.name!r} needs exactly one value[x] element (valueString, "
                f"valueInteger, ...), found {len(values)}"
            )
        if not NAME.match(self.name):
            raise ValueError(f"constant name {self.name!r} is not a valid name")
        return self

    @property
    def value(self) -> Any:
        """The constant's value as its FHIR JSON gives it."""
        extras = self.__pydantic_extra__ or {}
        return next(v for k, v in extras.items() if k.startswith("value"))


class ViewDefinition(BaseModel):
    """A SQL on FHIR v2 ViewDefinition (the elements the compiler uses; others are ignored)."""

    model_config = _STRICT

    resource: str
    name: str | None = None
    status: str | None = None
    constant: list[Constant] = []
    select: list[SelectNode] = Field(min_length=1)
    where: list[WhereClause] = []

    @model_validator(mode="after")
    def _names(self) -> ViewDefinition:
        if not re.match(r"^[A-Z][A-Za-z]+$", self.resource):
            raise ValueError(f"resource {self.resource!r} is not a FHIR resource type name")
        if self.name is not None and not NAME.match(self.name):
            raise ValueError(
                f"view name {self.name!r} must start with a letter and hold only letters, "
                "digits and '_'"
            )
        names = [c.name for c in self.constant]
        if len(set(names)) != len(names):
            raise ValueError("constant names must be unique")
        return self

    @classmethod
    def parse(cls, data: Any) -> ViewDefinition:
        """Validate a ViewDefinition given as JSON text, a mapping or a model."""
        if isinstance(data, ViewDefinition):
            return data
        try:
            if isinstance(data, str | bytes):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(view)'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise ViewDefinitionError(f"Invalid ViewDefinition: {details}.") from None


def load_definition(path: str | Path) -> ViewDefinition:
    """A ViewDefinition read from a JSON file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ViewDefinitionError(
            f"Cannot read the ViewDefinition {path}: {type(exc).__name__}; "
            "give a readable JSON file."
        ) from None
    return ViewDefinition.parse(data)
