"""Clinical resources (the hacs_clinical schema): records, medications, care, knowledge."""

from .care import Appointment, CarePlan, CareTeam, Goal, ServiceRequest
from .diagnostics import DiagnosticReport, DocumentReference
from .knowledge import (
    ActivityDefinition,
    EvidenceVariable,
    KnowledgeArtifact,
    Library,
    PlanDefinition,
)
from .medications import Medication, MedicationRequest, MedicationStatement, NutritionOrder
from .records import (
    AllergyIntolerance,
    Condition,
    FamilyMemberHistory,
    Immunization,
    Procedure,
    RiskAssessment,
)

__all__ = [
    "ActivityDefinition",
    "AllergyIntolerance",
    "Appointment",
    "CarePlan",
    "CareTeam",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "EvidenceVariable",
    "FamilyMemberHistory",
    "Goal",
    "Immunization",
    "KnowledgeArtifact",
    "Library",
    "Medication",
    "MedicationRequest",
    "MedicationStatement",
    "NutritionOrder",
    "PlanDefinition",
    "Procedure",
    "RiskAssessment",
    "ServiceRequest",
]
