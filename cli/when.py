"""WHEN arguments: ISO 8601 with a timezone, or a bare date meaning the end of
that day in UTC. A time without a timezone is refused."""

from __future__ import annotations

import re
from datetime import datetime, time, timezone

import click

from verifier import from_ns, to_ns

from .output import iso

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")

HELP = ("ISO 8601 with a timezone (2025-09-30T17:00:00Z, 2025-09-30T19:00+02:00), or a bare "
        "date (2025-09-30) meaning the end of that day in UTC. A time without a timezone "
        "is refused.")


def parse_when(text: str) -> datetime:
    """The aware datetime ``text`` names; ValueError with a clear message otherwise."""
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
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone: add Z (UTC) or an offset like +02:00")
    return _in_range(text, when)


def _in_range(text: str, when: datetime) -> datetime:
    # A log time is a signed 64-bit count of nanoseconds (specs/bundle.md): later times
    # cannot be recorded, and a bundle with one would not verify.
    if to_ns(when) > 2**63 - 1:
        raise ValueError(f"{text!r} is after {iso(from_ns(2**63 - 1))}, the last time a log "
                         "can record")
    return when


def when_callback(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> datetime | None:
    """Click callback that turns a WHEN option into an aware datetime."""
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
