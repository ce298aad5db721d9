"""Knowledge artefacts: PlanDefinition, ActivityDefinition, Library, EvidenceVariable."""

from pydantic import Field

from .._time import UtcDatetime
from ..base import BaseResource
from ..datatypes import CodeableConcept, Identifier, JsonObject

__all__ = [
    "ActivityDefinition",
    "EvidenceVariable",
    "KnowledgeArtifact",
    "Library",
    "PlanDefinition",
]


class KnowledgeArtifact(BaseResource):
    """Metadata shared by FHIR knowledge artefacts (canonical url, name, status, publisher).

    FHIR's ``version`` element is ``business_version`` here: ``version`` is the storage version.
    """

    url: str | None = None
    identifier: list[Identifier] = Field(default_factory=list)
    business_version: str | None = None
    name: str | None = None
    title: str | None = None
    status: str = "draft"
    date: UtcDatetime | None = None
    publisher: str | None = None
    description: str | None = None


class PlanDefinition(KnowledgeArtifact):
    """A pre-defined group of actions (order set, protocol, clinical guideline)."""

    resource_type: str = "PlanDefinition"
    type: CodeableConcept | None = None
    goal: list[JsonObject] = Field(default_factory=list)
    action: list[JsonObject] = Field(default_factory=list)


class ActivityDefinition(KnowledgeArtifact):
    """A definition of a single activity that a plan can ask to be performed."""

    resource_type: str = "ActivityDefinition"
    kind: str | None = None
    code: CodeableConcept | None = None
    intent: str | None = None
    priority: str | None = None
    dynamic_value: list[JsonObject] = Field(default_factory=list)


class Library(KnowledgeArtifact):
    """A collection of knowledge assets (logic, models, parameters)."""

    resource_type: str = "Library"
    type: CodeableConcept | None = None
    """Required by FHIR, optional here."""
    content: list[JsonObject] = Field(default_factory=list)
    parameter: list[JsonObject] = Field(default_factory=list)


class EvidenceVariable(KnowledgeArtifact):
    """A population, exposure or outcome definition used by evidence resources."""

    resource_type: str = "EvidenceVariable"
    type: str | None = None
    """FHIR ``EvidenceVariable.type`` code (dichotomous, continuous, descriptive)."""
    characteristic: list[JsonObject] = Field(default_factory=list)
