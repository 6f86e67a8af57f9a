"""Turning exceptions into `error: <what>` plus a hint and the exit codes of
specs/errors.md. No traceback reaches the user."""

from __future__ import annotations

from typing import NoReturn

import click

from ledger import AuditError, KeyFileError, StoreError
from verifier import (
    AuthorizationError,
    ChainError,
    MalformedInputError,
    RuleError,
    SignatureError,
    VerificationError,
)

from .context import InsecureKeyFile, UsageProblem

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MALFORMED, EXIT_IO = 0, 1, 2, 3, 4

_HINTS: list[tuple[type[BaseException], str]] = [
    (AuthorizationError, "only granted, unrevoked keys may write, and grant/revoke need an "
                         "admin key; an admin grants with: modelseal grant <vkey> --role writer"),
    (SignatureError, "the statement changed after it was signed, or another key signed it"),
    (RuleError, "nothing was written; `modelseal inventory` and `modelseal history NAME` "
                "show what the log holds"),
    (ChainError, "nothing was written; the log's order or a statement id is in conflict"),
    (AuditError, "the store differs from its own entries: keep it as evidence, restore a copy"),
    (KeyFileError, "check the key file's path, its mode (chmod 600) and its passphrase"),
    (StoreError, "check --store / MODELSEAL_STORE; `modelseal init DIR --origin ...` makes one"),
    (MalformedInputError, "the input is not in the expected format; see specs/"),
]


_SPACE = ("disk full", "file size limit reached")


def code_for(exc: BaseException) -> int:
    """The exit code for an exception."""
    if isinstance(exc, (VerificationError, AuditError)):
        return EXIT_FAILED
    if isinstance(exc, MalformedInputError):
        return EXIT_MALFORMED
    if isinstance(exc, (StoreError, KeyFileError, OSError)):
        return EXIT_IO
    return EXIT_USAGE


def fail(exc: BaseException) -> NoReturn:
    """Print ``error: ...`` and a hint on stderr and exit with the matching code."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    click.echo(f"error: {message}", err=True)
    hint = exc.hint if isinstance(exc, (UsageProblem, InsecureKeyFile)) else next(
        (h for cls, h in _HINTS if isinstance(exc, cls)), None)
    if isinstance(exc, StoreError) and message.startswith(_SPACE):
        hint = ("nothing was written and the store is intact: free space on the store's disk "
                "(or raise the file size limit), then run the command again")
    if hint:
        click.echo(f"hint: {hint}", err=True)
    raise SystemExit(code_for(exc))


HANDLED: tuple[type[BaseException], ...] = (
    VerificationError, MalformedInputError, AuditError, StoreError, KeyFileError, OSError,
    UsageProblem, ValueError, TypeError,
)
