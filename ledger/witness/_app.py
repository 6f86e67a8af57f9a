"""The witness's HTTP surface (specs/witness.md): ``POST /add-checkpoint`` and, for
monitors, ``GET /<origin hash>/checkpoint``. Internal.

Answers other than a cosignature are one line of plain text with the status
c2sp.org/tlog-witness names; a 409 carries the witness's size (``text/x.tlog.size``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import StoreBusyError
from ._request import MAX_BODY
from ._witness import Refused, Witness

log = logging.getLogger("modelseal.witness")
BODY_TIMEOUT = 5.0  # seconds for a request's whole body to arrive
MAX_AT_ONCE = 8  # requests checked and cosigned at once (worker threads)
_TEXT = "text/plain; charset=utf-8"
_HASH = re.compile(r"[0-9a-f]{64}")


class _Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response((message.replace("\n", " ") + "\n").encode("utf-8"), status,
                    headers=headers, media_type=_TEXT)


async def _body(request: Request) -> bytes:
    """The request's body: at most MAX_BODY bytes, arrived within BODY_TIMEOUT seconds."""
    length = request.headers.get("content-length")
    if length is not None and (not (length.isascii() and length.isdigit()) or len(length) > 20):
        raise _Problem(400, "Content-Length is not a number")
    too_large = _Problem(413, f"the body is over {MAX_BODY} bytes", {"Connection": "close"})
    if length is not None and int(length) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    try:
        with anyio.fail_after(BODY_TIMEOUT):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise _Problem(408, f"the body did not arrive within {BODY_TIMEOUT:g} s",
                       {"Connection": "close"}) from None
    return b"".join(chunks)


def build(witness: Witness) -> Starlette:
    """The ASGI application of ``witness``."""
    limiter = anyio.CapacityLimiter(MAX_AT_ONCE)

    async def add_checkpoint(request: Request) -> Response:
        if request.url.query:
            raise _Problem(400, "add-checkpoint takes no query parameters")
        body = await _body(request)
        try:
            lines = await to_thread.run_sync(witness.add_checkpoint, body, limiter=limiter)
        except Refused as exc:
            if exc.status == 409:
                return Response(f"{exc.size}\n".encode("ascii"), 409,
                                headers={"Content-Type": "text/x.tlog.size"})
            return _text(exc.status, exc.message)
        return Response(lines, 200, media_type=_TEXT)

    async def checkpoint(request: Request) -> Response:
        hashed = request.path_params["origin_hash"]
        if not _HASH.fullmatch(hashed):
            raise _Problem(404, "no such path")
        note = await to_thread.run_sync(witness.latest, hashed, limiter=limiter)
        if note is None:
            raise _Problem(404, "this witness has cosigned no checkpoint of that log")
        return Response(note, media_type=_TEXT, headers={"Cache-Control": "no-cache"})

    def guarded(fn: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except _Problem as p:
                return _text(p.status, p.message, p.headers)
            except ClientDisconnect:
                return Response(status_code=499)
            except StoreBusyError as exc:
                return _text(503, str(exc), {"Retry-After": "1"})
            except Exception:  # a bug or a broken disk: logged, never shown to the client
                log.exception("internal error on %s %s", request.method, request.url.path)
                return _text(500, "internal error; the witness logged it")
        return endpoint

    async def not_found(request: Request, exc: Exception) -> Response:
        return _text(404, "no such path")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        allow = dict(getattr(exc, "headers", None) or {}).get("Allow")
        return _text(405, f"{request.method} is not allowed here",
                     {"Allow": allow} if allow else None)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(routes=[
        Route("/add-checkpoint", guarded(add_checkpoint), methods=["POST"]),
        Route("/{origin_hash}/checkpoint", guarded(checkpoint), methods=["GET"]),
    ], lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed})
    app.router.redirect_slashes = False
    return app
