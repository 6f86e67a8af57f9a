"""Time: integer nanoseconds since the Unix epoch, UTC. Naive datetimes are refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_ns(when: datetime) -> int:
    """Nanoseconds since the epoch for a timezone-aware datetime."""
    if not isinstance(when, datetime):
        raise TypeError(f"expected a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(
            "naive datetime refused: give a timezone, e.g. datetime(..., tzinfo=timezone.utc)"
        )
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """The UTC datetime of ``ns`` (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def iso(ns: int) -> str:
    """ISO 8601 UTC text with a 'Z', to the microsecond (truncated), e.g. for messages.

    Precondition: ``ns`` is an int in datetime's range (years 1 to 9999), else
    OverflowError."""
    return from_ns(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
