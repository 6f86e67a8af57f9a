"""Session 20b attack: one Http shared by threads with different fates, the per-thread
deadline (a ContextVar) not leaking, and what many failed calls leave behind (file
descriptors, connections, name-lookup threads)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from ledger.client._deadline import _DEADLINE, within
from ledger.client._errors import ServerError, ServerUnavailableError
from ledger.client._http import Http
from tests.test_client_deadline import HEAD, LIFE, SLACK, TIMEOUT, RawServer, read_head

def _by_path(conn: socket.socket, stop: threading.Event) -> None:
    """/silent: says nothing; /trickle: a byte per 0.2 s; /busy: 500; else 200 'ok'.
    Keeps the connection for further requests (keep-alive)."""
    end = time.monotonic() + LIFE
    while not stop.is_set() and time.monotonic() < end:
        data = read_head(conn)
        if data is None:
            return
        path = data.split(b" ", 2)[1]
        if path.startswith(b"/silent"):
            stop.wait(LIFE)
            return
        if path.startswith(b"/trickle"):
            for byte in HEAD + b"X-Slow: " + b"x" * 5000:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                stop.wait(0.2)
            return
        if path.startswith(b"/busy"):
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            continue
        conn.sendall(HEAD + b"Content-Length: 2\r\n\r\nok")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _client_sockets(port: int) -> int:
    """Open sockets of this process connected to 127.0.0.1:``port`` (the client's side:
    the server's own accepted sockets have ``port`` as their local port)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


def test_shared_http_threads_with_different_fates() -> None:
    with RawServer(_by_path, read_first=False) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=1)
        http.sleep = lambda s: None
        outcomes: dict[str, list[object]] = {"silent": [], "trickle": [], "busy": [],
                                             "good": []}
        took: dict[str, float] = {}

        def run(kind: str, times: int) -> None:
            start = time.monotonic()
            for _ in range(times):
                try:
                    outcomes[kind].append(http.call("GET", f"/{kind}").body)
                except Exception as exc:  # noqa: BLE001
                    outcomes[kind].append(exc)
            took[kind] = time.monotonic() - start

        threads = [threading.Thread(target=run, args=(k, n)) for k, n in
                   (("silent", 1), ("trickle", 1), ("busy", 3), ("good", 30))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 3 + SLACK + 5)
        try:
            assert not any(t.is_alive() for t in threads)
        finally:
            http.close()
    assert all(isinstance(e, ServerUnavailableError) for e in outcomes["silent"]), outcomes
    assert all(isinstance(e, ServerUnavailableError) for e in outcomes["trickle"]), outcomes
    assert all(isinstance(e, ServerError) for e in outcomes["busy"]), outcomes
    assert outcomes["good"] == [b"ok"] * 30, outcomes["good"]
    assert took["silent"] < TIMEOUT + SLACK and took["trickle"] < TIMEOUT + SLACK, took
    assert took["good"] < TIMEOUT + SLACK, took  # not held up by the stuck threads


def test_a_deadline_does_not_leak_to_another_thread() -> None:
    seen: list[float | None] = []
    with within(time.monotonic() - 1):  # passed: every wait here fails at once
        t = threading.Thread(target=lambda: seen.append(_DEADLINE.get()))
        t.start()
        t.join(5)
    assert seen == [None]
    assert _DEADLINE.get() is None


def test_a_passed_deadline_outside_does_not_spoil_a_call() -> None:
    """A caller that holds a passed deadline of its own (within) and then calls: the
    call sets its own deadline, so it still succeeds."""
    with RawServer(_by_path, read_first=False) as server:
        http = Http(server.url, timeout=TIMEOUT, retries=0)
        try:
            with within(time.monotonic() - 10):
                assert http.call("GET", "/good").body == b"ok"
            assert _DEADLINE.get() is None
        finally:
            http.close()


def test_fds_after_50_timed_out_calls_on_one_http() -> None:
    with RawServer(_by_path, read_first=False) as server:
        port = int(server.url.rsplit(":", 1)[1])
        http = Http(server.url, timeout=0.1, retries=0)
        try:
            assert http.call("GET", "/good").body == b"ok"
            assert _client_sockets(port) == 1  # the counter sees the kept-alive socket
            for _ in range(50):
                with pytest.raises(ServerUnavailableError):
                    http.call("GET", "/silent")
            during = _client_sockets(port)
        finally:
            http.close()
        after = _client_sockets(port)
    assert during <= 1, during  # a timed-out connection is closed, not pooled
    assert after == 0, after


def test_fds_after_50_refused_calls_with_fresh_clients() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    before = _fds()
    for _ in range(50):
        http = Http(f"http://127.0.0.1:{port}", timeout=TIMEOUT, retries=0)
        try:
            with pytest.raises(ServerUnavailableError):
                http.call("GET", "/checkpoint")
        finally:
            http.close()
    assert _fds() <= before


def test_slow_name_lookups_do_not_pile_up_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # FINDING (low): each call to a name whose lookup hangs starts a new daemon lookup
    # thread and abandons it at the deadline; 20 calls with a 0.1 s timeout leave 20
    # threads (each holding a stack) until the resolver gives up. A monitor polling a
    # host whose resolver hangs grows a thread per poll. Concurrent lookups of one name
    # should share one thread (or be capped).
    release = threading.Event()
    real = socket.getaddrinfo

    def hang(host: str, *args: object, **kwargs: object) -> object:
        if host == "hang.invalid":
            release.wait(30)
            raise socket.gaierror("gave up")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    before = sum(t.name == "modelseal-resolve" for t in threading.enumerate())
    http = Http("http://hang.invalid:8080", timeout=0.1, retries=0)
    try:
        for _ in range(20):
            start = time.monotonic()
            with pytest.raises(ServerUnavailableError):
                http.call("GET", "/checkpoint")
            assert time.monotonic() - start < 0.1 + SLACK
        left = sum(t.name == "modelseal-resolve" for t in threading.enumerate()) - before
    finally:
        http.close()
        release.set()
    assert left <= 2, left
