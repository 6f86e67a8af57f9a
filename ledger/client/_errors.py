"""The client's errors, and the map from a server's error answer back to the classes the
``Ledger`` raises (specs/api.md §1), so a caller (and the CLI's exit codes) cannot tell a
remote refusal from a local one."""

from __future__ import annotations

import json

from verifier import (
    AuthorizationError,
    ChainError,
    ConsistencyError,
    MalformedInputError,
    PolicyError,
    RuleError,
    SignatureError,
    TimeBoundError,
    VerificationError,
)

from ..errors import ArgumentError, StoreBusyError, StoreFullError, StoreLimitError

MAX_MESSAGE = 500
"""A server's message is cut to this many characters (and to one line)."""


class ServerError(Exception):
    """An answer the client cannot map to a ledger error: an unknown error name, a body
    that is not the error object of specs/api.md §1, or a status the contract does not
    give for that name. ``status`` is the HTTP status; ``name`` the server's error name,
    if it gave a readable one."""

    def __init__(self, message: str, *, status: int, name: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.name = name


class NotFoundError(ServerError, KeyError):
    """``404 NotFound``: no such entry, model or proof. A KeyError, as the Ledger's
    lookups raise."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ServerUnavailableError(ConnectionError):
    """The server could not be reached or did not answer in time, after every retry;
    or its TLS certificate was refused (not retried). Nothing is known to be written:
    sending the same statement again is safe."""


class ArgumentRefusedError(ArgumentError):
    """``400 ArgumentError``: an index, size, time or hash the log cannot answer (the
    Ledger raises ArgumentError, a ValueError, for the same argument)."""


class UnauthenticatedError(AuthorizationError):
    """``401``: a protected read was unsigned, or its signature, key or time refused."""


class ReadForbiddenError(AuthorizationError):
    """``403 ForbiddenRoleError``: the read's signature is good, but its key's role may not
    read (a writer's key: reads need the reader or admin role)."""


class ServerMisbehaviourError(VerificationError):
    """The server's answer fails the client's checks: a receipt that does not prove the
    statement sent, a checkpoint not signed by the pinned log key, an answer that is not
    what specs/api.md says. Evidence about the server: keep it."""


class ForkError(ServerMisbehaviourError, ConsistencyError):
    """The server showed a tree that is not consistent with the checkpoint the client
    kept: another root for the same size, or a larger tree that does not extend it."""


class RollbackError(ServerMisbehaviourError, ConsistencyError):
    """The server showed a smaller tree it cannot prove to be a prefix of the kept one."""


class StateFileError(MalformedInputError):
    """The client's state file cannot be read as the format says, or does not hold a
    checkpoint the pinned log key signed."""


# name -> (class, the statuses specs/api.md §1 gives that name)
_BY_NAME: dict[str, tuple[type[Exception], frozenset[int]]] = {
    "MalformedInputError": (MalformedInputError, frozenset({400})),
    "MalformedRequestError": (MalformedInputError, frozenset({400})),  # §6.3 step 1
    "ArgumentError": (ArgumentRefusedError, frozenset({400})),
    "Unauthenticated": (UnauthenticatedError, frozenset({401})),
    "AuthorizationError": (AuthorizationError, frozenset({403})),
    "ForbiddenRoleError": (ReadForbiddenError, frozenset({403})),  # §6.3 step 15
    "SignatureError": (SignatureError, frozenset({403})),
    "NotFound": (NotFoundError, frozenset({404})),
    "RuleError": (RuleError, frozenset({409})),
    "PolicyError": (PolicyError, frozenset({409})),
    "ChainError": (ChainError, frozenset({409})),
    "TimeBoundError": (TimeBoundError, frozenset({409})),
    "Busy": (StoreBusyError, frozenset({503})),
    "NonceCacheFullError": (StoreBusyError, frozenset({503})),  # §6.3 step 16
    "StoreFullError": (StoreFullError, frozenset({507})),
    "StoreLimitError": (StoreLimitError, frozenset({507})),
}


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else " " for c in text).strip()
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _error_object(body: bytes) -> tuple[str, str] | None:
    """(name, message) of a well-formed error body, else None."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or set(doc) != {"error", "message"}:
        return None
    name, message = doc["error"], doc["message"]
    if not isinstance(name, str) or not isinstance(message, str) or not name.isidentifier():
        return None
    return name, message


def error_from_answer(status: int, body: bytes, what: str = "the server", *,
                      read: bool = True) -> Exception:
    """The exception an error answer (status >= 400) stands for: the Ledger's class its
    ``error`` names (a whitelist), any 401 an UnauthenticatedError, else ServerError.
    ``read``: the request was a read (a refused write is never a ReadForbiddenError).
    Never raises; ``body`` may be any bytes."""
    parsed = _error_object(body) if isinstance(body, (bytes, bytearray)) else None
    if parsed is None:
        if status == 401:
            return UnauthenticatedError(f"{what} refused the request's signature ({status})")
        return ServerError(f"{what} answered {status} without a readable error",
                           status=status)
    name, raw = parsed
    message = one_line(raw) or name
    known = _BY_NAME.get(name)
    if known is not None and status in known[1]:
        cls = known[0]
        if cls is ReadForbiddenError and not read:
            cls = AuthorizationError
        if issubclass(cls, ServerError):
            return cls(message, status=status, name=name)
        return cls(message)
    if status == 401:  # Unauthenticated and the subclasses of its §5
        return UnauthenticatedError(message)
    return ServerError(f"{what} answered {status} {one_line(name, 80)}: {message}",
                       status=status, name=name)
