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


class _HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a request head over MAX_HEAD bytes (431, connection closed) and closes a
    connection whose request head is not complete within HEAD_TIMEOUT seconds."""

    max_head = MAX_HEAD
    head_timeout = HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, b"Request Header Fields Too Large", b"RequestHeaderTooLarge",
                             f"the request line and headers are over {self.max_head} bytes")
            else:
                self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            self.send_400_response("This server does not upgrade connections.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head = 0
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
        body = b'{"error":"' + error + b'","message":"' + message.encode("ascii") + b'"}'
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()
