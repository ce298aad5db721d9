"""FHIR R4 interchange with the database: import files, export a patient or a resource type.

Import (``import_paths``)
    Inputs are transaction, batch and collection Bundles (their entries are imported), other
    data Bundles such as documents (stored whole, as one Bundle resource), Bulk Data NDJSON
    (``.ndjson``, one resource per line) and single-resource JSON files; folders are searched
    recursively. Response Bundles, searchsets, history and messages are skipped, as are entries
    without a resource, GET/HEAD/DELETE/PATCH entries and operation calls (all counted).

    * One transaction per file, through ``save_many(..., dangling="null")``: a file that cannot
      be parsed or holds a resource ``from_fhir`` rejects fails as a whole (nothing of it is
      written, the report names the line or entry) and the other files still import.
    * Source ids are kept. A resource without an id gets the uuid of its ``urn:uuid`` fullUrl,
      the id of its URL, or a uuid5 of its content, so that a re-import finds it again.
    * ``urn:uuid:`` references (and any reference equal to an entry's fullUrl) become
      ``Type/id`` of that entry. Conditional references ``Type?identifier=system|value`` and
      ``ifNoneExist`` / conditional ``PUT`` are resolved by identifier in the file, then in all
      files of the import, then among the stored documents (JSONB containment). What cannot
      be resolved is kept as it is and counted.
    * Idempotent: a resource whose stored document is the same (storage envelope aside) is left
      alone; a changed one gets exactly one new version (updated at its stored version). When
      the same ``Type/id`` comes several times in one import, the last copy (files in the order
      given, folders sorted) is the one that may update; an earlier copy is only inserted when
      nothing is stored yet (so its own file's references hold), and otherwise skipped.
    * Files with patients (then encounters) are imported first, so foreign keys to resources
      of other files of the same import find them; a reference whose target is nowhere keeps
      its place in the document with a NULL foreign key and is counted as dangling.
    * Types without a hacs model are stored untouched in the JSONB table by their type name.
    * Permission checks, identifier look-ups and stored-version comparisons go through
      ``adapter.gate`` (audited, scoped to the actor's patients).

Export
    ``export_patient_bundle`` / ``write_patient_bundle``: the Patient and every resource about
    it (typed rows by ``patient_id``; JSONB documents whose top-level ``subject`` or
    ``patient`` is ``Patient/<id>``) as a FHIR ``collection`` Bundle. ``export_type_ndjson``:
    every resource of a type as NDJSON. Both read page by page through the adapter's access
    gate (read permission on every type, the actor's patients in the SQL, one audit row per
    page written before it is handed out) and write ``to_fhir`` JSON.
"""

from __future__ import annotations

from hacs_persistence.interchange.exporter import (
    export_patient_bundle,
    export_type_ndjson,
    iter_patient_compartment,
    iter_resources,
    write_patient_bundle,
)
from hacs_persistence.interchange.importer import (
    FileResult,
    ImportProgress,
    ImportSummary,
    ProgressCallback,
    TypeCounts,
    import_paths,
)

__all__ = [
    "FileResult",
    "ImportProgress",
    "ImportSummary",
    "ProgressCallback",
    "TypeCounts",
    "export_patient_bundle",
    "export_type_ndjson",
    "import_paths",
    "iter_patient_compartment",
    "iter_resources",
    "write_patient_bundle",
]
