"""Session 20b attack: the other waits of an exchange — a request body the server never
reads, a TLS handshake trickled by a non-TLS peer, and an IPv6 literal server URL."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ledger.client._errors import ServerUnavailableError
from ledger.client._http import Http
from tests.test_client_deadline import HEAD, LIFE, SLACK, TIMEOUT, RawServer


def _never_reads(conn: socket.socket, stop: threading.Event) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stop.wait(LIFE)


def test_a_request_body_the_server_never_reads_is_bounded() -> None:
    with RawServer(_never_reads, read_first=False) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=2)
        http.sleep = lambda s: None
        start = time.monotonic()
        try:
            with pytest.raises(ServerUnavailableError):
                http.call("POST", "/add", content=b"x" * (16 << 20))
        finally:
            http.close()
    assert time.monotonic() - start < TIMEOUT + SLACK


def _tls_trickle(conn: socket.socket, stop: threading.Event) -> None:
    """A TLS handshake record header announcing 16 KiB, its body a byte per 0.2 s."""
    conn.sendall(b"\x16\x03\x03\x3f\xff")
    end = time.monotonic() + LIFE
    while not stop.is_set() and time.monotonic() < end:
        conn.sendall(b"\x00")
        stop.wait(0.2)


def test_a_trickled_tls_handshake_is_bounded() -> None:
    with RawServer(_tls_trickle, read_first=False) as server:
        http = Http(server.url.replace("http://", "https://"), timeout=TIMEOUT, retries=3)
        http.sleep = lambda s: None
        start = time.monotonic()
        try:
            with pytest.raises(ServerUnavailableError):
                http.call("GET", "/checkpoint")
        finally:
            http.close()
    assert time.monotonic() - start < TIMEOUT + SLACK


class _V6(RawServer):
    def __init__(self) -> None:
        super().__init__(self._ok, family=socket.AF_INET6)

    def _ok(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(HEAD + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")


def test_an_ipv6_literal_server_url_is_reached() -> None:
    with _V6() as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            assert http.call("GET", "/checkpoint").body == b"ok"
        finally:
            http.close()
