"""Printing: JSON on stdout for --json, readable tables otherwise, and a
progress bar only on a terminal."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

import click
import msgspec

from verifier.names import visible


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON with sorted keys."""
    click.echo(json.dumps(value, default=_default, indent=1, sort_keys=True, ensure_ascii=False))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], limit: int = 48) -> None:
    """Print a plain text table (cells cut at ``limit`` characters)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else visible(str(c)) for c in r]
                                            for r in rows]
    widths = [min(limit, max(len(row[i]) for row in cells)) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        out = []
        for text, width in zip(row, widths, strict=True):
            text = text if len(text) <= width else text[: width - 1] + "…"
            out.append(text.ljust(width))
        return "  ".join(out).rstrip()

    click.echo(line(cells[0]))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        click.echo(line(row))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell: the value as text (None empty), with a leading apostrophe when a
    spreadsheet would read it as a formula (it starts with = + - @, a tab or a carriage
    return), as OWASP advises against CSV injection; a plain negative decimal such as -0.5
    is left as it is."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not (
            text[:1] == "-" and text[1:].replace(".", "", 1).isdigit()):
        return "'" + text
    return text


def emit_csv(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print ``rows`` as RFC 4180 CSV (CRLF line ends, fields quoted when needed) with a
    header row: no truncation; a cell a spreadsheet would run as a formula gets a leading
    apostrophe (``csv_cell``); otherwise exact values, in UTF-8 whatever the terminal's
    encoding (an escape such as ``\u03bc`` would be a different, valid name)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for n, row in enumerate(rows, 1):
        writer.writerow([csv_cell(c) for c in row])
        if n % 1000 == 0:
            _emit_utf8(buf)
    _emit_utf8(buf)


def _emit_utf8(buf: io.StringIO) -> None:
    """Write ``buf``'s text to stdout's bytes as UTF-8, then empty it."""
    click.echo(buf.getvalue().encode("utf-8", "backslashreplace"), nl=False)
    buf.seek(0)
    buf.truncate()


def short(hash_hex: str | None) -> str:
    """The first 12 hex digits of a hash, for tables."""
    return "" if not hash_hex else hash_hex[:12]


def iso(when: datetime | None) -> str:
    """A datetime as ISO text with Z."""
    return "" if when is None else when.isoformat().replace("+00:00", "Z")


def log_line(text: str) -> None:
    """A service's line on stderr (serving..., stopped); a log that cannot be written (a
    full disk, a reader gone) does not stop the service."""
    try:
        click.echo(text, err=True)
    except (OSError, ValueError):
        pass


class Seconds(click.FloatRange):
    """A number of seconds in a range; NaN (which compares false with both ends) is refused."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        got = super().convert(value, param, ctx)
        if not math.isfinite(got):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return got


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` (sys.stdin, sys.stderr, ...) is an open terminal: False when the
    process started with it closed (Python then sets it to None) or it is closed now."""
    try:
        return stream is not None and bool(stream.isatty())
    except (OSError, ValueError):
        return False


@contextmanager
def progress(label: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A callback ``(done, total)`` that drives a progress bar on a terminal, else nothing."""
    if quiet or not is_terminal(sys.stderr):
        yield lambda done, total: None
        return
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            state["bar"].__enter__()
            state["done"] = 0
        state["bar"].update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
