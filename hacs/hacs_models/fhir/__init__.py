"""FHIR R4 JSON interchange for hacs resources: ``to_fhir`` and ``from_fhir`` (no database).

``from_fhir(data)`` picks the class registered for ``data["resourceType"]``
(``get_model_class``); a type without a hacs model becomes a plain ``BaseResource`` whose extras
keep every element. ``to_fhir(resource)`` gives FHIR JSON back.

Element names
    Every object key, at any depth (extras, datatypes, extensions, contained resources, Bundle
    entries), is converted camelCase <-> snake_case (``birthDate`` <-> ``birth_date``,
    ``_birthDate`` <-> ``_birth_date``, ``resourceType`` <-> ``resource_type``); the conversion
    is exact both ways for every FHIR element name (see ``snake_case_key``). Values, including
    narrative xhtml and references, are never changed; an importer rewrites references later.
    Top-level renames: ``class`` <-> ``encounter_class`` (Encounter) and ``version`` <->
    ``business_version`` (every resource type: ``version`` is the hacs storage version).
    hacs data meant for ``to_fhir`` should use snake_case keys in extras and JSON-object fields:
    a camelCase key there is written unchanged (still valid FHIR) but comes back snake_case.

Storage envelope
    ``to_fhir`` never writes ``created_at``/``updated_at``/``version`` as elements. A stored
    resource (``version`` set) gets ``meta.versionId = str(version)`` and ``meta.lastUpdated =
    updated_at`` (UTC, ``Z``), next to any other ``meta`` elements it keeps in its extras.
    ``from_fhir`` returns a new, unstored resource (``version`` None, fresh timestamps) and keeps
    ``meta`` without ``versionId``/``lastUpdated`` (they describe the source server; ``meta`` is
    dropped if nothing else is left).

Losslessness: ``to_fhir(from_fhir(x))`` equals ``x``
    ... except that ``meta`` loses versionId/lastUpdated as above. Everything else is exact,
    decimals and date-times included:

    - Decimals keep their literal text (``1.00``, ``5.0``, ``-1.000000000000000000E+245``), which
      a Python float cannot hold. Read FHIR JSON with ``loads`` (or give ``from_fhir`` numbers
      as ``Decimal``): a literal a float would not give back arrives as a ``DecimalLiteral`` (a
      float that remembers its text), and ``from_fhir`` keeps its text in the extras entry
      ``DECIMAL_KEY`` (``"fhir:decimal"``) of the object holding it; the stored number stays a
      number. ``to_fhir`` gives it back as a ``DecimalLiteral`` while the element still holds
      that number, and ``dumps`` writes it exactly (``json.dumps`` writes the nearest float).
    - A dateTime/instant in a typed field holds the UTC instant (so the typed column is a
      ``timestamptz``); when the text has another offset or more fraction digits than the UTC
      form (``2015-02-07T13:28:17.310-05:00``), the text is kept as written under rule 2 and
      given back.

    The rules:

    1. A typed field takes a FHIR value only if it can hold it exactly, checked strictly before
       validation (no pydantic coercion: ``"1"`` is not an int, ``"true"`` not a bool, a
       dateTime needs seconds and a zone, a date must be a full ``YYYY-MM-DD``, a ``null`` or an
       empty array/object is never typed data).
    2. Otherwise the original FHIR value is kept verbatim in the extras entry ``"fhir:original"``
       (field name -> value) of the model that owns the field: the resource, or the nested
       datatype (e.g. a ``Period`` inside an ``Identifier``). The typed field gets a stand-in when
       one exists: a partial or imprecise date/dateTime gets the start of the period it denotes
       ("1978" -> 1978-01-01, "1978-12" -> 1978-12-01, "2015-02-07" in a dateTime field ->
       2015-02-07T00:00Z; a time without zone is read as UTC), so queries on the typed column
       still see an approximate value. Other values leave the field at its default.
    3. The same happens to a value that passes rule 1 but fails a model rule in validation (a
       Period ending before it starts, an id the hacs id pattern rejects, a ``rank`` of 0): the
       innermost typed field named by the error moves whole into ``"fhir:original"``.
    4. ``to_fhir`` writes the original when the typed field is still unset or still holds the
       stand-in; if the field was changed after the import, its new value wins.
    5. Defaults the model fills in for elements the source did not have (``Patient.active``, a
       generated ``id``, a ``status``) are recorded in the extras entry ``"fhir:absent"`` (field
       name -> default) and not written while they keep that value; a stored resource always
       gets its ``id``.

    A FHIR resource lacking an element a hacs model requires (e.g. ``Observation.code``, 1..1 in
    FHIR too), or holding one the model cannot type at all (``"code": "abc"``), is rejected with
    pydantic's ``ValidationError``: a required field has no default to fall back on. Nothing
    else is rejected.

Round trip the other way: ``from_fhir(to_fhir(x))`` equals ``x``
    ... apart from the storage envelope (``version``, ``created_at``, ``updated_at``), which FHIR
    JSON does not carry. ``to_fhir`` writes non-empty fields (``None``, ``[]`` and ``{}`` are left
    out, as FHIR requires); ``full_name`` of Patient/Practitioner is not a FHIR element: it is
    left out when ``name`` gives it back, else written as the extension
    ``FULL_NAME_EXTENSION_URL``, which ``from_fhir`` removes again.

Known types (``resource_types``): every FHIR R4/R4B resource type and every registered hacs model;
the importer and ``hacs export --type`` refuse any other name.

Non-FHIR hacs types (AgentMessage, MemoryBlock, ToolDefinition, ...) go through the same rules;
their JSON has camelCase names and round-trips, but is not a FHIR resource a server accepts.
"""

from ._convert import (
    ABSENT_KEY,
    FULL_NAME_EXTENSION_URL,
    ORIGINAL_KEY,
    fhir_element,
    from_fhir,
    to_fhir,
)
from ._json import DECIMAL_KEY, DecimalLiteral, dumps, loads
from ._keys import camel_case_key, camel_case_keys, snake_case_key, snake_case_keys
from .resource_types import (
    FHIR_RESOURCE_TYPES,
    is_known_resource_type,
    known_resource_types,
    unknown_resource_type,
)

__all__ = [
    "ABSENT_KEY",
    "DECIMAL_KEY",
    "FHIR_RESOURCE_TYPES",
    "FULL_NAME_EXTENSION_URL",
    "ORIGINAL_KEY",
    "DecimalLiteral",
    "camel_case_key",
    "camel_case_keys",
    "dumps",
    "fhir_element",
    "from_fhir",
    "is_known_resource_type",
    "known_resource_types",
    "loads",
    "snake_case_key",
    "snake_case_keys",
    "to_fhir",
    "unknown_resource_type",
]
