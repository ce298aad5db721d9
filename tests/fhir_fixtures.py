"""Small FHIR R4 data the tests write themselves, in the shapes of the real corpus.

No file of the public data sets is copied here; these are hand-written resources with the same
structure, so the FHIR tests that check behaviour (not the corpus's own counts) run anywhere:

- Synthea-style **transaction Bundles**, one per patient: ``fullUrl`` ``urn:uuid:<id>``, every
  reference a ``urn:uuid`` to another entry, each bundle carrying its own copy of the
  organization and practitioner, and a provider bundle (with extra extensions) imported last;
- Bulk Data **NDJSON**, one file per type, whose references are conditional
  (``Practitioner?identifier=<NPI system>|<npi>``);
- HL7-style **single example files**, among them a document Bundle (stored whole), a nested
  collection Bundle and Bundles that are not data (a searchset and a message).

``write_corpus(folder)`` writes all of it in the corpus's folder layout and returns what a test
needs to know about it; ``all_resources()`` gives every resource in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "NPI_SYSTEM",
    "Corpus",
    "all_resources",
    "observation",
    "patient_bundle",
    "write_corpus",
]

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"
ORGANIZATION = "0f5c4a1e-0000-4000-8000-00000000000a"
PRACTITIONER = "0f5c4a1e-0000-4000-8000-00000000000b"
NPI = "9999912345"
Resource = dict[str, Any]


def _entry(resource: Resource) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _organization(*, utilization: int | None = None) -> Resource:
    organization: Resource = {
        "resourceType": "Organization",
        "id": ORGANIZATION,
        "identifier": [{"system": SYNTHEA_SYSTEM, "value": ORGANIZATION}],
        "active": True,
        "name": "Fixture General Hospital",
        "address": [{"line": ["1 Test Street"], "city": "Springfield", "country": "US"}],
    }
    if utilization is not None:
        organization["extension"] = [
            {
                "url": "http://synthetichealth.github.io/synthea/utilization-encounters-extension",
                "valueInteger": utilization,
            }
        ]
    return organization


def _practitioner() -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": PRACTITIONER,
        "identifier": [{"system": NPI_SYSTEM, "value": NPI}],
        "active": True,
        "name": [{"family": "Fixture", "given": ["Pat"], "prefix": ["Dr."]}],
        "gender": "female",
    }


def observation(resource_id: str, **extra: Any) -> Resource:
    """A minimal valid Observation (body weight code)."""
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        **extra,
    }


def patient_bundle(number: int, *, observations: int = 3) -> Resource:
    """A Synthea-style transaction Bundle for one patient (ids derived from ``number``)."""
    patient_id = f"0f5c4a1e-{number:04d}-4000-8000-000000000001"
    encounter_id = f"0f5c4a1e-{number:04d}-4000-8000-000000000002"
    patient: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": SYNTHEA_SYSTEM, "value": patient_id}],
        "name": [{"use": "official", "family": f"Example{number}", "given": ["Alex"]}],
        "gender": "male" if number % 2 else "female",
        "birthDate": f"19{50 + number:02d}-03-0{1 + number % 9}",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": f"19{50 + number:02d}-03-0{1 + number % 9}T08:15:00+01:00",
                }
            ]
        },
        "maritalStatus": {"text": "Never Married"},
        "extension": [
            {"url": "http://example.org/fhir/photo-hash", "valueBase64Binary": "aGFjcw=="}
        ],
    }
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"urn:uuid:{patient_id}"},
        "participant": [{"individual": {"reference": f"urn:uuid:{PRACTITIONER}"}}],
        "period": {"start": "2020-01-01T10:00:00+00:00", "end": "2020-01-01T10:30:00+00:00"},
        "serviceProvider": {"reference": f"urn:uuid:{ORGANIZATION}"},
    }
    weights = [
        observation(
            f"0f5c4a1e-{number:04d}-4000-8000-1{index:011d}",
            subject={"reference": f"urn:uuid:{patient_id}"},
            encounter={"reference": f"urn:uuid:{encounter_id}"},
            effectiveDateTime=f"2020-01-01T10:{index:02d}:00+00:00",
            valueQuantity={
                "value": 70.5 + index,
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
        )
        for index in range(observations)
    ]
    condition: Resource = {
        "resourceType": "Condition",
        "id": f"0f5c4a1e-{number:04d}-4000-8000-000000000003",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "subject": {"reference": f"urn:uuid:{patient_id}"},
        "encounter": {"reference": f"urn:uuid:{encounter_id}"},
        "onsetDateTime": "2019-06-01T00:00:00+00:00",
    }
    claim: Resource = {  # no typed table: stored in the JSONB table
        "resourceType": "Claim",
        "id": f"0f5c4a1e-{number:04d}-4000-8000-000000000004",
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": f"urn:uuid:{patient_id}"},
        "created": "2020-01-01T10:30:00+00:00",
        "provider": {"reference": f"urn:uuid:{ORGANIZATION}"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Self-pay"}}],
        "item": [{"sequence": 1, "productOrService": {"text": "Visit"},
                  "encounter": [{"reference": f"urn:uuid:{encounter_id}"}]}],
        "total": {"value": 120.0, "currency": "USD"},
    }  # fmt: skip
    resources = [patient, encounter, *weights, condition, claim, _organization(), _practitioner()]
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(map(_entry, resources))}


def _provider_bundle() -> Resource:
    resources = [_organization(utilization=42), _practitioner()]
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(map(_entry, resources))}


def _ndjson_resources() -> dict[str, list[Resource]]:
    """Bulk Data: a patient, a practitioner, and an encounter that refers to it by identifier."""
    patient_id = "0f5c4a1e-9000-4000-8000-000000000001"
    practitioner: Resource = {
        "resourceType": "Practitioner",
        "id": "0f5c4a1e-9000-4000-8000-00000000000b",
        "identifier": [{"system": NPI_SYSTEM, "value": "9999954321"}],
        "name": [{"family": "Bulk", "given": ["Sam"]}],
    }
    patient: Resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"family": "Bulk", "given": ["Kim"]}],
        "gender": "female",
        "birthDate": "1980-05-05",
    }
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": "0f5c4a1e-9000-4000-8000-000000000002",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [
            {"individual": {"reference": f"Practitioner?identifier={NPI_SYSTEM}|9999954321"}}
        ],
    }
    return {"Patient": [patient], "Practitioner": [practitioner], "Encounter": [encounter]}


def _examples() -> dict[str, Resource]:
    """HL7-style single files: data, a document Bundle, and Bundles that are answers."""
    patient: Resource = {
        "resourceType": "Patient",
        "id": "example-fixture",
        "active": True,
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "birthDate": "1974-12-25",
        "deceasedBoolean": False,
    }
    document: Resource = {
        "resourceType": "Bundle",
        "id": "document-fixture",
        "type": "document",
        "timestamp": "2020-02-02T10:00:00+00:00",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-2222-4333-8444-555555555555",
                "resource": {
                    "resourceType": "Composition",
                    "id": "11111111-2222-4333-8444-555555555555",
                    "status": "final",
                    "type": {"text": "Discharge summary"},
                    "date": "2020-02-02T10:00:00+00:00",
                    "author": [{"reference": "urn:uuid:11111111-2222-4333-8444-666666666666"}],
                    "title": "Fixture discharge summary",
                },
            },
            {
                "fullUrl": "urn:uuid:11111111-2222-4333-8444-666666666666",
                "resource": {
                    "resourceType": "Practitioner",
                    "id": "11111111-2222-4333-8444-666666666666",
                    "name": [{"family": "Author"}],
                },
            },
        ],
    }
    collection: Resource = {
        "resourceType": "Bundle",
        "id": "collection-fixture",
        "type": "collection",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Observation/nested-1",
             "resource": observation("nested-1", valueString="inside a collection")},
            {"resource": {"resourceType": "Bundle", "id": "inner-fixture", "type": "collection",
                          "entry": [{"resource": observation("nested-2")}]}},
        ],
    }  # fmt: skip
    searchset: Resource = {
        "resourceType": "Bundle",
        "id": "searchset-fixture",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": observation("found-1"), "search": {"mode": "match"}}],
    }
    message: Resource = {
        "resourceType": "Bundle",
        "id": "message-fixture",
        "type": "message",
        "timestamp": "2020-02-02T10:00:00+00:00",
        "entry": [
            {
                "fullUrl": "urn:uuid:22222222-2222-4333-8444-555555555555",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": "22222222-2222-4333-8444-555555555555",
                    "eventCoding": {"system": "http://example.org/events", "code": "admin-notify"},
                    "source": {"endpoint": "http://example.org/clients/fixture"},
                },
            }
        ],
    }
    return {
        "Patient-example-fixture.json": patient,
        "Observation-example-fixture.json": observation(
            "weight-fixture",
            subject={"reference": "Patient/example-fixture"},
            valueQuantity={"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org",
                           "code": "[lb_av]"},
        ),
        "Bundle-document-fixture.json": document,
        "Bundle-collection-fixture.json": collection,
        "Bundle-searchset-fixture.json": searchset,
        "Bundle-message-fixture.json": message,
    }  # fmt: skip


PATIENTS = 2
# The Bundles of the examples that are answers or messages, not data (the import skips them).
NOT_DATA = {"Bundle-searchset-fixture.json": "searchset", "Bundle-message-fixture.json": "message"}


@dataclass
class Corpus:
    """Where ``write_corpus`` put the files, and facts the tests check against."""

    root: Path
    patient_bundles: list[Path] = field(default_factory=list)
    provider_bundle: Path | None = None
    files: int = 0

    @property
    def synthea(self) -> Path:
        return self.root / "synthea"

    @property
    def ndjson(self) -> Path:
        return self.root / "bulk-ndjson-10-patients"

    @property
    def examples(self) -> Path:
        return self.root / "hl7-examples"


def write_corpus(root: Path) -> Corpus:
    """Write the fixture data under ``root`` in the corpus's layout (three folders)."""
    corpus = Corpus(root)
    for folder in (corpus.synthea, corpus.ndjson, corpus.examples):
        folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, PATIENTS + 1):
        path = corpus.synthea / f"Example{number}_patient.json"
        path.write_text(json.dumps(patient_bundle(number)), encoding="utf-8")
        corpus.patient_bundles.append(path)
    # Named to sort after the patient bundles: its copies are the last, stored ones.
    corpus.provider_bundle = corpus.synthea / "hospitalInformation.json"
    corpus.provider_bundle.write_text(json.dumps(_provider_bundle()), encoding="utf-8")
    for resource_type, resources in _ndjson_resources().items():
        lines = "".join(json.dumps(r) + "\n" for r in resources)
        (corpus.ndjson / f"{resource_type}.000.ndjson").write_text(lines, encoding="utf-8")
    for name, resource in _examples().items():
        (corpus.examples / name).write_text(json.dumps(resource), encoding="utf-8")
    corpus.files = sum(1 for p in root.rglob("*") if p.is_file())
    return corpus


def _nested(resource: Resource, where: str) -> Iterator[tuple[str, Resource]]:
    if resource.get("resourceType") != "Bundle":
        return
    for index, entry in enumerate(resource.get("entry", [])):
        label = f"{where} entry[{index}]"
        yield label, entry["resource"]
        yield from _nested(entry["resource"], label)


def all_resources() -> list[tuple[str, Resource]]:
    """(label, resource) of every resource of the fixture data, nested ones included."""
    found: list[tuple[str, Resource]] = []
    for number in range(1, PATIENTS + 1):
        found.extend(_nested(patient_bundle(number), f"patient{number}"))
    found.extend(_nested(_provider_bundle(), "provider"))
    for resource_type, resources in _ndjson_resources().items():
        found.extend((f"{resource_type}.ndjson:{i}", r) for i, r in enumerate(resources, 1))
    for name, resource in _examples().items():
        found.append((name, resource))
        found.extend(_nested(resource, name))
    return found
