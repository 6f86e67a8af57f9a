"""WHEN arguments: ISO 8601 with a timezone, or a bare date meaning the end of
that day in UTC. A time without a timezone is refused."""

from __future__ import annotations

from datetime import datetime

import click

from verifier import parse_time

HELP = ("ISO 8601 with a timezone (2025-09-30T17:00:00Z, 2025-09-30T19:00+02:00), or a bare "
        "date (2025-09-30) meaning the end of that day in UTC. A time without a timezone "
        "is refused.")


def parse_when(text: str) -> datetime:
    """The aware datetime ``text`` names; ValueError with a clear message otherwise."""
    return parse_time(text)


def when_callback(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> datetime | None:
    """Click callback that turns a WHEN option into an aware datetime."""
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
