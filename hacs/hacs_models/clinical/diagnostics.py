"""Diagnostic and document resources: DiagnosticReport, DocumentReference."""

from pydantic import Field

from .._time import UtcDatetime
from ..base import BaseResource
from ..datatypes import CodeableConcept, JsonObject, Period, Reference

__all__ = ["DiagnosticReport", "DocumentReference"]


class DiagnosticReport(BaseResource):
    """Findings and interpretation of diagnostic tests, grouping result Observations."""

    resource_type: str = "DiagnosticReport"
    status: str = "final"
    category: list[CodeableConcept] = Field(default_factory=list)
    code: CodeableConcept | None = None
    subject: Reference | None = None
    encounter: Reference | None = None
    effective_date_time: UtcDatetime | None = None
    effective_period: Period | None = None
    issued: UtcDatetime | None = None
    performer: list[Reference] = Field(default_factory=list)
    result: list[Reference] = Field(default_factory=list)
    conclusion: str | None = None
    conclusion_code: list[CodeableConcept] = Field(default_factory=list)
    presented_form: list[JsonObject] = Field(default_factory=list)


class DocumentReference(BaseResource):
    """A clinical document (note, scan, report) and where to find its content."""

    resource_type: str = "DocumentReference"
    status: str = "current"
    doc_status: str | None = None
    type: CodeableConcept | None = None
    category: list[CodeableConcept] = Field(default_factory=list)
    subject: Reference | None = None
    date: UtcDatetime | None = None
    author: list[Reference] = Field(default_factory=list)
    description: str | None = None
    content: list[JsonObject] = Field(default_factory=list)
    context: JsonObject | None = None
