"""Column groups shared by many resource tables, declared once.

Each mixin reads a class attribute naming where its values live in the resource, so tables that
store the same kind of data (a patient link, a code, a status) share one declaration.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from hacs_persistence.schema.base import key_column
from hacs_persistence.schema.sources import Source, attr, coding, ref_id, text_of

__all__ = ["CodedMixin", "EncounterLinkMixin", "PatientLinkMixin", "StatusMixin"]


class PatientLinkMixin:
    """``patient_id``: the patient the resource is about, a deferrable foreign key with an index."""

    patient_path: ClassVar[tuple[str | int, ...]] = ("subject",)
    # For resources whose patient is not a plain reference (Appointment's participants).
    patient_source: ClassVar[Source | None] = None

    @declared_attr
    def patient_id(cls) -> Mapped[str | None]:
        source = cls.patient_source or ref_id(*cls.patient_path)
        return mapped_column(
            ForeignKey("hacs_core.patients.id", deferrable=True, initially="IMMEDIATE"),
            index=True,
            info={"source": source},
        )


class EncounterLinkMixin:
    """``encounter_id``: the encounter the resource belongs to (deferrable foreign key)."""

    encounter_path: ClassVar[tuple[str | int, ...]] = ("encounter",)

    @declared_attr
    def encounter_id(cls) -> Mapped[str | None]:
        return mapped_column(
            ForeignKey("hacs_core.encounters.id", deferrable=True, initially="IMMEDIATE"),
            index=True,
            info={"source": ref_id(*cls.encounter_path, target="Encounter")},
        )


class CodedMixin:
    """``code_system``, ``code`` (indexed) and ``code_display`` of the resource's main concept."""

    code_path: ClassVar[tuple[str | int, ...]] = ("code",)

    @declared_attr
    def code_system(cls) -> Mapped[str | None]:
        return key_column(coding(*cls.code_path, part="system"))

    @declared_attr
    def code(cls) -> Mapped[str | None]:
        return key_column(coding(*cls.code_path, part="code"), index=True)

    @declared_attr
    def code_display(cls) -> Mapped[str | None]:
        return key_column(text_of(*cls.code_path))


class StatusMixin:
    """``status``: the resource's workflow status code."""

    status_path: ClassVar[tuple[str | int, ...]] = ("status",)

    @declared_attr
    def status(cls) -> Mapped[str | None]:
        return key_column(attr(*cls.status_path), index=True)
