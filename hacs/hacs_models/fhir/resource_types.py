"""Which resource types hacs knows: every FHIR R4 (4.0.1) and R4B (4.3.0) resource type, and
every type a hacs model registers (the clinical models and the non-FHIR agent and registry ones).

A FHIR type without a hacs model is still known: ``from_fhir`` turns it into a plain
``BaseResource`` and the JSONB fallback (``public.hacs_resources``) stores it. A name that is
neither (``NoSuchType``, the misspelt ``Observaton``) is unknown: importing or exporting it is a
mistake, refused with the closest known names (``unknown_resource_type``).
"""

from __future__ import annotations

import difflib

from hacs_models.base import UnknownResourceTypeError, registered_resource_types

__all__ = [
    "FHIR_RESOURCE_TYPES",
    "is_known_resource_type",
    "known_resource_types",
    "unknown_resource_type",
]

# The resource types of the FHIR R4 and R4B specifications (abstract Resource and
# DomainResource excluded); tests/test_unknown_types.py checks it against fhir.resources' R4B.
FHIR_RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "Account",
        "ActivityDefinition",
        "AdministrableProductDefinition",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "Binary",
        "BiologicallyDerivedProduct",
        "BodyStructure",
        "Bundle",
        "CapabilityStatement",
        "CarePlan",
        "CareTeam",
        "CatalogEntry",
        "ChargeItem",
        "ChargeItemDefinition",
        "Citation",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "ClinicalUseDefinition",
        "CodeSystem",
        "Communication",
        "CommunicationRequest",
        "CompartmentDefinition",
        "Composition",
        "ConceptMap",
        "Condition",
        "Consent",
        "Contract",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "Device",
        "DeviceDefinition",
        "DeviceMetric",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "EffectEvidenceSynthesis",
        "Encounter",
        "Endpoint",
        "EnrollmentRequest",
        "EnrollmentResponse",
        "EpisodeOfCare",
        "EventDefinition",
        "Evidence",
        "EvidenceReport",
        "EvidenceVariable",
        "ExampleScenario",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "GraphDefinition",
        "Group",
        "GuidanceResponse",
        "HealthcareService",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "ImplementationGuide",
        "Ingredient",
        "InsurancePlan",
        "Invoice",
        "Library",
        "Linkage",
        "List",
        "Location",
        "ManufacturedItemDefinition",
        "Measure",
        "MeasureReport",
        "Media",
        "Medication",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationKnowledge",
        "MedicationRequest",
        "MedicationStatement",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductDefinition",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "MessageDefinition",
        "MessageHeader",
        "MolecularSequence",
        "NamingSystem",
        "NutritionOrder",
        "NutritionProduct",
        "Observation",
        "ObservationDefinition",
        "OperationDefinition",
        "OperationOutcome",
        "Organization",
        "OrganizationAffiliation",
        "PackagedProductDefinition",
        "Parameters",
        "Patient",
        "PaymentNotice",
        "PaymentReconciliation",
        "Person",
        "PlanDefinition",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "Questionnaire",
        "QuestionnaireResponse",
        "RegulatedAuthorization",
        "RelatedPerson",
        "RequestGroup",
        "ResearchDefinition",
        "ResearchElementDefinition",
        "ResearchStudy",
        "ResearchSubject",
        "RiskAssessment",
        "RiskEvidenceSynthesis",
        "Schedule",
        "SearchParameter",
        "ServiceRequest",
        "Slot",
        "Specimen",
        "SpecimenDefinition",
        "StructureDefinition",
        "StructureMap",
        "Subscription",
        "SubscriptionStatus",
        "SubscriptionTopic",
        "Substance",
        "SubstanceDefinition",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
        "SupplyDelivery",
        "SupplyRequest",
        "Task",
        "TerminologyCapabilities",
        "TestReport",
        "TestScript",
        "ValueSet",
        "VerificationResult",
        "VisionPrescription",
    }
)


def known_resource_types() -> frozenset[str]:
    """Every FHIR R4/R4B resource type and every type registered by a hacs model."""
    return FHIR_RESOURCE_TYPES | frozenset(registered_resource_types())


def is_known_resource_type(name: str) -> bool:
    """Whether hacs can store ``name`` (a typed table, or the JSONB fallback for FHIR types)."""
    return name in FHIR_RESOURCE_TYPES or name in registered_resource_types()


def unknown_resource_type(name: str) -> UnknownResourceTypeError:
    """The error for a type hacs does not know, naming the closest known type if there is one.

    ``Unknown resource type 'Observaton': did you mean 'Observation'?``
    """
    close = difflib.get_close_matches(name, sorted(known_resource_types()), n=1)
    hint = f": did you mean {close[0]!r}?" if close else " (not a FHIR R4 or hacs resource type)."
    return UnknownResourceTypeError(f"Unknown resource type {name!r}{hint}")
