"""FHIR R4 datatypes (complex elements) used by the resource models."""

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    PlainSerializer,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from ._config import MODEL_CONFIG
from ._decimals import DECIMAL_KEY, float_keeps, same_number
from ._time import UtcDatetime

__all__ = [
    "Address",
    "AdministrativeGender",
    "Annotation",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Element",
    "HumanName",
    "Identifier",
    "JsonDecimal",
    "JsonObject",
    "Period",
    "Quantity",
    "Reference",
]

JsonObject = dict[str, Any]
"""An untyped JSON object, for backbone elements the models keep as plain data."""

AdministrativeGender = Literal["male", "female", "other", "unknown"]
"""FHIR administrative-gender codes."""


def _decimal_to_json(value: Decimal) -> int | float:
    """Emit a decimal as a JSON number: an int when written without a fraction, else a float.

    ``5.0`` stays ``5.0`` (FHIR keeps a decimal's precision); digits a float cannot hold are
    kept by ``from_fhir`` beside the number (``hacs_models.fhir.DECIMAL_KEY``).
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return float(value)


JsonDecimal = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    PlainSerializer(_decimal_to_json, return_type=int | float, when_used="json"),
]
"""A finite decimal, kept exact in Python and written to JSON as a number (never a string)."""

_REFERENCE_RE = re.compile(
    # Optional absolute base URL, then Type/id, then an optional /_history/version suffix.
    r"(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/]+(?:/[^/]+)*?/)?"
    r"(?P<type>[A-Z][A-Za-z0-9]{0,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


class Element(BaseModel):
    """Base of all datatypes: unknown elements are kept in the extras bag and round-trip."""

    model_config = MODEL_CONFIG


class Period(Element):
    """A time range; either end may be open."""

    start: UtcDatetime | None = None
    end: UtcDatetime | None = None

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        """Reject a period that ends before it starts (FHIR invariant per-1)."""
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(
                f"period end {self.end.isoformat()} is before start {self.start.isoformat()}"
            )
        return self


class Coding(Element):
    """A code from a code system (e.g. LOINC, SNOMED CT)."""

    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    user_selected: bool | None = None


class CodeableConcept(Element):
    """A concept given by zero or more codings plus optional plain text."""

    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None

    def first_coding(self) -> Coding | None:
        """Return the first coding, or None when the concept is text only."""
        return self.coding[0] if self.coding else None


class Quantity(Element):
    """A measured amount with its unit; the value is an exact decimal.

    JSON (a stored document) carries the value as a number, which cannot hold every decimal's
    digits (``1.00``, ``5.0``): where a float would not give the value's text back, the JSON
    also carries the text in ``DECIMAL_KEY``, and reading it restores the exact ``Decimal``.
    """

    value: JsonDecimal | None = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None

    @model_validator(mode="after")
    def _exact_value(self) -> Self:
        """Take the value's digits from the kept text while it is still the same number."""
        text = self._kept_text()
        if text is not None and self.value is not None and same_number(self.value, text):
            exact = Decimal(text)
            if exact.as_tuple() != self.value.as_tuple():
                # Not through validation: the same number, only its digits restored.
                self.__dict__["value"] = exact
            if str(exact) == text:
                # The Decimal now says it all; the text is kept only for a form it cannot
                # tell (``0.0000001`` vs ``1E-7``). A model read back equals the one written.
                self._drop_kept_text()
        return self

    def _drop_kept_text(self) -> None:
        extras = self.__pydantic_extra__
        assert extras is not None
        kept = {k: v for k, v in extras[DECIMAL_KEY].items() if k != "value"}
        if kept:
            extras[DECIMAL_KEY] = kept
        else:
            del extras[DECIMAL_KEY]

    @model_serializer(mode="wrap")
    def _keep_text(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """In JSON, keep the value's text beside the number when a float would lose it."""
        data = handler(self)
        value = self.value
        if not info.mode_is_json() or value is None or not isinstance(data, dict):
            return data
        text = str(value)
        if ("." not in text and "E" not in text) or float_keeps(text, float(text)):
            return data
        kept_text = self._kept_text()
        if kept_text is not None and Decimal(kept_text).as_tuple() == value.as_tuple():
            return data  # the text it came with (``0.0000001`` stays so, not ``1E-7``)
        kept = data.get(DECIMAL_KEY)
        data[DECIMAL_KEY] = {**(kept if isinstance(kept, dict) else {}), "value": text}
        return data

    def _kept_text(self) -> str | None:
        kept = (self.__pydantic_extra__ or {}).get(DECIMAL_KEY)
        text = kept.get("value") if isinstance(kept, dict) else None
        return text if isinstance(text, str) else None


class Reference(Element):
    """A reference to another resource; a plain "Type/id" string is accepted as input."""

    reference: str | None = None
    type: str | None = None
    identifier: "Identifier | None" = None
    display: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        """Turn a plain reference string such as "Patient/abc" into a Reference object."""
        if isinstance(data, str):
            return {"reference": data}
        return data

    def _parts(self) -> re.Match[str] | None:
        """Match the reference against "[base/]Type/id[/_history/v]", or None."""
        ref = self.reference
        if not ref or ref[0] == "#":
            return None
        return _REFERENCE_RE.fullmatch(ref)

    @property
    def resource_type(self) -> str | None:
        """The referenced resource type for "Type/id" references (also absolute URLs)."""
        match = self._parts()
        return match["type"] if match else None

    @property
    def resource_id(self) -> str | None:
        """The referenced resource id for "Type/id" references (also absolute URLs)."""
        match = self._parts()
        return match["id"] if match else None


class Identifier(Element):
    """A business identifier (MRN, NPI, ...) within a namespace given by ``system``."""

    use: str | None = None
    type: CodeableConcept | None = None
    system: str | None = None
    value: str | None = None
    period: Period | None = None
    assigner: Reference | None = None


Reference.model_rebuild()


class HumanName(Element):
    """A person's name, in parts and/or as display text."""

    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)
    suffix: list[str] = Field(default_factory=list)
    period: Period | None = None

    def display_text(self) -> str | None:
        """Return ``text``, else the given names followed by the family name, else None."""
        if self.text:
            return self.text
        parts = [*self.given, self.family] if self.family else self.given
        return " ".join(parts) or None


class ContactPoint(Element):
    """A phone number, email address or other contact channel."""

    system: str | None = None
    value: str | None = None
    use: str | None = None
    rank: int | None = Field(default=None, ge=1)
    period: Period | None = None


class Address(Element):
    """A postal address."""

    use: str | None = None
    type: str | None = None
    text: str | None = None
    line: list[str] = Field(default_factory=list)
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    period: Period | None = None


class Annotation(Element):
    """A note with optional author and time."""

    author_string: str | None = None
    author_reference: Reference | None = None
    time: UtcDatetime | None = None
    text: str
