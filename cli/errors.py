"""Turning exceptions into `error: <what>` plus a hint (or, with --json, one JSON object) on
stderr and the exit codes of specs/errors.md. No traceback reaches the user, unless
MODELSEAL_DEBUG=1 asks for one of an internal error (a bug).

The exit code and hint of every exception come from one table: :data:`TABLE` is the
writer's rows in front of the verifier's (verifier/exitcodes.py), read by the verifier's
one :func:`verifier.exitcodes.lookup`."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click

from ledger.client import (
    ArgumentRefusedError,
    NotFoundError,
    ReadForbiddenError,
    ServerError,
    ServerMisbehaviourError,
    ServerUnavailableError,
    StateFileError,
    UnauthenticatedError,
)
from ledger._publish import PublishBusyError, PublishConflictError
from ledger.monitor import (
    EXIT_FORK,
    EXIT_MISMATCH,
    EXIT_MISSING,
    EXIT_ROLLBACK,
    EXIT_RULE,
    EXIT_SIGNATURE,
    CheckpointSignatureError,
    ForkDetectedError,
    MissingTileError,
    ReadRefusedError,
    RollbackDetectedError,
    RuleViolationError,
    SourceUnavailableError,
    TileMismatchError,
)
from ledger.errors import (
    ArgumentError,
    AuditError,
    EncryptedKeyError,
    InsecureKeyFileError,
    KeyFileError,
    StoreBusyError,
    StoreError,
    StoreFullError,
    StoreLimitError,
    WrongPassphraseError,
)
from ledger.mlimport import NotModelLedgerError
from verifier import AuthorizationError, ChainError, PolicyError, RuleError, SignatureError
from verifier.exitcodes import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_IO,
    EXIT_MALFORMED,
    EXIT_OK,
    EXIT_USAGE,
    TABLE as VERIFIER_TABLE,
    Row,
    UsageProblem,
    lookup,
)

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_IO", "EXIT_MALFORMED", "EXIT_OK",
           "EXIT_USAGE", "TABLE", "deliberate", "fail", "in_user_terms"]

TABLE: tuple[Row, ...] = (
    Row(click.UsageError, EXIT_USAGE),
    Row(click.ClickException, EXIT_FAILED),
    # monitor (ledger/monitor): one exit code per finding
    Row(ForkDetectedError, EXIT_FORK,
        "the log showed two histories: keep the state file and the source's checkpoint as "
        "evidence, and tell the log's operator and its witnesses"),
    Row(RollbackDetectedError, EXIT_ROLLBACK,
        "the log shows an older tree than it showed before: keep the state file and the "
        "source's checkpoint as evidence"),
    Row(CheckpointSignatureError, EXIT_SIGNATURE,
        "check --key (and --witness, --witness-threshold); a checkpoint that fails them is "
        "not the log's"),
    Row(MissingTileError, EXIT_MISSING,
        "the log does not serve what its checkpoint commits to: check SOURCE, or run "
        "`modelseal publish` again to complete the directory"),
    Row(RuleViolationError, EXIT_RULE,
        "an entry breaks the log's rules: keep the entry and the checkpoint as evidence"),
    Row(SourceUnavailableError, EXIT_IO,
        "check SOURCE's URL and that the server runs; the state file is unchanged"),
    Row(ReadRefusedError, EXIT_FAILED,
        "--actor-key must be the key file of an actor granted the reader or admin role"),
    Row(TileMismatchError, EXIT_MISMATCH,
        "a tile or an entry is not what the signed checkpoint commits to: keep them as "
        "evidence"),
    # a remote log (--server): ledger/client
    Row(ServerMisbehaviourError, EXIT_FAILED,
        "the server's answer contradicts what it signed before (or is not specs/api.md): keep "
        "the client state file and this output as evidence, and do not trust this server"),
    Row(UnauthenticatedError, EXIT_FAILED,
        "reads through --server must be signed by a key with the reader or admin role: pass "
        "--key FILE (MODELSEAL_KEY)"),
    Row(StateFileError, EXIT_MALFORMED,
        "the client state file (--client-state) is damaged or of another log; restore it, "
        "or move it away to trust the server's next checkpoint afresh"),
    Row(ServerUnavailableError, EXIT_IO,
        "check --server (MODELSEAL_SERVER) and that the server runs; nothing is known to be "
        "written, and the same command again is safe"),
    Row(ArgumentRefusedError, EXIT_USAGE),
    Row(NotFoundError, EXIT_USAGE,
        "check the name; `modelseal inventory` lists the models, and --server must be the "
        "log's base URL"),
    Row(ServerError, EXIT_IO,
        "the server's answer could not be understood: check --server, and its log"),
    # publish (ledger/_publish.py)
    Row(PublishConflictError, EXIT_FAILED,
        "the directory holds files that are not this log's: keep them as evidence, or "
        "move the directory aside and publish again"),
    Row(PublishBusyError, EXIT_IO, "wait for the other publish to finish, then run again"),
    Row(ReadForbiddenError, EXIT_FAILED,
        "reads through --server need a key granted the reader or admin role (a writer's key "
        "only writes): pass that key with --key, or an admin grants one with: modelseal "
        "grant <vkey> --role reader"),
    Row(AuthorizationError, EXIT_FAILED,
        "only granted, unrevoked writer and admin keys may write (reader keys never do), "
        "each within its grant's scope (`modelseal keys`), and grant/revoke/policy need an "
        "admin key, whose grants stay within its own scope; an admin grants with: "
        "modelseal grant <vkey> --role writer"),
    Row(SignatureError, EXIT_FAILED,
        "the statement changed after it was signed, or another key signed it"),
    Row(PolicyError, EXIT_FAILED, "nothing was written; `modelseal policy show` lists the "
                                  "event types the log accepts and their required fields"),
    Row(RuleError, EXIT_FAILED, "nothing was written; `modelseal inventory` and "
                                "`modelseal history NAME` show what the log holds"),
    Row(ChainError, EXIT_FAILED,
        "nothing was written; the log's order or a statement id is in conflict"),
    Row(NotModelLedgerError, EXIT_MALFORMED,
        "give a model-ledger SQLite database (the file Ledger.from_sqlite wrote); nothing "
        "was written"),
    Row(AuditError, EXIT_FAILED,
        "the store differs from its own entries: keep it as evidence, restore a copy"),
    Row(EncryptedKeyError, EXIT_USAGE,
        "set MODELSEAL_KEY_PASSPHRASE (MODELSEAL_LOG_KEY_PASSPHRASE for the log key), or run "
        "on a terminal to be asked"),
    Row(WrongPassphraseError, EXIT_IO,
        "the passphrase does not open the key file: check MODELSEAL_KEY_PASSPHRASE "
        "(MODELSEAL_LOG_KEY_PASSPHRASE for the log key)"),
    Row(InsecureKeyFileError, EXIT_IO,
        "run chmod 600 on the key file, or pass --allow-insecure-key"),
    Row(KeyFileError, EXIT_IO, "check the key file's path, its mode (chmod 600) and its "
                               "passphrase"),
    Row(StoreBusyError, EXIT_IO,
        "nothing was written: the log stayed busy; run the command again"),
    Row(StoreFullError, EXIT_IO,
        "nothing was written and the store is intact: free space on the store's disk (or "
        "raise the file size limit), then run the command again"),
    Row(StoreLimitError, EXIT_IO,
        "nothing was written and the store is intact: the store has reached one of its "
        "limits (specs/errors.md §4)"),
    Row(StoreError, EXIT_IO,
        "check --store / MODELSEAL_STORE; `modelseal init DIR --origin ...` makes one"),
    *VERIFIER_TABLE,
)
"""Exception class -> exit code and hint for ``modelseal``: the first matching row wins."""

# The functions that raise ValueError/TypeError on purpose, to refuse an argument the caller
# gave (their docstrings say so). Such an exception is a usage problem (exit 2); a
# ValueError/TypeError raised anywhere else is a bug (exit 70).
_ARGUMENT_CHECKS = frozenset({
    ("ledger/statements.py", "build_signed"),
    ("ledger/ledger.py", "open"),
    ("ledger/_queries.py", "entry_index"),
    ("ledger/keys.py", "__init__"),
    ("ledger/keys.py", "named"),
    ("ledger/keys.py", "save"),
    ("verifier/timeutil.py", "to_ns"),
    ("verifier/entry.py", "encode_statement"),
    ("verifier/names.py", "check_name"),
    ("verifier/names.py", "check_event_type"),
    ("verifier/canonical.py", "_count"),
})

# Statement fields in the user's terms: what the command line calls them.
_FIELDS = {
    "name": "the name", "model": "the model name", "group": "the group name",
    "member": "the member name", "event_type": "--event", "tag": "the tag name",
    "owner": "--owner", "model_type": "--type", "tier": "--tier", "purpose": "--purpose",
    "status": "--status", "metadata": "--metadata", "payload": "the payload",
    "reason": "--reason", "role": "--role", "key": "the key", "actor": "the actor key's name",
    "origin": "--origin",
}


def deliberate(exc: BaseException) -> bool:
    """Whether ``exc`` is a ValueError/TypeError raised on purpose by one of the functions
    that check a caller's arguments (see _ARGUMENT_CHECKS), judged by where it was raised;
    the ledger's ArgumentError always is."""
    if isinstance(exc, ArgumentError):
        return True
    if not isinstance(exc, (ValueError, TypeError)) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    where = Path(code.co_filename).as_posix()
    return any(where.endswith("/" + path) and code.co_name == func
               for path, func in _ARGUMENT_CHECKS)


def in_user_terms(message: str) -> str:
    """A statement schema message (``invalid tag statement: Expected `str` matching regex
    ... - at `$.target```) in the terms of the command line."""
    head, sep, path = message.rpartition(" - at `$.")
    if not sep or not head.startswith("invalid "):
        return message
    field = path.rstrip("`").split(".")[0].split("[")[0]
    reason = head.split(": ", 1)[-1]
    if field == "target":
        return ("the snapshot must be 64 hex digits (or a unique prefix of at least 8, as "
                "tables print them)")
    what = _FIELDS.get(field, field)
    if "length >= 1" in reason:
        return f"{what} must not be empty"
    if "length <=" in reason:
        limit = reason.rsplit("<=", 1)[-1].strip().rstrip("`")
        return f"{what} is too long: at most {limit} characters"
    if "matching regex" in reason:
        return f"{what} must be one line of text, without control characters"
    return f"{what}: {reason}"


def _debug() -> bool:
    return os.environ.get("MODELSEAL_DEBUG", "") not in ("", "0")


def fail(exc: BaseException, as_json: bool = False) -> NoReturn:
    """Report ``exc`` on stderr (``error:`` and ``hint:`` lines, or one JSON object) and exit
    with its code. An exception the table does not name is an internal error (a bug)."""
    if deliberate(exc):
        exc = UsageProblem(in_user_terms(str(exc)))
    row = lookup(exc, TABLE)
    if isinstance(exc, click.ClickException):
        message = exc.format_message()
    else:
        message = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    if row.code == EXIT_INTERNAL:
        message = f"internal error (a bug): {type(exc).__name__}: {exc}; please report it"
        if _debug():
            traceback.print_exception(exc, file=sys.stderr)
    code = getattr(exc, "exit_code", row.code) if isinstance(exc, click.ClickException) \
        else row.code
    try:
        if as_json:
            click.echo(json.dumps({"error": {"class": type(exc).__name__, "message": message,
                                             "hint": row.hint, "exit_code": code}}), err=True)
        else:
            click.echo(f"error: {message}", err=True)
            if row.hint:
                click.echo(f"hint: {row.hint}", err=True)
    except (OSError, ValueError):
        pass  # stderr is gone or failing too: the exit code still tells
    raise SystemExit(code)
