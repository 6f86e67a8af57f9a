"""Session 20b attack: the environment's HTTP proxy (ledger/client/_deadline.py). A proxy
that stalls or refuses must end within ``--timeout`` as ServerUnavailableError (exit 4);
a proxy variable the client cannot use is a usage problem (exit 2), never an internal
error; NO_PROXY forms in common use are honoured."""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path

import pytest

from ledger.client._deadline import environment_proxy
from ledger.client._errors import ServerUnavailableError
from ledger.client._http import Http
from ledger.keys import LogKey
from tests.cli_support import Run, bare
from tests.test_client_deadline import HEAD, LIFE, SLACK, TIMEOUT, RawServer, read_head

def _head(conn: socket.socket) -> bytes:
    return (read_head(conn) or b"").split(b"\r\n\r\n", 1)[0]


class _Recorder(RawServer):
    """A proxy that answers every request itself, keeping the request heads it saw."""

    def __init__(self, answer: bytes = HEAD + b"Content-Length: 2\r\nConnection: close"
                 b"\r\n\r\nok", *, family: socket.AddressFamily = socket.AF_INET) -> None:
        super().__init__(self._answer, read_first=False, family=family)
        self.heads: list[bytes] = []
        self.reply = answer

    def __enter__(self) -> _Recorder:
        super().__enter__()
        return self

    def _answer(self, conn: socket.socket, stop: threading.Event) -> None:
        self.heads.append(_head(conn))
        conn.sendall(self.reply)


def _get(url: str, retries: int = 0) -> BaseException | None:
    http = Http(url, timeout=TIMEOUT, retries=retries)
    http.sleep = lambda s: None
    try:
        http.call("GET", "/checkpoint")
    except Exception as exc:  # noqa: BLE001
        return exc
    finally:
        http.close()
    return None


def _auth(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"proxy-authorization":
            scheme, _, token = value.strip().partition(b" ")
            assert scheme == b"Basic", value
            return base64.b64decode(token).decode("utf-8")
    return ""


# -- credentials ---------------------------------------------------------------------


@pytest.mark.parametrize(("userinfo", "expected"), [
    ("a%40b:p%3Ac%25", "a@b:p:c%"),  # %-escapes decoded once
    ("user", "user:"),  # no password
    ("user:", "user:"),
])
def test_proxy_userinfo_is_decoded(monkeypatch: pytest.MonkeyPatch, userinfo: str,
                                   expected: str) -> None:
    with _Recorder() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("//", f"//{userinfo}@"))
        assert _get("http://log.invalid:8080") is None
    assert _auth(proxy.heads[0]) == expected


def test_a_non_ascii_proxy_user_is_sent_as_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    # Was a finding (medium): userinfo that %-decodes to non-ASCII made Http() raise
    # httpcore's TypeError (CLI exit 70). Basic credentials are UTF-8 (RFC 7617): sent so.
    with _Recorder() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("//", "//us%C3%A9r:p%C3%A4ss@"))
        assert _get("http://log.invalid:8080") is None
    assert _auth(proxy.heads[0]) == "us\u00e9r:p\u00e4ss"


# -- the request through the proxy ---------------------------------------------------


def test_a_base_url_path_prefix_goes_through_the_proxy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with _Recorder() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert _get("http://log.invalid:8080/prefix/v1/") is None
    line = proxy.heads[0].split(b"\r\n")[0]
    assert line == b"GET http://log.invalid:8080/prefix/v1/checkpoint HTTP/1.1", line


def test_an_ipv6_proxy_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    with _Recorder(family=socket.AF_INET6) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert _get("http://log.invalid:8080") is None
    assert proxy.heads


def test_an_ipv6_target_through_a_proxy_is_bracketed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # FINDING (low): for a server URL with an IPv6 literal (http://[2001:db8::1]:8080)
    # sent through an HTTP proxy, the absolute-form request line lacks the brackets
    # ("GET http://2001:db8::1:8080/checkpoint"), which a proxy cannot parse (RFC 9112
    # 3.2.2 / RFC 3986 3.2.2); it should be "GET http://[2001:db8::1]:8080/checkpoint".
    with _Recorder() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert _get("http://[2001:db8::1]:8080") is None
    line = proxy.heads[0].split(b"\r\n")[0]
    assert line == b"GET http://[2001:db8::1]:8080/checkpoint HTTP/1.1", line


def test_a_proxy_that_answers_407_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    with _Recorder(reply) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        start = time.monotonic()
        exc = _get("https://log.invalid:8443", retries=2)
        assert proxy.heads and proxy.heads[0].startswith(b"CONNECT log.invalid:8443 ")
    assert isinstance(exc, ServerUnavailableError), repr(exc)
    assert "407" in str(exc), exc
    assert time.monotonic() - start < TIMEOUT + SLACK


def _slow_connect(conn: socket.socket, stop: threading.Event) -> None:
    """Answers CONNECT one byte per 0.2 s, for ever."""
    _head(conn)
    reply = b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"x" * 10_000
    end = time.monotonic() + LIFE
    for byte in reply:
        if stop.is_set() or time.monotonic() > end:
            return
        conn.sendall(bytes([byte]))
        stop.wait(0.2)


def test_a_proxy_that_answers_connect_slowly_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(_slow_connect, read_first=False) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        start = time.monotonic()
        exc = _get("https://log.invalid:8443", retries=3)
    assert isinstance(exc, ServerUnavailableError), repr(exc)
    assert time.monotonic() - start < TIMEOUT + SLACK


# -- which variables ------------------------------------------------------------------


def test_cgi_ignores_uppercase_http_proxy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://injected.example:1")
    assert environment_proxy("http://log.example") is None  # httpoxy: a request header
    monkeypatch.setenv("http_proxy", "http://chosen.example:3128")
    assert environment_proxy("http://log.example") == "http://chosen.example:3128"


def test_lowercase_wins_over_uppercase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:1")
    monkeypatch.setenv("https_proxy", "http://lower.example:2")
    assert environment_proxy("https://log.example") == "http://lower.example:2"


@pytest.mark.parametrize(("no_proxy", "url"), [
    (".example.org", "http://log.example.org:8080"),
    ("example.org", "http://log.example.org:8080"),
    ("::1", "http://[::1]:8080"),
    ("LOG.Example.ORG", "http://log.example.org"),
])
def test_no_proxy_forms_held(monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert environment_proxy(url) is None


@pytest.mark.parametrize(("no_proxy", "url"), [
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),  # host:port, as urllib itself matches
    ("127.0.0.0/8", "http://127.0.0.1:8080"),  # CIDR, as curl and Go read it
    ("[::1]", "http://[::1]:8080"),  # a bracketed IPv6 literal
])
def test_no_proxy_forms_missed(monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str) -> None:
    # FINDING (low): NO_PROXY entries with a port (host:port), a CIDR range or a bracketed
    # IPv6 literal are not honoured: environment_proxy passes urllib the bare hostname, so
    # urllib's own host:port match never applies, and urllib knows no CIDR. The request
    # (to a loopback server, say) goes to the proxy; it should connect directly.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert environment_proxy(url) is None


# -- through the CLI ------------------------------------------------------------------


def _cli(home: Path, proxy: str, *argv: str) -> Run:
    start = time.monotonic()
    run = bare(home, *argv, extra_env={"HTTP_PROXY": proxy})
    assert time.monotonic() - start < 20
    return run


@pytest.fixture(scope="module")
def log_vkey() -> str:
    return LogKey.generate("attack-s20b.example/log").vkey


def _checkpoint(tmp_path: Path, proxy: str, vkey: str) -> Run:
    return _cli(tmp_path, proxy, "--server", "http://127.0.0.1:1", "--log-vkey", vkey,
                "--timeout", "1", "--client-state", f"{tmp_path}/state.json", "checkpoint")


def test_cli_non_ascii_proxy_credentials_are_no_internal_error(tmp_path: Path,
                                                               log_vkey: str) -> None:
    # Was a finding (medium): exit 70 "internal error (a bug): TypeError". Now the
    # credentials are sent as UTF-8; the proxy (a closed port) is unreachable: exit 4.
    run = _checkpoint(tmp_path, "http://us%C3%A9r:pw@127.0.0.1:9", log_vkey)
    assert run.code == 4, run
    assert "internal error" not in run.err, run.err


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:99999", "http://[::1:9"])
def test_cli_a_bad_proxy_url_names_the_proxy(tmp_path: Path, log_vkey: str,
                                             proxy: str) -> None:
    # FINDING (low): a malformed HTTP_PROXY (port out of range, broken IPv6 literal) exits
    # 2 as it should, but the message blames the server ("error: --server: Port out of
    # range 0-65535"), sending the user to the wrong setting; it should name the proxy.
    run = _checkpoint(tmp_path, proxy, log_vkey)
    assert run.code == 2, run
    assert "proxy" in run.err.lower(), run.err


def test_cli_a_refusing_proxy_is_unreachable(tmp_path: Path, log_vkey: str) -> None:
    """Control: a proxy on a closed port: exit 4, one error line."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    run = _checkpoint(tmp_path, f"http://127.0.0.1:{port}", log_vkey)
    assert run.code == 4, run
    assert run.err.splitlines()[0].startswith("error: "), run.err
