"""UTC datetime type shared by every model, so stored timestamps are always comparable."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["UtcDatetime", "to_utc", "utc_now"]


def to_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive values are taken as local time, as ``astimezone`` does."""
    if value.tzinfo is UTC:
        return value
    # For a naive datetime, astimezone() first interprets it in the system's local timezone.
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime (the default for timestamps)."""
    return datetime.now(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]
"""A datetime normalised to UTC on validation; naive input is read as local time."""
