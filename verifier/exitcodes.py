"""Exit codes, and the one table that maps an exception class to its exit code and hint.

``modelseal-verify`` uses :data:`TABLE` as it is; ``modelseal`` (cli/errors.py) puts the
writer's classes in front of it and calls the same :func:`lookup`. The table is in order,
most specific class first: the first row whose class the exception is an instance of wins.
An exception that no row names is a bug: :data:`EXIT_INTERNAL` (specs/errors.md §3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .errors import IncompleteError, MalformedInputError, VerificationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MALFORMED = 3
EXIT_IO = 4
EXIT_INCOMPLETE = 5  # verification could not be completed (a worker died)
EXIT_FINDINGS = 6  # verified, with findings, under --fail-on-findings (specs/findings.md)
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h: an internal error (a bug)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it: stopped by Ctrl-C

KIND = {EXIT_FAILED: "verification_failed", EXIT_USAGE: "usage",
        EXIT_MALFORMED: "malformed_input", EXIT_IO: "io_error",
        EXIT_INCOMPLETE: "incomplete", EXIT_FINDINGS: "findings",
        EXIT_INTERNAL: "internal_error"}
"""The short name of each non-zero exit code, as ``modelseal-verify --json`` prints it."""


class UsageProblem(Exception):
    """Something the user must supply or change: exit code 2, with an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class Row(NamedTuple):
    """One row of the table: instances of ``cls`` exit with ``code`` and show ``hint``."""

    cls: type[BaseException]
    code: int
    hint: str | None = None


TABLE: tuple[Row, ...] = (
    Row(UsageProblem, EXIT_USAGE),
    Row(MalformedInputError, EXIT_MALFORMED,
        "the input is not in the expected format; see specs/"),
    Row(VerificationError, EXIT_FAILED),
    Row(IncompleteError, EXIT_INCOMPLETE,
        "nothing was decided: run it again (--jobs 1 checks without worker processes)"),
    Row(OSError, EXIT_IO),
)
"""The verifier's part of the table (``modelseal`` extends it in cli/errors.py)."""

INTERNAL = Row(Exception, EXIT_INTERNAL,
               "this is a bug; please report it (set MODELSEAL_DEBUG=1 to see the traceback)")


def lookup(exc: BaseException, table: Sequence[Row] = TABLE) -> Row:
    """The first row of ``table`` whose class ``exc`` is an instance of; :data:`INTERNAL`
    if none is. A :class:`UsageProblem`'s own hint replaces the row's."""
    for row in table:
        if isinstance(exc, row.cls):
            own = getattr(exc, "hint", None)
            return row._replace(hint=own) if isinstance(own, str) and own else row
    return INTERNAL
