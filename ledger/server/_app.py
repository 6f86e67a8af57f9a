"""The log server's ASGI application (specs/api.md). Internal to the server.

The event loop never waits for LMDB or the group commit: reads run in worker threads,
writes go to the server's writer thread (``_writer``), which commits every queued write
at once. At most ``Limits.max_writes`` writes are in flight: a write that finds them all
taken is answered 503 at once, nothing written.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import msgspec
from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.routing import Route

from verifier import iso, parse_time, to_ns

from .. import _tiles
from ..ledger import Ledger
from ..results import Receipt
from ._errors import RETRY_AFTER, HTTPProblem, as_problem, problem_response
from ._witnesses import Distributor
from ._writer import Writer

log = logging.getLogger("modelseal.server")
T = TypeVar("T")
# Checks a protected read's signature over the request and its exact body (read within
# the limits); returns the reading actor (raises HTTPProblem).
Authorize = Callable[[Request, bytes], Awaitable[str]]

_HEX64 = re.compile(r"[0-9a-f]{64}")
SEND_TIMEOUT = 30.0  # seconds a streamed piece may wait for its client to read
ANSWER_MARGIN = 60.0  # seconds a write's answer may take beyond the store's write_timeout
WRITER_STOP = 60.0  # seconds the writer may take, at shutdown, to commit what it holds
_JSON = "application/json"


@dataclass(frozen=True)
class Limits:
    """The server's limits (specs/api.md §1)."""

    max_body: int = 64 * 1024
    max_query: int = 1024
    body_timeout: float = 5.0  # seconds for a request's whole body to arrive
    max_writes: int = 64  # writes in flight (queued or committing) before 503
    max_reads: int = 8  # store reads at once
    max_bundles: int = 4  # bundles streamed at once (each holds a worker while it reads)
    max_entries: int = 1000  # per GET /entries


class App:
    """The routes over one open ``Ledger`` (opened with its log key)."""

    def __init__(self, ledger: Ledger, authorize: Authorize, limits: Limits,
                 distributor: Distributor | None = None) -> None:
        self.ledger, self.authorize, self.limits = ledger, authorize, limits
        self.distributor = distributor
        self.writer = Writer(ledger.add_many)
        self._reads = anyio.CapacityLimiter(limits.max_reads)
        self._bundles = anyio.CapacityLimiter(limits.max_bundles)

    # -- plumbing ---------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await to_thread.run_sync(fn, *args, limiter=self._reads)

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        limit = self.limits.max_body
        if length is not None:
            if not (length.isascii() and length.isdigit()) or len(length) > 20:
                raise HTTPProblem(400, "MalformedInputError", "Content-Length is not a number")
            if int(length) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.limits.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    chunks.append(chunk)
        except TimeoutError:
            raise HTTPProblem(408, "RequestTimeout",
                              f"the body did not arrive within {self.limits.body_timeout:g} s",
                              {"Connection": "close"}) from None
        return b"".join(chunks)

    def _query(self, request: Request, allowed: set[str]) -> dict[str, str]:
        raw = request.scope.get("query_string", b"")
        if len(raw) > self.limits.max_query:
            raise HTTPProblem(414, "MalformedInputError", "the query string is too long")
        out: dict[str, str] = {}
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise HTTPProblem(400, "MalformedInputError", "the query string is not ASCII") from None
        # percent-decoding only: a '+' is a plus sign (a time's offset), not a space
        items = [(urllib.parse.unquote(k), urllib.parse.unquote(v))
                 for k, _, v in (part.partition("=") for part in text.split("&") if part)]
        for key, value in items:
            if key not in allowed:
                raise HTTPProblem(400, "MalformedInputError", f"unknown parameter {key!r}")
            if key in out:
                raise HTTPProblem(400, "MalformedInputError", f"parameter {key!r} given twice")
            out[key] = value
        return out

    # -- writing ----------------------------------------------------------------------

    async def add(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != _JSON:
            raise HTTPProblem(415, "UnsupportedMediaType",
                              "POST /add takes a signed statement: Content-Type: application/json")
        body = await self._body(request)
        if self.writer.pending >= self.limits.max_writes:
            raise HTTPProblem(503, "Busy", "the write queue is full: retry the same bytes",
                              {"Retry-After": RETRY_AFTER})
        try:
            receipt = await asyncio.wait_for(asyncio.shield(self.writer.submit(body)),
                                             self.ledger.write_timeout + ANSWER_MARGIN)
        except TimeoutError:
            raise HTTPProblem(503, "Busy", "the write was not answered in time; it may still "
                              "be committed: retry the same bytes (a statement is appended "
                              "at most once)", {"Retry-After": RETRY_AFTER}) from None
        if self.distributor is not None and receipt.created:
            self.distributor.poke()
        return _json(_receipt_json(receipt), 201 if receipt.created else 200)

    # -- public reads -----------------------------------------------------------------

    async def log_info(self, request: Request) -> Response:
        self._query(request, set())
        led = self.ledger
        size = await self._read(lambda: led.size)
        return _json({"origin": led.origin, "log_key": led.log_vkey, "log_id": led.log_id,
                       "size": size})

    async def checkpoint(self, request: Request) -> Response:
        self._query(request, set())
        led = self.ledger
        note = await self._read(lambda: led.cosigned() or led.checkpoint())
        return Response(note, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    async def tile(self, request: Request) -> Response:
        self._query(request, set())
        level, index, width = _tiles.parse_tile_path(request.path_params["path"])
        data = await self._read(self.ledger.tile, level, index, width)
        if data is None:
            raise HTTPProblem(404, "NotFound", "the log does not hold that tile yet")
        cache = ("public, max-age=31536000, immutable" if width == _tiles.WIDTH
                 else "public, max-age=3600")
        return Response(data, media_type="application/octet-stream",
                        headers={"Cache-Control": cache})

    async def consistency(self, request: Request) -> Response:
        q = self._query(request, {"old", "new"})
        old = _uint(q, "old", required=True)
        new = _uint(q, "new")
        proof = await self._read(self.ledger.prove_consistency, old, new)
        return Response(proof.to_text(), media_type="text/plain; charset=utf-8")

    # -- protected reads --------------------------------------------------------------

    async def entry(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        self._query(request, set())
        ref = _ref(request.path_params["ref"])
        data = await self._read(self.ledger.entry, ref)
        return Response(data, media_type="application/octet-stream")

    async def entries(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        q = self._query(request, {"start", "count"})
        start, count = _uint(q, "start", required=True), _uint(q, "count", required=True)
        if not 1 <= count <= self.limits.max_entries:
            raise HTTPProblem(400, "MalformedInputError",
                              f"count must be 1..{self.limits.max_entries}")

        def read() -> list[bytes]:
            end = min(start + count, self.ledger.size)
            return [self.ledger.entry(i) for i in range(start, end)]

        found = await self._read(read)
        return _json({"start": start, "entries": [_b64(e) for e in found]})

    async def history(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        self._query(request, set())
        name = request.path_params["name"]

        def read() -> list[bytes]:
            return [self.ledger.entry(s.index) for s in self.ledger.history(name)]

        found = await self._read(read)
        if not found:
            raise HTTPProblem(404, "NotFound", f"no model {name!r} in the log")
        return _json({"model": name, "entries": [_b64(e) for e in found]})

    async def inventory(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        q = self._query(request, {"at"})
        at = _time(q["at"]) if "at" in q else None

        def read() -> tuple[int, dict[str, Any]]:
            states = self.ledger.inventory_at(at)
            return self.ledger.size, {n: s.to_json() for n, s in sorted(states.items())}

        size, models = await self._read(read)
        return _json({"at": None if at is None else iso(to_ns(at)), "size": size,
                      "models": models})

    async def inclusion(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        q = self._query(request, {"snapshot", "size"})
        snapshot = q.get("snapshot", "")
        if not _HEX64.fullmatch(snapshot):
            raise HTTPProblem(400, "MalformedInputError", "snapshot is 64 lower-case hex digits")
        size = _uint(q, "size")

        def read() -> bytes:
            if size is None:
                return self.ledger.receipt(snapshot).proof.to_text()
            return self.ledger.prove_inclusion(snapshot, size).to_text()

        return Response(await self._read(read), media_type="text/plain; charset=utf-8")

    async def bundle(self, request: Request) -> Response:
        await self.authorize(request, await self._body(request))
        q = self._query(request, {"at", "size", "trusted"})
        at = _time(q["at"]) if "at" in q else None
        size, trusted = _uint(q, "size"), _uint(q, "trusted")
        token = object()
        try:
            self._bundles.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            raise HTTPProblem(503, "Busy", f"{self.limits.max_bundles} bundles are being sent: "
                              "retry later", {"Retry-After": RETRY_AFTER}) from None
        try:
            pieces = await self._read(self.ledger.iter_bundle, at, size, trusted)
        except BaseException:
            self._bundles.release_on_behalf_of(token)
            raise
        return _BoundedStream(pieces, self._reads, self._bundles, token)


class _BoundedStream(StreamingResponse):
    """A streamed answer whose pieces are taken in a worker thread under ``limiter`` and
    each sent within SEND_TIMEOUT seconds: a client that stops reading is dropped (the
    server closes the connection) instead of holding its task for ever. A client that
    leaves ends the stream (Starlette listens for the disconnect). ``slot`` is released
    when the stream ends, however it ends."""

    def __init__(self, pieces: Iterator[bytes], limiter: anyio.CapacityLimiter,
                 slot: anyio.CapacityLimiter, token: object) -> None:
        super().__init__(_pieces(pieces, limiter), media_type=_JSON)
        self._slot, self._token = slot, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release_on_behalf_of(self._token)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            assert isinstance(chunk, bytes)
            try:
                with anyio.fail_after(SEND_TIMEOUT):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except TimeoutError:
                log.warning("dropped a client that read nothing for %g s", SEND_TIMEOUT)
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pieces(pieces: Iterator[bytes], limiter: anyio.CapacityLimiter
                  ) -> AsyncIterator[bytes]:
    """``pieces``, each taken in a worker thread under ``limiter``."""
    done = object()
    while True:
        piece = await to_thread.run_sync(next, pieces, done, limiter=limiter)
        if piece is done:
            return
        assert isinstance(piece, bytes)
        yield piece


def _too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(413, "TooLarge", f"the body is over {limit} bytes",
                       {"Connection": "close"})


def _json(doc: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(doc), status, media_type=_JSON)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _receipt_json(r: Receipt) -> dict[str, Any]:
    return {"index": r.index, "snapshot": r.snapshot_hash,
            "recorded_at": iso(to_ns(r.recorded_at)), "entry": _b64(r.entry),
            "proof": r.proof.to_text().decode("utf-8")}


def _uint(q: dict[str, str], key: str, required: bool = False) -> Any:
    value = q.get(key)
    if value is None:
        if required:
            raise HTTPProblem(400, "MalformedInputError", f"parameter {key!r} is required")
        return None
    if not value.isdigit() or not value.isascii() or len(value) > 20 \
            or (len(value) > 1 and value[0] == "0"):
        raise HTTPProblem(400, "MalformedInputError", f"{key} must be a decimal number")
    return int(value)


def _ref(text: str) -> int | str:
    if text.isdigit() and text.isascii() and len(text) <= 20:
        return int(text)
    if _HEX64.fullmatch(text):
        return text
    raise HTTPProblem(400, "MalformedInputError", "an entry is named by its index or its "
                      "snapshot hash (64 lower-case hex digits)")


def _time(text: str) -> Any:
    try:
        when = parse_time(text)
    except ValueError as exc:
        raise HTTPProblem(400, "MalformedInputError", str(exc)) from None
    if to_ns(when) < 0:
        raise HTTPProblem(400, "ArgumentError",
                          f"{text!r} is before 1970-01-01T00:00:00Z, before any log")
    return when


def build(ledger: Ledger, authorize: Authorize, limits: Limits | None = None,
          distributor: Distributor | None = None) -> Starlette:
    """The ASGI application serving ``ledger`` (which must hold its log key); while it
    runs (its lifespan), ``distributor`` sends checkpoints to the witnesses."""
    app = App(ledger, authorize, limits or Limits(), distributor)

    def guarded(fn: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except BaseException as exc:  # noqa: BLE001 - every refusal is answered
                if not isinstance(exc, Exception):
                    raise
                if isinstance(exc, ClientDisconnect):
                    return Response(status_code=499)  # nobody to answer; nothing to log
                p = as_problem(exc)
                if p is None:
                    log.exception("internal error on %s %s", request.method, request.url.path)
                    p = HTTPProblem(500, "InternalError", "internal error; the server logged it")
                return problem_response(p)
        return endpoint

    routes = [
        Route("/add", guarded(app.add), methods=["POST"]),
        Route("/log", guarded(app.log_info), methods=["GET"]),
        Route("/checkpoint", guarded(app.checkpoint), methods=["GET"]),
        Route("/tile/{path:path}", guarded(app.tile), methods=["GET"]),
        Route("/proof/consistency", guarded(app.consistency), methods=["GET"]),
        Route("/proof/inclusion", guarded(app.inclusion), methods=["GET"]),
        Route("/entry/{ref}", guarded(app.entry), methods=["GET"]),
        Route("/entries", guarded(app.entries), methods=["GET"]),
        Route("/history/{name:path}", guarded(app.history), methods=["GET"]),
        Route("/inventory", guarded(app.inventory), methods=["GET"]),
        Route("/bundle", guarded(app.bundle), methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            if distributor is None:
                yield
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(distributor.run)
                yield
                tg.cancel_scope.cancel()
        finally:
            await to_thread.run_sync(app.writer.stop, WRITER_STOP)

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem_response(HTTPProblem(404, "NotFound", "no such path"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        allow = dict(getattr(exc, "headers", None) or {}).get("Allow")
        return problem_response(HTTPProblem(405, "MethodNotAllowed",
                                            f"{request.method} is not allowed here",
                                            {"Allow": allow} if allow else None))

    application = Starlette(routes=routes, lifespan=lifespan,
                            exception_handlers={404: not_found, 405: not_allowed})
    application.router.redirect_slashes = False  # '/log/' is not '/log'
    return application
