"""The client's timeout bounds a whole exchange, headers included, against a server that
trickles its answer one byte at a time (each wait alone shorter than the timeout), one
that trickles the body, one that says nothing, and (control) one that answers."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledger.client import ServerUnavailableError
from ledger.client._deadline import DeadlineTransport, _Backend, _Stream, within
from ledger.client._http import STREAM_PACE, Http
from ledger.keys import LogKey

from .cli_support import REPO, assert_no_traceback, Run

TICK = 0.2  # seconds between two trickled bytes
LIFE = 120.0  # no handler runs longer than this, whatever happens
TIMEOUT = 1.0
SLACK = 1.5  # seconds allowed past the timeout (thread start, connection close, CI noise)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


def read_head(conn: socket.socket) -> bytes | None:
    """Read a request up to the blank line ending its head (or 64 KiB): the bytes read,
    or None if the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 1 << 16:
        got = conn.recv(4096)
        if not got:
            return None
        data += got
    return data


def _trickle(conn: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send ``data`` one byte per TICK, then 'x' bytes, until stopped or the peer goes."""
    end = time.monotonic() + LIFE
    i = 0
    while not stop.is_set() and time.monotonic() < end:
        conn.sendall(data[i:i + 1] if i < len(data) else b"x")
        i += 1
        stop.wait(TICK)


def trickle_head(conn: socket.socket, stop: threading.Event) -> None:
    """(a) The status line and headers one byte at a time, for ever."""
    _trickle(conn, HEAD + b"X-Slow: ", stop)


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    """(b) The headers at once, then the body one byte at a time."""
    conn.sendall(HEAD + b"Content-Length: 1000000\r\n\r\n")
    _trickle(conn, b"", stop)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """(c) Accept, read the request, say nothing."""
    stop.wait(LIFE)


def normal(conn: socket.socket, stop: threading.Event) -> None:
    """(d) A small valid answer."""
    conn.sendall(HEAD + b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")


Handler = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A socket server on 127.0.0.1 (::1 for ``family`` AF_INET6; a free port) running
    ``handler`` for each connection in its own thread, after reading its request unless
    not ``read_first``; every loop is bounded and ``stop`` ends them all."""

    def __init__(self, handler: Handler, *, read_first: bool = True,
                 family: socket.AddressFamily = socket.AF_INET) -> None:
        self.handler = handler
        self.read_first = read_first
        self.stop = threading.Event()
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        netloc = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{netloc}:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        end = time.monotonic() + LIFE
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5.0)
            if self.read_first:
                read_head(conn)
            self.handler(conn, self.stop)

    def __enter__(self) -> RawServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        self.sock.close()
        assert not self._accepter.is_alive()
        assert not any(t.is_alive() for t in self._threads)


@contextlib.contextmanager
def served(handler: Handler) -> Iterator[RawServer]:
    with RawServer(handler) as server:
        yield server


def _timed(fn: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(ServerUnavailableError) as info:
        fn()
    return info.value, time.monotonic() - start


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("handler", [trickle_head, trickle_body, silent],
                         ids=["trickled-head", "trickled-body", "silent"])
def test_call_is_bounded(handler: Handler, retries: int) -> None:
    with served(handler) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=retries)
        try:
            exc, took = _timed(lambda: http.call("GET", "/checkpoint"))
        finally:
            http.close()
    assert took < TIMEOUT + SLACK, took
    assert took >= TIMEOUT * 0.9, took  # it did wait (the server was reached)
    assert "did not answer GET /checkpoint within 1 s" in str(exc) \
        or "within 1 s" in str(exc), str(exc)


@pytest.mark.parametrize("handler", [trickle_head, silent], ids=["trickled-head", "silent"])
def test_stream_headers_are_bounded(handler: Handler) -> None:
    with served(handler) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=1)
        try:
            _, took = _timed(lambda: http.stream("GET", "/bundle", lambda r: r.read()))
        finally:
            http.close()
    # each attempt's headers within the timeout, as stream documents (2 attempts + backoff)
    assert took < 2 * TIMEOUT + SLACK + 0.5, took


def test_stream_body_keeps_its_per_wait_bound() -> None:
    """A trickled body is read by ``stream`` as long as each byte comes within the
    timeout (documented); the reader here stops on its own after a few bytes."""
    got: list[bytes] = []

    def read(resp: httpx.Response) -> int:
        for chunk in resp.iter_bytes():
            got.append(chunk)
            if sum(map(len, got)) >= 8:  # 8 ticks, past TIMEOUT in all
                break
        return len(got)

    with served(trickle_body) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            start = time.monotonic()
            http.stream("GET", "/bundle", read)
            took = time.monotonic() - start
        finally:
            http.close()
    assert b"".join(got)[:8] == b"x" * 8
    assert took > TIMEOUT  # the body took longer than the timeout, and was not cut


def test_normal_answer_through_the_deadline_transport() -> None:
    with served(normal) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            answer = http.call("GET", "/checkpoint")
            assert (answer.status, answer.body) == (200, b"hello")
            assert http.stream("GET", "/x", lambda r: r.read()) == b"hello"
        finally:
            http.close()


def test_threads_keep_their_own_deadlines() -> None:
    """One Http shared by threads: a thread stuck on a silent server times out at its
    own deadline while another thread's calls to a good server go through."""
    with served(silent) as bad, served(normal) as good:
        slow = Http(bad.url, timeout=TIMEOUT, retries=0)
        fast = Http(good.url, timeout=TIMEOUT, retries=0)
        errors: list[BaseException] = []

        def stuck() -> None:
            try:
                slow.call("GET", "/checkpoint")
            except BaseException as exc:  # noqa: BLE001 - checked below
                errors.append(exc)

        t = threading.Thread(target=stuck)
        start = time.monotonic()
        t.start()
        try:
            for _ in range(5):
                assert fast.call("GET", "/c").body == b"hello"
            t.join(TIMEOUT + SLACK + 1)
            assert not t.is_alive()
        finally:
            slow.close()
            fast.close()
        assert time.monotonic() - start < TIMEOUT + SLACK + 1
        assert len(errors) == 1 and isinstance(errors[0], ServerUnavailableError)


def test_connect_to_a_closed_port_is_prompt() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http = Http(f"http://127.0.0.1:{port}", timeout=TIMEOUT, retries=0)
    try:
        exc, took = _timed(lambda: http.call("GET", "/checkpoint"))
    finally:
        http.close()
    assert "connection refused" in str(exc) and took < TIMEOUT


# -- the parts -------------------------------------------------------------------------


class _Recorder(httpcore.NetworkStream):
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self.written: list[bytes] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)
        self.written.append(buffer)


def test_stream_caps_each_wait_at_the_time_left() -> None:
    inner = _Recorder()
    stream = _Stream(inner)
    stream.read(10, 30.0)
    assert inner.timeouts == [30.0]  # no deadline held: httpx's own timeout
    with within(time.monotonic() + 0.5):
        stream.read(10, 30.0)
        stream.read(10, None)
        stream.read(10, 0.1)
    assert all(t is not None and t <= 0.5 for t in inner.timeouts[1:3])
    assert inner.timeouts[3] == 0.1
    with within(time.monotonic() - 1):
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, 30.0)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"abc", 30.0)
    assert len(inner.timeouts) == 4
    stream.write(b"y" * 40_000, 5.0)
    assert b"".join(inner.written) == b"y" * 40_000 and len(inner.written) == 3
    stream.write(b"", 5.0)  # nothing to send: no wait


def test_backend_refuses_to_connect_after_the_deadline() -> None:
    with within(time.monotonic() - 1), pytest.raises(httpcore.ConnectTimeout):
        _Backend().connect_tcp("127.0.0.1", 9, 30.0)


def test_timeouts_reach_httpx_as_httpx_timeouts() -> None:
    """The transport maps httpcore's errors to httpx's (Http catches httpx's)."""
    with served(silent) as server:
        transport = DeadlineTransport()
        try:
            with httpx.Client(transport=transport) as client, \
                    within(time.monotonic() + 0.3), pytest.raises(httpx.ReadTimeout):
                client.get(server.url + "/x", timeout=30.0)
        finally:
            transport.close()


# -- the name lookup -------------------------------------------------------------------

NAME = "ledger.deadline.test"  # looked up through the patched getaddrinfo only


def _resolver(monkeypatch: pytest.MonkeyPatch, answer: Callable[[], list[str]]) -> list[str]:
    """getaddrinfo answering NAME with ``answer()``; the names asked are returned."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kw)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer()]
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_each_address_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.2 refuses (the server listens on 127.0.0.1 only); the next one answers."""
    asked = _resolver(monkeypatch, lambda: ["127.0.0.2", "127.0.0.1"])
    with served(normal) as server:
        http = Http(server.url.replace("127.0.0.1", NAME), timeout=TIMEOUT, retries=0)
        try:
            assert http.call("GET", "/checkpoint").body == b"hello"
        finally:
            http.close()
    assert asked == [NAME]


def test_a_slow_name_lookup_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow() -> list[str]:
        time.sleep(3 * TIMEOUT)
        return ["127.0.0.1"]
    _resolver(monkeypatch, slow)
    # port 19: its lookup outlives the test, and callers of the same (name, port) share it
    http = Http(f"http://{NAME}:19", timeout=TIMEOUT, retries=2)
    try:
        exc, took = _timed(lambda: http.call("GET", "/checkpoint"))
    finally:
        http.close()
    assert took < TIMEOUT + SLACK, took
    assert "within 1 s" in str(exc), str(exc)


def test_an_unknown_name_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown() -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    _resolver(monkeypatch, unknown)
    http = Http(f"http://{NAME}:9", timeout=TIMEOUT, retries=0)
    try:
        exc, _ = _timed(lambda: http.call("GET", "/checkpoint"))
    finally:
        http.close()
    assert "not known" in str(exc), str(exc)


# -- TLS: the handshake is inside the deadline too --------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client
    context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    return server, client


def _over_tls(context: ssl.SSLContext, then: Handler) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        with context.wrap_socket(conn, server_side=True) as wrapped:
            read_head(wrapped)
            then(wrapped, stop)
    return handler


def test_tls_answer_through_the_deadline_transport(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with RawServer(_over_tls(server_ctx, normal), read_first=False) as server:
        url = server.url.replace("http://", "https://")
        http = Http(url, timeout=5.0, retries=0,
                    transport=DeadlineTransport(ssl_context=client_ctx))
        try:
            assert http.call("GET", "/checkpoint").body == b"hello"
        finally:
            http.close()


def test_tls_trickled_answer_is_bounded(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with RawServer(_over_tls(server_ctx, trickle_head), read_first=False) as server:
        url = server.url.replace("http://", "https://")
        http = Http(url, timeout=TIMEOUT, retries=1,
                    transport=DeadlineTransport(ssl_context=client_ctx))
        try:
            _, took = _timed(lambda: http.call("GET", "/checkpoint"))
        finally:
            http.close()
    assert took < TIMEOUT + SLACK, took


def trickle_tls_record(conn: socket.socket, stop: threading.Event) -> None:
    """A TLS handshake record header announcing 16 KiB, then its bytes one at a time:
    the client's handshake waits for the record."""
    _trickle(conn, b"\x16\x03\x03\x40\x00", stop)


@pytest.mark.parametrize("handler", [trickle_tls_record, silent],
                         ids=["trickled-handshake", "silent"])
def test_tls_handshake_is_bounded(handler: Handler) -> None:
    with RawServer(handler, read_first=False) as server:
        url = server.url.replace("http://", "https://")
        http = Http(url, timeout=TIMEOUT, retries=2)
        try:
            exc, took = _timed(lambda: http.call("GET", "/checkpoint"))
        finally:
            http.close()
    assert took < TIMEOUT + SLACK, took
    assert "within 1 s" in str(exc), str(exc)


def test_tls_certificate_refused_is_not_retried(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, _ = tls
    with RawServer(_over_tls(server_ctx, normal), read_first=False) as server:
        url = server.url.replace("http://", "https://")
        http = Http(url, timeout=5.0, retries=3)  # the system's roots: refused
        try:
            exc, took = _timed(lambda: http.call("GET", "/checkpoint"))
        finally:
            http.close()
    assert str(exc).startswith(f"TLS with {url} failed"), str(exc)
    assert server.connections == 1 and took < 5.0


# -- through the CLI, as a user runs it ------------------------------------------------


def _cli(home: Path, *argv: str) -> Run:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from cli._entry import modelseal; modelseal()", *argv], cwd=REPO,
        capture_output=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_STATE_HOME": str(home)})
    run = Run(list(argv), proc.returncode, proc.stdout.decode("utf-8", "replace"),
              proc.stderr.decode("utf-8", "replace"), proc.stdout)
    assert_no_traceback(run)
    assert time.monotonic() - start < 20, "the command ran far past its --timeout"
    return run


@pytest.fixture(scope="module")
def log_vkey() -> str:
    return LogKey.generate("deadline.example/log").vkey


def test_cli_checkpoint_against_a_trickling_server(log_vkey: str, tmp_path: Path) -> None:
    with served(trickle_head) as server:
        run = _cli(tmp_path, "--server", server.url, "--log-vkey", log_vkey, "--timeout", "1",
                   "--client-state", f"{tmp_path}/state.json", "checkpoint")
    assert run.code == 4, run
    assert "did not answer" in run.err and "within 1 s" in run.err, run.err
    _one_error_line(run.err)


def _one_error_line(err: str) -> None:
    lines = err.splitlines()
    assert lines[0].startswith("error: ") and len(lines[0]) < 200, err
    assert all(line.startswith("hint: ") for line in lines[1:]), err


def test_cli_monitor_against_a_trickling_server(log_vkey: str, tmp_path: Path) -> None:
    with served(trickle_head) as server:
        run = _cli(tmp_path, "monitor", server.url, "--key", log_vkey, "--timeout", "1",
                   "--state", f"{tmp_path}/monitor.json")
    assert run.code == 4, run
    assert "did not answer" in run.err and "within 1 s" in run.err, run.err
    _one_error_line(run.err)


# -- a streamed body through Http.paced: a pace, not a whole-transfer bound -------------------


@pytest.mark.parametrize("retries", [0, 2])
def test_paced_body_ends_a_trickle(retries: int) -> None:
    """A body trickled a byte a TICK never brings STREAM_PACE bytes in a window: the
    transfer ends (retried as a transport error, then ServerUnavailableError)."""
    http_box: list[Http] = []

    def read(resp: httpx.Response) -> int:
        return sum(len(c) for c in http_box[0].paced(resp))

    with served(trickle_body) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=retries)
        http.sleep = lambda s: None  # no backoff: the bound is what the pace gives
        http_box.append(http)
        try:
            exc, took = _timed(lambda: http.stream("GET", "/bundle", read))
        finally:
            http.close()
    assert took < (retries + 1) * (2 * TIMEOUT) + SLACK, took
    assert "127.0.0.1" in str(exc)


def _fast_body(total: int, piece: int, gap: float) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(HEAD + f"Content-Length: {total}\r\nConnection: close\r\n\r\n".encode())
        sent = 0
        while sent < total and not stop.is_set():
            n = min(piece, total - sent)
            conn.sendall(b"y" * n)
            sent += n
            stop.wait(gap)
    return handler


def test_paced_body_longer_than_the_timeout_at_a_fair_pace_is_read_whole() -> None:
    """A body that takes several timeouts in all, but brings STREAM_PACE in each, is read
    whole: the bound is a pace, not a limit on the transfer."""
    total = 6 * STREAM_PACE
    got: list[int] = []
    with served(_fast_body(total, STREAM_PACE // 2, 0.4 * TIMEOUT)) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            start = time.monotonic()
            got.append(http.stream("GET", "/bundle",
                                   lambda resp: sum(len(c) for c in http.paced(resp))))
            took = time.monotonic() - start
        finally:
            http.close()
    assert got == [total]
    assert took > 2 * TIMEOUT  # it did last longer than the timeout


def test_paced_small_body_is_read() -> None:
    with served(normal) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            body = http.stream("GET", "/x", lambda resp: b"".join(http.paced(resp)))
        finally:
            http.close()
    assert body == b"hello"
