"""Realistic synthetic data for the benchmarks: patients, observations, clustered embeddings."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

from hacs_models import (
    Address,
    CodeableConcept,
    ContactPoint,
    HumanName,
    MemoryBlock,
    Observation,
    Patient,
)

# Explicit, unique ids: the default 8 random hex digits collide (birthday bound) at the tens of
# thousands of resources a benchmark creates, and the raw COPY baseline cannot redraw them.
_SERIAL = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_SERIAL):08x}"


FAMILY = ["Fernandez", "Smith", "Nguyen", "Okafor", "Kowalski", "Haddad", "Tanaka", "Silva"]
GIVEN = ["Carlos", "Ana", "Minh", "Chidi", "Ewa", "Layla", "Yuki", "Joao", "Sam", "Priya"]
CITIES = [("Houston", "TX", "77001"), ("Boston", "MA", "02108"), ("Denver", "CO", "80202")]
CODES = [
    ("8480-6", "Systolic blood pressure", "mmHg", 95, 160),
    ("8462-4", "Diastolic blood pressure", "mmHg", 55, 100),
    ("8867-4", "Heart rate", "/min", 50, 120),
    ("2339-0", "Glucose", "mg/dL", 70, 220),
    ("29463-7", "Body weight", "kg", 45, 130),
]
VITALS = CodeableConcept(
    text="Vital Signs",
    coding=[
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ],
)


def patients(n: int, rng: random.Random) -> list[Patient]:
    """Patients with names, telecom and a home address."""
    result = []
    for i in range(n):
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        city, state, postal = rng.choice(CITIES)
        result.append(
            Patient(
                id=_id("patient"),
                name=[HumanName(use="official", family=family, given=[given, rng.choice(GIVEN)])],
                gender=rng.choice(["male", "female"]),
                birth_date=date(1930, 1, 1) + timedelta(days=rng.randrange(30000)),
                telecom=[
                    ContactPoint(system="phone", value=f"+1-555-{i % 10000:04d}", use="mobile")
                ],
                address=[
                    Address(
                        use="home",
                        line=[f"{i} Pine Avenue"],
                        city=city,
                        state=state,
                        postal_code=postal,
                    )
                ],
            )
        )
    return result


def observations(n: int, patient_ids: list[str], rng: random.Random) -> list[Observation]:
    """Vital-sign observations with LOINC codes, quantities and a note."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    result = []
    for i in range(n):
        code, display, unit, low, high = CODES[i % len(CODES)]
        obs = Observation(
            id=_id("observation"),
            status="final",
            category=[VITALS],
            code=CodeableConcept(
                text=display,
                coding=[{"system": "http://loinc.org", "code": code, "display": display}],
            ),
            subject=f"Patient/{patient_ids[i % len(patient_ids)]}",
            effective_date_time=start + timedelta(minutes=rng.randrange(2_000_000)),
        )
        obs.set_quantity_value(round(rng.uniform(low, high), 1), unit)
        obs.add_note(f"Measured at visit {i}")
        result.append(obs)
    return result


def clustered_vectors(
    n: int, dim: int, clusters: int, rng: random.Random, spread: float = 0.35
) -> list[list[float]]:
    """Vectors around cluster centres: like real embeddings, unlike uniform noise."""
    centres = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(clusters)]
    return [[c + rng.gauss(0, spread) for c in centres[rng.randrange(clusters)]] for _ in range(n)]


def memory_blocks(vectors: list[list[float]], rng: random.Random) -> list[MemoryBlock]:
    """Agent memories with agents, tags and embeddings."""
    return [
        MemoryBlock(
            id=_id("memoryblock"),
            content=f"memory {i}",
            agent_id=f"agent-{i % 5}",
            # Half episodic: the unselective filter of the vector target (1 row in 2).
            memory_type=rng.choice(["episodic", "semantic"]),
            tags=[rng.choice(["vitals", "notes", "meds"])],
            embedding=v,
        )
        for i, v in enumerate(vectors)
    ]
