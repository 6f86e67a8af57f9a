"""uvicorn's httptools protocol with the two limits it lacks: the size of a request's
line and headers, and the time they may take to arrive (a slow client holds only its
own connection, and not for long). Internal to the server."""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 16 * 1024  # bytes of request line and headers
HEAD_TIMEOUT = 5.0  # seconds from a request's first byte (or the connection) to its blank line
MAX_PIPELINE = 8  # requests parsed ahead of the one being answered
MAX_CONNECTIONS = 4096  # uvicorn's limit_concurrency: above it, requests get 503
# Past this many open connections, a new one closes the oldest idle ones (between
# requests, or still sending a head): a flood of connections that each sent one request
# cannot fill the table and lock everyone else out, and a new client is answered.
SOFT_CONNECTIONS = MAX_CONNECTIONS - 96
# Raw bytes a connection may send while a head is incomplete. httptools reports a header
# only once it ends, so an endless header is caught here, after the read that passes it;
# the allowance covers a head and the start of the next request arriving in one read.
MAX_RAW_HEAD = 2 * MAX_HEAD


class _HeadTooLarge(Exception):
    pass


class _PipelineTooDeep(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a request head over MAX_HEAD bytes (431, connection closed) and closes a
    connection whose request head is not complete within HEAD_TIMEOUT seconds."""

    max_head = MAX_HEAD
    head_timeout = HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = 0
        self._raw = 0  # bytes received while the current head is incomplete
        self._in_head = False  # a request's head has begun and is not complete
        self._head_timer: asyncio.TimerHandle | None = None
        self._since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        self._arm()
        if len(self.connections) > SOFT_CONNECTIONS:
            self._close_oldest_idle()

    def _idle(self) -> bool:
        """No request of this connection is being answered or waits to be."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _close_oldest_idle(self) -> None:
        idle = [c for c in self.connections
                if isinstance(c, LimitedHttpToolsProtocol) and c is not self and c._idle()]
        idle.sort(key=lambda c: c._since)
        for c in idle[:len(self.connections) - SOFT_CONNECTIONS + 32]:
            if c.transport is not None and not c.transport.is_closing():
                c.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            # bytes between requests (blank lines, a body nobody reads) start the head's
            # clock too: they do not keep a connection open for ever
            self._arm()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head_too_large()
            elif isinstance(exc.__context__, _PipelineTooDeep):
                self._refuse(429, b"Too Many Requests", b"TooManyPipelined",
                             f"more than {MAX_PIPELINE} requests sent ahead of their answers")
            else:
                self.send_400_response("the request is not valid HTTP/1.1")
            return
        except httptools.HttpParserError:
            self.send_400_response("the request is not valid HTTP/1.1")
            return
        except httptools.HttpParserUpgrade:
            self.send_400_response("this server does not upgrade connections")
            return
        if self._in_head:  # this read ended inside a head: count it (an endless header)
            # (it may also hold earlier requests: an overcount, within the allowance)
            self._raw += len(data)
            if self._raw > MAX_RAW_HEAD:
                self._refuse_head_too_large()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, b"Bad Request", b"MalformedInputError", msg)

    def _refuse_head_too_large(self) -> None:
        self._refuse(431, b"Request Header Fields Too Large", b"RequestHeaderTooLarge",
                     f"the request line and headers are over {self.max_head} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head, self._raw, self._in_head = 0, 0, True
        if self._head_timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        if len(self.pipeline) >= MAX_PIPELINE:
            raise _PipelineTooDeep()
        super().on_headers_complete()


    def _count(self, n: int) -> None:
        self._head += n
        if self._head > self.max_head:
            raise _HeadTooLarge()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its own limits apply
        self._refuse(408, b"Request Timeout", b"RequestTimeout",
                     f"the request did not arrive within {self.head_timeout:g} s")

    def _refuse(self, status: int, reason: bytes, error: bytes, message: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        body = b'{"error":"' + error + b'","message":"' + message.encode("ascii") + b'"}'
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()
