"""Time: integer nanoseconds since the Unix epoch, UTC. Naive datetimes are refused."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
MAX_NS = 2**63 - 1  # a log time is a signed 64-bit count of nanoseconds


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


def parse_time(text: str) -> datetime:
    """The aware datetime ``text`` names: ISO 8601 with a timezone, or a bare date
    meaning the end of that day in UTC. ValueError with a clear message otherwise: a
    time without a timezone, or after the last time a log can record."""
    text = text.strip()
    if _DATE.match(text):
        try:
            day = datetime.fromisoformat(text).date()
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date: {exc}") from None
        return _in_range(text, datetime.combine(day, time(23, 59, 59, 999_999),
                                                tzinfo=timezone.utc))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from None
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{text!r} has no timezone: add Z (UTC) or an offset like +02:00")
    return _in_range(text, when)


def _in_range(text: str, when: datetime) -> datetime:
    # later times cannot be recorded, and a bundle with one would not verify
    if to_ns(when) > MAX_NS:
        last = from_ns(MAX_NS).isoformat().replace("+00:00", "Z")
        raise ValueError(f"{text!r} is after {last}, the last time a log can record")
    return when
