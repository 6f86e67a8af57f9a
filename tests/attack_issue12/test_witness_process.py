"""A real `modelseal witness serve` process: two forks of one log racing it while it is
killed (SIGKILL) at random moments, and a client that sends its body too slowly."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import httpx

from ledger.keys import WitnessSigner
from tests import reference as ref
from tests.test_witness import _start
from tests.witness_support import FakeLog
from verifier.cosignature import verify_cosignatures


def test_two_forks_racing_a_witness_killed_at_random_never_both_get_cosigned(
        tmp_path: Path) -> None:
    """Two clients, each with its own history of one log (same key, a shared prefix of 2
    leaves), race the witness; it is SIGKILLed and restarted. Every size the witness
    cosigned (200) belongs to one history only."""
    signer = WitnessSigner.generate("witness.example/race")
    keyfile = signer.save(tmp_path / "w.key")
    store = tmp_path / "s"
    a = FakeLog(tag=b"a")
    b = FakeLog(key=a.key, tag=b"b")
    a.grow(2)
    b.leaves = list(a.leaves)
    cosigned: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()
    rng = random.Random(12)

    errors: list[BaseException] = []

    def client(name: str, fork: FakeLog, url: str, stop: float) -> None:
        try:
            _client(name, fork, url, stop)
        except BaseException as exc:  # reported by the test below, not lost in the thread
            errors.append(exc)

    def _client(name: str, fork: FakeLog, url: str, stop: float) -> None:
        have = 0
        with httpx.Client(base_url=url, timeout=5) as c:
            while time.monotonic() < stop:
                with lock:
                    fork.grow(rng.randint(1, 3))
                    body = fork.body(have) if have <= len(fork.leaves) else None
                    size, root = len(fork.leaves), ref.mth(fork.leaves)
                if body is None:
                    return
                try:
                    r = c.post("/add-checkpoint", content=body)
                except httpx.HTTPError:
                    return
                if r.status_code == 409:
                    have = int(r.text)
                    continue
                if r.status_code == 200:
                    assert verify_cosignatures(fork.note(size) + r.content,
                                               [signer.witness_key])
                    with lock:
                        cosigned.append((name, size, root))
                    have = size
                elif r.status_code == 422:
                    return  # this history lost the race: the witness holds the other
                else:
                    raise AssertionError(r.text)

    deadline = time.monotonic() + 40
    for round_ in range(3):
        proc, url = _start(store, keyfile, a.key.vkey)
        stop = min(deadline, time.monotonic() + 1.0 + 0.4 * round_)
        killer = threading.Timer(0.3 + rng.random(), proc.kill)
        killer.start()
        try:
            threads = [threading.Thread(target=client, args=(n, f, url, stop))
                       for n, f in (("a", a), ("b", b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        finally:
            killer.cancel()
            proc.kill()
            proc.wait(10)
    assert not errors, errors
    assert cosigned, "the witness cosigned nothing"
    winners = {name for name, size, _ in cosigned if size > 2}
    assert len(winners) <= 1, winners
    # every cosigned (size, root) is a prefix of the winner's history
    history = {"a": a, "b": b}[next(iter(winners))] if winners else a
    for _, size, root in cosigned:
        assert root == ref.mth(history.leaves[:size])


def test_a_body_that_trickles_in_is_cut_off(tmp_path: Path) -> None:
    """Content-Length promised, a few bytes sent, then nothing: 408 within the body
    timeout (5 s), the connection closed; the witness serves the next client."""
    signer = WitnessSigner.generate("witness.example/slow")
    keyfile = signer.save(tmp_path / "w.key")
    log = FakeLog()
    log.grow(3)
    proc, url = _start(tmp_path / "s", keyfile, log.key.vkey)
    try:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=15) as s:
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 500\r\n"
                      b"\r\nold 0\n")
            start = time.monotonic()
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            elapsed = time.monotonic() - start
        assert got.startswith(b"HTTP/1.1 408"), got[:80]
        assert elapsed < 10
        r = httpx.post(url + "/add-checkpoint", content=log.body(0), timeout=10)
        assert r.status_code == 200
    finally:
        proc.kill()
        proc.wait(10)
