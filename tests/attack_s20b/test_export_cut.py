"""Session 20b attack: a bundle's transfer cut short must never be taken for a whole
bundle: not by Client.export_bundle (to a file or to a pipe) nor by `modelseal export`."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from ledger.client import Client
from ledger.client import ServerMisbehaviourError, ServerUnavailableError
from ledger.keys import LogKey
from tests.cli_support import bare
from tests.test_client_deadline import Handler, LIFE, RawServer

PART = b'{"format": "modelseal-bundle/1", "entries": [' + b" " * 70_000
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def log_vkey() -> str:
    return LogKey.generate("attack-s20b.example/log").vkey


def close_delimited(conn: socket.socket, stop: threading.Event) -> None:
    """No Content-Length, no chunking: the body ends where the connection closes, here
    in the middle of the bundle."""
    conn.sendall(OK + b"Connection: close\r\n\r\n" + PART)


def chunked_cut(conn: socket.socket, stop: threading.Event) -> None:
    """Chunked, closed before the last chunk."""
    conn.sendall(OK + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(PART) + PART
                 + b"\r\n")


def length_cut(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(OK + b"Content-Length: 200000\r\n\r\n" + PART)


def _client(url: str, vkey: str, retries: int = 0) -> Client:
    return Client(url, log_key=vkey, timeout=1.0, retries=retries)


@pytest.mark.parametrize("handler", [chunked_cut, length_cut])
def test_a_framed_cut_is_an_error(handler: Handler, log_vkey: str) -> None:
    with RawServer(handler) as server:
        client = _client(server.url, log_vkey)
        try:
            with pytest.raises(ServerUnavailableError):
                client.export_bundle(out=io.BytesIO())
        finally:
            client.close()


def test_a_close_delimited_cut_is_not_a_whole_bundle(log_vkey: str) -> None:
    # FINDING (low): an answer to GET /bundle with neither Content-Length nor chunked
    # encoding ends where the connection closes (RFC 9112 6.3 rule 8), so a transfer cut
    # there (a proxy, a crash) is indistinguishable from the end: export_bundle returns
    # the partial byte count as success and `modelseal export` reports the bundle
    # written. The client should refuse an unframed body for /bundle (our server always
    # frames it) as ServerMisbehaviourError/ServerUnavailableError.
    with RawServer(close_delimited) as server:
        client = _client(server.url, log_vkey)
        out = io.BytesIO()
        try:
            with pytest.raises((ServerUnavailableError, ServerMisbehaviourError)):
                client.export_bundle(out=out)  # on main: returns len(PART), no error
        finally:
            client.close()


def _cut_then_whole() -> Handler:
    """A handler whose first connection is cut short (``length_cut``) and whose later ones
    get a whole ``{}`` answer."""
    served = [0]

    def cut_then_whole(conn: socket.socket, stop: threading.Event) -> None:
        served[0] += 1
        if served[0] == 1:
            length_cut(conn, stop)
        else:
            conn.sendall(OK + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")

    return cut_then_whole


def test_a_cut_into_a_pipe_is_an_error_and_says_so(log_vkey: str) -> None:
    """A non-seekable output: the first attempt's bytes are out; the retry must not
    append a second copy after them but fail."""
    cut_then_whole = _cut_then_whole()
    read_fd, write_fd = os.pipe()
    got = bytearray()

    def drain() -> None:
        end = time.monotonic() + LIFE
        while time.monotonic() < end:
            piece = os.read(read_fd, 1 << 16)
            if not piece:
                return
            got.extend(piece)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with RawServer(cut_then_whole) as server, os.fdopen(write_fd, "wb") as pipe:
        client = _client(server.url, log_vkey, retries=2)
        client._http.sleep = lambda s: None
        try:
            with pytest.raises(ServerUnavailableError, match="cannot be rewound"):
                client.export_bundle(out=pipe)
        finally:
            client.close()
    reader.join(10)
    os.close(read_fd)
    assert not got.endswith(b"{}"), bytes(got[-20:])


def test_a_cut_into_a_file_is_rewound(log_vkey: str) -> None:
    cut_then_whole = _cut_then_whole()
    out = io.BytesIO(b"keep:")
    out.seek(5)
    with RawServer(cut_then_whole) as server:
        client = _client(server.url, log_vkey, retries=2)
        client._http.sleep = lambda s: None
        try:
            assert client.export_bundle(out=out) == 2
        finally:
            client.close()
    assert out.getvalue() == b"keep:{}"


def test_cli_export_of_a_close_delimited_cut(tmp_path: Path, log_vkey: str) -> None:
    # FINDING (low): see test_a_close_delimited_cut_is_not_a_whole_bundle; `modelseal
    # export` exits 0 and leaves the cut bundle at OUTPUT. It should exit 4 (or 5) and
    # leave nothing.
    out = tmp_path / "bundle.json"
    with RawServer(close_delimited) as server:
        run = bare(tmp_path, "--server", server.url, "--log-vkey", log_vkey, "--timeout", "1",
                   "--client-state", tmp_path / "state.json", "export", "-o", out)
    assert run.code != 0 and not out.exists(), (run, out.exists())
