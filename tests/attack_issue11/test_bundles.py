"""GET /bundle and GET /inventory: times, sizes, streaming, disconnects, clients that
never read (specs/api.md §5, specs/bundle.md)."""
from __future__ import annotations

import socket
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

import verifier as v
from tests import server_support

from .common import ThreadServer, World, assert_problem, open_reader_txns


# the shared served-world fixture (tests/server_support.py; pytest finds it by this name)
w = server_support.w


def _z(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def test_bundle_arguments(w: World) -> None:
    n = w.led.size
    now = datetime.now(timezone.utc)
    # future, size 0, past the end, trusted > size, a time without zone, garbage
    for q, status, name in (
        (f"at={_z(now + timedelta(hours=1))}", 400, "ArgumentError"),
        ("size=0", 400, "ArgumentError"),
        (f"size={n + 1}", 400, "ArgumentError"),
        (f"trusted={n + 1}", 400, "ArgumentError"),
        ("size=2&trusted=3", 400, "ArgumentError"),
        ("at=2026-01-01T00:00:00", 400, "MalformedInputError"),
        ("at=yesterday", 400, "MalformedInputError"),
        ("at=1969-12-31", 400, "ArgumentError"),
        ("size=01", 400, "MalformedInputError"),
        ("size=-1", 400, "MalformedInputError"),
        ("size=99999999999999999999", 400, "ArgumentError"),
        ("size=1&size=1", 400, "MalformedInputError"),
        ("sizes=1", 400, "MalformedInputError"),
    ):
        assert_problem(w.signed_get("/bundle?" + q), status, name)
    # before genesis: an empty inventory that verifies
    r = w.signed_get("/bundle?at=2000-01-01")
    assert r.status_code == 200
    assert v.verify_bundle(r.content, [w.log_key.key]).size == 0
    # an offset (percent-encoded +), a bare date of yesterday, trusted = size
    past = now - timedelta(days=1)
    off = past.astimezone(timezone(timedelta(hours=2))).isoformat().replace("+", "%2B")
    for q in (f"at={off}", f"at={(date.today() - timedelta(days=1)).isoformat()}",
              f"trusted={n}", f"size={n}&trusted=1"):
        r = w.signed_get("/bundle?" + q)
        assert r.status_code == 200, (q, r.text)
        v.verify_bundle(r.content, [w.log_key.key])


def test_the_bundle_is_the_export(w: World) -> None:
    n = w.led.size
    r = w.signed_get(f"/bundle?size={n}&trusted=2")
    assert r.content == w.led.export_bundle(size=n, trusted_size=2)


def test_an_offset_written_with_a_plain_plus_is_the_offset(w: World) -> None:
    """"Times in query strings are ISO 8601 with Z or an offset". The query is decoded as
    a form (``+`` is a space), so ``?at=2026-01-01T00:00:00+02:00`` as typed is refused
    with the confusing "'2026-01-01T00:00:00 02:00' is not an ISO 8601 date or time".
    (Low: clients that encode ``+`` as ``%2B`` are fine; the message shows a time the
    user never wrote.)"""
    r = w.signed_get("/inventory?at=2026-01-01T00:00:00+02:00")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("at", [
    "0001-01-01T00:00:00%2B23:59",  # a valid ISO time, before year 1 in UTC
    "0001-01-01T00:00:00Z",
    "1900-01-01",
])
def test_inventory_at_far_past_times_is_not_a_500(w: World, at: str) -> None:
    """``/inventory?at=0001-01-01T00:00:00+23:59`` parses (parse_time only bounds the
    future), then ``iso(to_ns(at))`` overflows building the answer: 500 InternalError
    for a client's query. It should be a 400 (or the empty inventory)."""
    r = w.signed_get(f"/inventory?at={at}")
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert_problem(r, 400)
    else:
        assert r.json()["models"] == {}


def _stalled_bundle(w: World, url: str, port: int, check: bool = True) -> socket.socket:
    """A bundle request whose client reads the status line and then nothing more."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    h = w.sign("/bundle", base=url)
    req = f"GET /bundle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {val}\r\n" for k, val in h.items()) + "\r\n"
    s.sendall(req.encode())
    first = s.recv(64)
    assert first.startswith(b"HTTP/1.1 200") or not check, first
    return s


def _big(w: World, n: int) -> None:
    with w.led.batch():
        for i in range(n):
            w.led.record("m0", "evaluated", payload={"i": i, "pad": "x" * 200})


def test_a_client_that_disconnects_mid_bundle_releases_its_read_transaction(
        tmp_path: Path) -> None:
    """A client drops (RST) in the middle of a streamed bundle. The bundle's entries are
    read in one LMDB read transaction held by a suspended generator; on disconnect it is
    not closed (Starlette's iterate_in_threadpool does not close the iterator, and the
    generator sits in a reference cycle), so the read transaction and its reader slot
    stay open until the next full garbage collection: 3 of 3 still open 4 s later,
    released only by ``gc.collect()``."""
    w = World(tmp_path / "store", client=False)
    try:
        _big(w, 1500)
        with ThreadServer(w.led) as srv:
            socks = [_stalled_bundle(w, srv.url, srv.port) for _ in range(3)]
            time.sleep(0.5)
            assert open_reader_txns(w.led) <= 3  # 0: the entries are read in short transactions
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
                s.close()
            deadline = time.monotonic() + 4
            while open_reader_txns(w.led) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = open_reader_txns(w.led)
            assert left == 0, f"{left} read transactions still open 4 s after the clients left"
    finally:
        w.close()


def test_clients_that_never_read_their_bundle_do_not_take_the_server_down(
        tmp_path: Path) -> None:
    """Each stalled bundle response holds an LMDB read transaction for as long as its
    client does not read (there is no send timeout). The store allows 256 readers: with
    ~260 stalled bundles (one reader key, or slow networks), every read transaction
    fails with MDB_READERS_FULL, so GET /checkpoint (public), GET /log and POST /add (the
    receipt is read after the commit, and the writer's key lookup reads first) all
    answer 500 InternalError, for as long as the clients stay."""
    w = World(tmp_path / "store", client=False)
    try:
        _big(w, 1200)
        with ThreadServer(w.led) as srv:
            socks = []
            try:
                for _ in range(262):
                    socks.append(_stalled_bundle(w, srv.url, srv.port, check=False))
                time.sleep(1)
                with httpx.Client(base_url=srv.url, timeout=10) as c:
                    cp = c.get("/checkpoint")
                    add = c.post("/add", content=w.statement(),
                                 headers={"Content-Type": "application/json"})
            finally:
                for s in socks:
                    s.close()
        assert cp.status_code == 200, cp.text
        assert add.status_code == 201, add.text
    finally:
        w.close()
