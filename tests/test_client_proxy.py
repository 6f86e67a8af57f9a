"""The client goes through the HTTP proxy the environment names (HTTP_PROXY, HTTPS_PROXY,
ALL_PROXY; NO_PROXY honoured), on the same deadline transport: a proxy that trickles is
bounded like a server."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.client._deadline import DeadlineTransport, environment_proxy
from ledger.client._errors import ServerUnavailableError
from ledger.client._deadline import proxy_shown
from ledger.client._http import Http

from .client_support import clear_proxy_env
from .test_client_deadline import HEAD, SLACK, TIMEOUT, RawServer, read_head, trickle_head

@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_env(monkeypatch)


class _Proxy(RawServer):
    """Answers every request itself ("via-proxy"), keeping the request heads it saw."""

    def __init__(self) -> None:
        super().__init__(self._answer, read_first=False)
        self.heads: list[bytes] = []

    def _answer(self, conn: socket.socket, stop: threading.Event) -> None:
        data = read_head(conn)
        if data is None:
            return
        self.heads.append(data.split(b"\r\n\r\n", 1)[0])
        conn.sendall(HEAD + b"Content-Length: 9\r\nConnection: close\r\n\r\nvia-proxy")


def test_environment_proxy_reads_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_proxy("http://log.example:8080") is None
    monkeypatch.setenv("HTTP_PROXY", "proxy.example:3128")
    assert environment_proxy("http://log.example:8080") == "http://proxy.example:3128"
    assert environment_proxy("https://log.example") is None  # HTTPS_PROXY not set
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3129")
    assert environment_proxy("https://log.example") == "http://user:pw@proxy.example:3129"
    monkeypatch.setenv("NO_PROXY", "log.example,localhost")
    assert environment_proxy("http://log.example:8080") is None
    assert environment_proxy("https://log.example") is None
    assert environment_proxy("http://other.example") == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "*")
    assert environment_proxy("http://other.example") is None


def test_requests_go_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with _Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        http = Http("http://log.invalid:8080", timeout=TIMEOUT, retries=0)
        try:
            answer = http.call("GET", "/checkpoint")
        finally:
            http.close()
    assert answer.body == b"via-proxy"
    assert proxy.heads and proxy.heads[0].startswith(
        b"GET http://log.invalid:8080/checkpoint HTTP/1.1\r\n")


def test_proxy_credentials_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    with _Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://ci%40x:s3cret@"))
        http = Http("http://log.invalid:8080", timeout=TIMEOUT, retries=0)
        try:
            http.call("GET", "/checkpoint")
        finally:
            http.close()
    # base64("ci@x:s3cret")
    assert b"Proxy-Authorization: Basic Y2lAeDpzM2NyZXQ=" in proxy.heads[0]


def test_no_proxy_connects_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    with _Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "log.invalid")
        http = Http("http://log.invalid:8080", timeout=TIMEOUT, retries=0)
        try:
            with pytest.raises(ServerUnavailableError):
                http.call("GET", "/checkpoint")  # log.invalid does not resolve
        finally:
            http.close()
    assert proxy.heads == []


def test_a_trickling_proxy_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(trickle_head) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        http = Http("http://log.invalid:8080", timeout=TIMEOUT, retries=1)
        http.sleep = lambda s: None
        start = time.monotonic()
        try:
            with pytest.raises(ServerUnavailableError):
                http.call("GET", "/checkpoint")
        finally:
            http.close()
    assert time.monotonic() - start < TIMEOUT + SLACK


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "ftp://proxy.example:21"])
def test_an_unsupported_proxy_is_refused(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with pytest.raises(ValueError, match="only those are supported"):
        Http("http://log.example:8080", timeout=TIMEOUT, retries=0)


def test_a_transport_without_proxy_connects_directly() -> None:
    transport = DeadlineTransport()
    try:
        assert type(transport._pool).__name__ == "ConnectionPool"
    finally:
        transport.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_proxy_that_cannot_be_reached_is_named_without_its_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://ci:s3cret@127.0.0.1:{port}")
    http = Http("http://log.invalid:8080", timeout=TIMEOUT, retries=0)
    try:
        with pytest.raises(ServerUnavailableError) as caught:
            http.call("GET", "/checkpoint")
    finally:
        http.close()
    text = str(caught.value)
    assert f"through the proxy http://127.0.0.1:{port}" in text, text
    assert "http://log.invalid:8080" in text and "s3cret" not in text and "ci:" not in text


def test_without_a_proxy_only_the_server_is_named() -> None:
    port = _closed_port()
    http = Http(f"http://127.0.0.1:{port}", timeout=TIMEOUT, retries=0)
    try:
        with pytest.raises(ServerUnavailableError) as caught:
            http.call("GET", "/checkpoint")
    finally:
        http.close()
    assert "proxy" not in str(caught.value) and f"127.0.0.1:{port}" in str(caught.value)


@given(user=st.text(max_size=12),  # unencoded '/', '?', '#', '@' too: never shown
       password=st.text(min_size=4, max_size=12).map(lambda p: f"pw{p}"),
       path=st.sampled_from(["", "/", "/x?y=1"]))
def test_proxy_credentials_never_reach_the_error_line(user: str, password: str,
                                                      path: str) -> None:
    shown = proxy_shown(f"http://{user}:{password}@proxy.example:3128{path}")
    assert shown == f"http://proxy.example:3128{path}" and password not in shown
