"""Errors as HTTP answers (specs/api.md §1): one JSON shape, one status per class.
Internal to the server."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from verifier import (
    AuthorizationError,
    ChainError,
    MalformedInputError,
    RuleError,
    SignatureError,
    TimeBoundError,
    VerificationError,
)

from ..errors import (
    ArgumentError,
    StoreBusyError,
    StoreFullError,
    StoreLimitError,
    UnknownEntryError,
)

RETRY_AFTER = "1"  # seconds a client waits before it retries a 503


class HTTPProblem(Exception):
    """An answer the server gives on purpose: ``status``, the ``error`` name, a message."""

    def __init__(self, status: int, error: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers or {}


def problem_response(p: HTTPProblem) -> Response:
    """The JSON error answer of ``p``."""
    body = msgspec.json.encode({"error": p.error, "message": p.message})
    return Response(body, p.status, headers=p.headers, media_type="application/json")


# (class, status) in order: the first class an exception is an instance of wins.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (MalformedInputError, 400),
    (AuthorizationError, 403),
    (SignatureError, 403),
    (RuleError, 409),
    (ChainError, 409),
    (TimeBoundError, 409),
    (StoreFullError, 507),
    (StoreLimitError, 507),
)


def as_problem(exc: BaseException) -> HTTPProblem | None:
    """The answer to a refusal the ledger or the verifier raised; None for anything
    else (a bug: the caller answers 500 and logs it)."""
    if isinstance(exc, HTTPProblem):
        return exc
    if isinstance(exc, UnknownEntryError):
        return HTTPProblem(404, "NotFound", str(exc))
    if isinstance(exc, ArgumentError):
        return HTTPProblem(400, "ArgumentError", str(exc))
    if isinstance(exc, StoreBusyError):
        return HTTPProblem(503, "Busy", str(exc), {"Retry-After": RETRY_AFTER})
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return HTTPProblem(status, type(exc).__name__, str(exc))
    if isinstance(exc, VerificationError):
        return HTTPProblem(409, type(exc).__name__, str(exc))
    return None
