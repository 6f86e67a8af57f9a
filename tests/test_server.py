"""Issue 11: the log server's HTTP API (specs/api.md), in process (Starlette's test
client) and as a real ``modelseal serve`` process."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from ledger.httpsig import keyid_of, sign_request
from ledger.server import build_app, check_public_url
from tests import server_support
from tests.server_support import BASE, ORIGIN, World

# the shared served-world fixture (tests/server_support.py; pytest finds it by this name)
w = server_support.w


def _error(r: httpx.Response, status: int, name: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert set(doc) == {"error", "message"} and doc["error"] == name, doc
    assert "Traceback" not in r.text


# -- writing -----------------------------------------------------------------------------

def test_add_answers_201_with_a_receipt_that_verifies(w: World) -> None:
    data = w.statement()
    r = w.post(data)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert set(doc) == {"index", "snapshot", "recorded_at", "entry", "proof"}
    entry = base64.b64decode(doc["entry"])
    p = v.parse_entry(entry)
    assert v.signed_statement_bytes(p.statement_bytes, p.key_id, p.sig) == data
    assert (p.entry.index, p.snapshot_hash) == (doc["index"], doc["snapshot"])
    cp = v.verify_tlog_proof(doc["proof"].encode(), entry, [w.log_key.key])
    assert cp.size == w.led.size and doc["index"] == w.led.size - 1
    assert doc["recorded_at"] == v.iso(p.entry.recorded_at)


def test_the_same_statement_again_is_200_with_the_same_receipt(w: World) -> None:
    data = w.statement()
    first = w.post(data)
    w.led.record("m0", "later")
    again = w.post(data)
    assert again.status_code == 200 and again.json() == first.json()


@pytest.mark.parametrize("case,status,name", [
    ("garbage", 400, "MalformedInputError"),
    ("not_json_object", 400, "MalformedInputError"),
    ("stranger", 403, "AuthorizationError"),
    ("reader", 403, "AuthorizationError"),
    ("bad_signature", 403, "SignatureError"),
    ("unknown_model", 409, "RuleError"),
    ("other_log", 409, "RuleError"),
])
def test_refused_statements_change_nothing(w: World, case: str, status: int,
                                           name: str) -> None:
    good = w.statement()
    st, st_bytes, key_id, sig = v.parse_signed_statement(good)
    data = {
        "garbage": b"\xff\x00not json",
        "not_json_object": b"[1,2,3]",
        "stranger": w.statement(ActorKey.generate("stranger")),
        "reader": w.statement(w.reader),
        "bad_signature": v.signed_statement_bytes(st_bytes, key_id, bytes([sig[0] ^ 1]) + sig[1:]),
        "unknown_model": w.statement(model="nope"),
        "other_log": sign_statement(w.writer, "other.example/log", "event", log_id="0" * 64,
                                    claimed_at=datetime.now(timezone.utc), model="m0",
                                    event_type="evaluated", payload={}),
    }[case]
    before = w.led.checkpoint()
    _error(w.post(data), status, name)
    assert w.led.checkpoint() == before


def test_body_limits_and_media_type(w: World) -> None:
    before = w.led.size
    _error(w.post(b"{" + b" " * (64 * 1024)), 413, "TooLarge")
    _error(w.post(w.statement(), "text/plain"), 415, "UnsupportedMediaType")
    _error(w.client.get("/add"), 405, "MethodNotAllowed")
    _error(w.client.put("/checkpoint"), 405, "MethodNotAllowed")
    _error(w.client.get("/nope"), 404, "NotFound")
    assert w.led.size == before


def test_a_busy_store_answers_503_with_retry_after(w: World) -> None:
    w.led.write_timeout = 0.3
    before = w.led.size
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with w.led.batch():
            held.set()
            done.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        r = w.post(w.statement())
    finally:
        done.set()
        t.join(10)
    _error(r, 503, "Busy")
    assert r.headers["retry-after"] == "1"
    assert w.led.size == before


def test_a_bug_is_a_500_without_a_traceback(w: World, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(w.led, "checkpoint", broken)
    r = w.client.get("/checkpoint")
    _error(r, 500, "InternalError")
    assert "secret internals" not in r.text
    assert "secret internals" in caplog.text  # logged on the server's side


# -- public reads ------------------------------------------------------------------------

def test_log_and_checkpoint(w: World) -> None:
    doc = w.client.get("/log").json()
    assert doc == {"origin": ORIGIN, "log_key": w.log_key.key.vkey, "log_id": w.led.log_id,
                   "size": w.led.size}
    r = w.client.get("/checkpoint")
    assert r.content == w.led.checkpoint()
    assert r.headers["content-type"].startswith("text/plain")
    v.Checkpoint.parse_note(r.content, [w.log_key.key])


def test_tiles_and_consistency(w: World) -> None:
    with w.led.batch():
        for i in range(300):
            w.led.record("m0", "evaluated", {"i": i})
    n = w.led.size
    full = w.client.get("/tile/0/000")
    assert full.status_code == 200 and full.content == w.led.tile(0, 0, 256)
    assert "immutable" in full.headers["cache-control"]
    part = w.client.get(f"/tile/0/001.p/{n - 256}")
    assert part.content == w.led.tile(0, 1, n - 256)
    _error(w.client.get(f"/tile/0/001.p/{n - 255}"), 404, "NotFound")
    _error(w.client.get("/tile/0/1"), 400, "MalformedInputError")
    _error(w.client.get("/tile/entries/000"), 400, "MalformedInputError")
    r = w.client.get("/proof/consistency?old=3")
    assert r.status_code == 200
    old_root = v.Checkpoint.parse_note(w.led.prove_inclusion(0, 3).checkpoint,
                                       [w.log_key.key]).root
    assert v.verify_add_checkpoint(r.content, [w.log_key.key], old_root).size == n
    for bad in ("old=-1", "old=x", f"old={n + 1}", "old=1&new=0", "old=01", "", "old=1&old=2",
                "old=1&other=2"):
        _error(w.client.get(f"/proof/consistency?{bad}"), 400, "MalformedInputError"
               if "x" in bad or "-" in bad or "01" in bad or bad == "" or "&o" in bad
               else "ArgumentError")


# -- protected reads ---------------------------------------------------------------------

def test_protected_reads_need_a_readers_signature(w: World) -> None:
    _error(w.client.get("/entry/0"), 401, "MissingSignatureError")
    r = w.signed_get("/entry/0")
    assert r.status_code == 200 and r.content == w.led.entry(0)
    _error(w.signed_get("/entry/0", w.writer), 403, "ForbiddenRoleError")
    assert w.signed_get("/entry/0", w.admin).status_code == 200
    _error(w.signed_get("/entry/0", ActorKey.generate("stranger")), 401, "UnknownKeyError")
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    _error(w.signed_get("/entry/0", now=old), 401, "ExpiredSignatureError")


def test_a_replayed_read_is_refused(w: World) -> None:
    url = BASE + "/entry/0"
    headers = sign_request(w.reader, keyid_of(w.reader.key), "GET", url, {}, None,
                           datetime.now(timezone.utc))
    assert w.client.get("/entry/0", headers=headers).status_code == 200
    _error(w.client.get("/entry/0", headers=headers), 401, "ReplayedNonceError")
    # a signature for one path does not open another
    _error(w.client.get("/entry/1", headers=sign_request(
        w.reader, keyid_of(w.reader.key), "GET", url, {}, None,
        datetime.now(timezone.utc))), 401, "BadSignatureError")


def test_a_revoked_reader_is_refused(w: World) -> None:
    w.led.revoke("examiner", reason="left")
    _error(w.signed_get("/entry/0"), 401, "UnknownKeyError")


def test_protected_read_contents(w: World) -> None:
    snap = w.led.record("m0", "validated", {"result": "pass"})
    doc = w.signed_get("/history/m0").json()
    assert doc["model"] == "m0"
    assert [base64.b64decode(e) for e in doc["entries"]] == \
        [w.led.entry(s.index) for s in w.led.history("m0")]
    _error(w.signed_get("/history/nope"), 404, "NotFound")
    doc = w.signed_get("/entries?start=1&count=2").json()
    assert doc["entries"] == [base64.b64encode(w.led.entry(i)).decode() for i in (1, 2)]
    _error(w.signed_get("/entries?start=0&count=0"), 400, "MalformedInputError")
    inv = w.signed_get("/inventory").json()
    assert inv["models"]["m0"]["last_event_type"] == "validated"
    assert inv["size"] == w.led.size
    before = w.signed_get("/inventory?at=2000-01-01T00:00:00Z").json()
    assert before["models"] == {}
    _error(w.signed_get("/inventory?at=2020-01-01T00:00:00"), 400, "MalformedInputError")
    proof = w.signed_get(f"/proof/inclusion?snapshot={snap.snapshot_hash}")
    v.verify_tlog_proof(proof.content, w.led.entry(snap.index), [w.log_key.key])
    _error(w.signed_get("/proof/inclusion?snapshot=" + "0" * 64), 404, "NotFound")
    _error(w.signed_get("/entry/" + "0" * 64), 404, "NotFound")
    _error(w.signed_get("/entry/99999"), 404, "NotFound")


def test_the_bundle_is_streamed_and_verifies(w: World) -> None:
    for i in range(5):
        w.led.record("m0", "evaluated", {"i": i})
    r = w.signed_get("/bundle")
    assert r.status_code == 200
    assert r.content == w.led.export_bundle()
    v.verify_bundle(r.content, [w.log_key.key])
    _error(w.signed_get(f"/bundle?size={w.led.size + 1}"), 400, "ArgumentError")


# -- a real server process -----------------------------------------------------------------

def _free_env() -> dict[str, str]:
    return {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str, subprocess.Popen[str]]]:
    world = World(tmp_path / "store")
    world.client.close()
    world.led.close()
    keyfile = world.log_key.save(tmp_path / "log.key")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "serve",
         "--store", str(tmp_path / "store"), "--log-key", str(keyfile),
         "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_free_env(),
        cwd=str(Path(__file__).resolve().parent.parent))
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving" in line, line
    url = line.rsplit(" ", 1)[1].strip()
    yield world, url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_serve_process_writes_and_stops_gracefully_on_sigterm(
        served: tuple[World, str, subprocess.Popen[str]]) -> None:
    world, url, proc = served
    with httpx.Client(base_url=url, timeout=10) as c:
        r = c.post("/add", content=world.statement(), headers={"Content-Type": "application/json"})
        assert r.status_code == 201
        assert c.get("/checkpoint").status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert proc.stderr is not None
    assert "stopped" in proc.stderr.read()
    with Ledger.open(world.path) as led:
        assert led.size == 5 and led.audit() == 5


def _raw(url: str, data: bytes, timeout: float = 10) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return out


def test_serve_process_refuses_hostile_requests(
        served: tuple[World, str, subprocess.Popen[str]]) -> None:
    world, url, proc = served
    huge = b"GET /log HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert _raw(url, huge).startswith(b"HTTP/1.1 431 ")
    assert _raw(url, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # slowloris: a head that never ends is cut off after the head timeout
    t0 = time.monotonic()
    out = _raw(url, b"GET /log HTTP/1.1\r\nHost: x\r\n", timeout=20)
    assert out.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 15
    # a body that never arrives
    t0 = time.monotonic()
    out = _raw(url, b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 100\r\n\r\n{", timeout=20)
    assert b" 408 " in out.split(b"\r\n")[0] and time.monotonic() - t0 < 15
    # the server still answers, and nothing was written
    with httpx.Client(base_url=url, timeout=10) as c:
        assert c.get("/log").json()["size"] == 4
    del world, proc


def test_served_connections_have_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on connections accepted from an IPPROTO_TCP socket;
    without it each keep-alive answer after the first waited ~40 ms (delayed ACK)."""
    import asyncio

    from ledger.server import listen

    async def accepted_nodelay() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                got.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = listen("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(got, 10)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_public_url_binds_signed_reads_to_this_server(w: World) -> None:
    client = TestClient(build_app(w.led, public_url="https://Log.Example.com/"),
                        base_url=BASE, raise_server_exceptions=False)
    now = datetime.now(timezone.utc)
    mine = sign_request(w.reader, keyid_of(w.reader.key), "GET",
                        "https://log.example.com/entry/0", {}, None, now)
    other = sign_request(w.reader, keyid_of(w.reader.key), "GET", BASE + "/entry/0", {},
                         None, now)
    assert client.get("/entry/0", headers=mine).status_code == 200
    _error(client.get("/entry/0", headers=other), 401, "BadSignatureError")
    client.close()
    for bad in ("log.example.com", "ftp://x", "https://x/path", "https://u@x", "https://x?q"):
        with pytest.raises(ValueError):
            check_public_url(bad)


def test_a_second_server_on_the_same_store_is_refused(
        served: tuple[World, str, subprocess.Popen[str]], tmp_path: Path) -> None:
    world, url, proc = served
    keyfile = tmp_path / "log.key"
    second = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "serve", "--store",
         str(world.path), "--log-key", str(keyfile), "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, env=_free_env(), timeout=60,
        cwd=str(Path(__file__).resolve().parent.parent))
    assert second.returncode == 2, second.stderr
    assert "another modelseal serve is serving" in second.stderr
    assert "Traceback" not in second.stderr
    assert proc.poll() is None  # the first one goes on
