"""Pydantic configuration shared by every hacs model, so all of them behave alike."""

from pydantic import ConfigDict

__all__ = ["MODEL_CONFIG"]

MODEL_CONFIG = ConfigDict(
    # Elements a model does not type are kept (in the extras bag) and round-trip unchanged.
    extra="allow",
    populate_by_name=True,
    # Attribute assignment is validated too, so setters cannot store malformed data.
    validate_assignment=True,
    # A ValidationError's text never quotes the input: it is resource content (patient data)
    # and such errors end up in logs.
    hide_input_in_errors=True,
)
"""Config for datatypes and resources: keep unknown elements, validate assignments."""
