"""``Ledger.add_many`` and ``GroupCommitter.submit_many``: many writes from one thread in
shared group commits (the server's write path, decisions §18), and the server's writer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest

import verifier as v
from ledger import Ledger, Receipt, StoreError
from ledger._commit import GroupCommitter
from ledger.errors import StoreBusyError
from ledger.server._writer import Writer
from tests import ledger_support
from tests.ledger_support import event, forged

led = ledger_support.led  # the shared pytest fixture (signer ml-pipeline, model m0)


def _verifies(led: Ledger, r: Receipt) -> None:
    cp = v.verify_tlog_proof(r.proof.to_text(), r.entry, [v.VerifierKey.parse(led.log_vkey)])
    assert cp.size >= r.index + 1 and r.entry == led.entry(r.index)


def test_each_statement_gets_its_own_outcome_in_order(led: Ledger) -> None:
    first = event(led, k=0)
    old = led.add(first)
    bodies = [event(led, k=1), b"not a statement", forged(event(led, k=2)),
              event(led, model="no_such_model"), first, event(led, k=3)]
    before = led.size
    out = led.add_many(bodies)
    assert len(out) == len(bodies)
    assert isinstance(out[0], Receipt) and out[0].created
    assert isinstance(out[1], v.MalformedInputError)
    assert isinstance(out[2], v.SignatureError)
    assert isinstance(out[3], v.RuleError)
    assert isinstance(out[4], Receipt) and not out[4].created and out[4].index == old.index
    assert isinstance(out[5], Receipt) and out[5].created
    assert led.size == before + 2  # the two new ones, nothing of the refused
    assert out[0].index < out[5].index  # queued in order
    for r in (out[0], out[4], out[5]):
        assert isinstance(r, Receipt)
        _verifies(led, r)
    assert led.audit() == led.size


def test_the_same_bytes_twice_in_one_call_are_one_entry(led: Ledger) -> None:
    body = event(led)
    before = led.size
    a, b = led.add_many([body, body])
    assert isinstance(a, Receipt) and isinstance(b, Receipt)
    assert a.index == b.index and led.size == before + 1
    assert a.created and not b.created


def test_misuse(led: Ledger) -> None:
    assert led.add_many([]) == []
    with pytest.raises(TypeError):
        led.add_many((event(led),))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        led.add_many(["text"])  # type: ignore[list-item]
    with led.batch():
        with pytest.raises(ValueError):
            led.add_many([event(led)])


def test_many_threads_mixing_add_and_add_many(led: Ledger) -> None:
    got: list[Receipt] = []
    lock = threading.Lock()

    def many(k: int) -> None:
        for j in range(5):
            out = led.add_many([event(led, t=k, j=j, n=n) for n in range(4)])
            assert all(isinstance(r, Receipt) for r in out)
            with lock:
                got.extend(r for r in out if isinstance(r, Receipt))

    def one(k: int) -> None:
        for j in range(10):
            r = led.add(event(led, t=k, j=j, single=True))
            with lock:
                got.append(r)

    threads = [threading.Thread(target=many, args=(k,)) for k in range(3)] + \
        [threading.Thread(target=one, args=(k,)) for k in range(3, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert len(got) == 3 * 5 * 4 + 3 * 10
    counts = Counter(v.parse_entry(led.entry(i)).snapshot_hash for i in range(led.size))
    assert all(counts[r.snapshot_hash] == 1 for r in got)
    assert led.audit() == led.size


def test_a_store_held_by_a_batch_makes_add_many_busy_and_writes_nothing(led: Ledger) -> None:
    led.write_timeout = 0.3
    before = led.size
    errors: list[BaseException] = []
    with led.batch():
        def other() -> None:
            try:
                led.add_many([event(led, k=1), event(led, k=2)])
            except StoreBusyError as exc:
                errors.append(exc)
        t = threading.Thread(target=other)
        t.start()
        t.join(10)
        assert not t.is_alive()
    assert len(errors) == 1 and led.size == before


# -- the committer --------------------------------------------------------------------------

def _committer(groups: list[int], sleep: float = 0.0) -> GroupCommitter:
    def run_group(take: Any, deadline: float, status: Any) -> None:
        live = take()
        groups.append(len(live))
        time.sleep(sleep)
        for w in live:
            try:
                w.result = w.apply(None)
            except v.VerifierError as exc:
                w.error = exc
        status.committed = True
    return GroupCommitter(run_group)


def test_submit_many_answers_each_in_order_and_shares_groups() -> None:
    groups: list[int] = []
    gc = _committer(groups)

    def refuse(_: Any) -> Any:
        raise v.RuleError("no")

    out = gc.submit_many([lambda _: 1, refuse, lambda _: 3], timeout=5)
    assert out[0] == (1, None) and out[2] == (3, None)
    assert out[1][0] is None and isinstance(out[1][1], v.RuleError)
    assert groups == [3]


def test_submit_many_beside_other_threads() -> None:
    groups: list[int] = []
    gc = _committer(groups, sleep=0.005)
    results: dict[str, Any] = {}

    def many(k: int) -> None:
        results[f"m{k}"] = [r for r, _ in gc.submit_many(
            [lambda _, n=n: (k, n) for n in range(50)], timeout=10)]

    def one(k: int) -> None:
        results[f"o{k}"] = [gc.submit(lambda _, n=n: (k, n), timeout=10) for n in range(20)]

    threads = [threading.Thread(target=many, args=(k,)) for k in range(3)] + \
        [threading.Thread(target=one, args=(k,)) for k in range(3, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    for k in range(3):
        assert results[f"m{k}"] == [(k, n) for n in range(50)]
    for k in range(3, 6):
        assert results[f"o{k}"] == [(k, n) for n in range(20)]
    assert sum(groups) == 3 * 50 + 3 * 20


def _held() -> tuple[GroupCommitter, threading.Event, list[Any], threading.Thread]:
    """A committer whose first group ("first", from another thread) waits for ``hold``;
    what its groups stored."""
    hold = threading.Event()
    stored: list[Any] = []

    def run_group(take: Any, deadline: float, status: Any) -> None:
        live = take()
        hold.wait(10)
        for w in live:
            w.result = w.apply(None)
            stored.append(w.result)
        status.committed = True

    gc = GroupCommitter(run_group)
    first = threading.Thread(target=lambda: gc.submit(lambda _: "first", timeout=10))
    first.start()
    while not gc._leading:
        time.sleep(0.001)
    return gc, hold, stored, first


def test_submit_many_gives_up_after_its_timeout_and_stores_nothing_late() -> None:
    gc, hold, stored, first = _held()
    out = gc.submit_many([lambda _: "a", lambda _: "b"], timeout=0.2)
    assert all(isinstance(e, StoreBusyError) and r is None for r, e in out)
    hold.set()
    first.join(10)
    assert stored == ["first"]
    assert gc.submit(lambda _: "after", timeout=5) == "after"


def test_submit_many_interrupted_while_queued_leaves_nothing_queued() -> None:
    gc, hold, stored, first = _held()
    real_wait = gc._wait

    def interrupted(w: Any, timeout: float) -> None:
        raise KeyboardInterrupt

    gc._wait = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        gc.submit_many([lambda _: "a", lambda _: "b"], timeout=5)
    gc._wait = real_wait  # type: ignore[method-assign]
    assert not gc._queue
    hold.set()
    first.join(10)
    assert stored == ["first"]  # the interrupted writes were never stored
    assert gc.submit(lambda _: "after", timeout=5) == "after"


# -- the server's writer --------------------------------------------------------------------

def test_writer_answers_each_request_on_its_own_loop() -> None:
    calls: list[int] = []

    def add_many(bodies: list[bytes]) -> list[Any]:
        calls.append(len(bodies))
        return [v.MalformedInputError("bad") if b == b"bad" else b.decode() for b in bodies]

    writer = Writer(add_many)  # type: ignore[arg-type]

    async def post(body: bytes) -> Any:
        try:
            return await asyncio.shield(writer.submit(body))
        except v.MalformedInputError as exc:
            return exc

    async def many() -> list[Any]:
        return await asyncio.gather(*(post(b) for b in (b"a", b"bad", b"c")))

    out = asyncio.run(many())  # one loop
    assert out[0] == "a" and isinstance(out[1], v.MalformedInputError) and out[2] == "c"
    assert asyncio.run(post(b"d")) == "d"  # another loop, the same thread of the writer
    assert writer.pending == 0
    writer.stop(5)
    assert sum(calls) == 4


def test_writer_stopping_answers_busy_and_never_hangs() -> None:
    release = threading.Event()

    def add_many(bodies: list[bytes]) -> list[Any]:
        release.wait(10)
        return [b.decode() for b in bodies]

    writer = Writer(add_many)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        first = writer.submit(b"first")  # taken by the thread, which waits in add_many
        await asyncio.sleep(0.1)
        second = writer.submit(b"second")  # queued behind it
        stopper = asyncio.get_running_loop().run_in_executor(None, writer.stop, 10)
        await asyncio.sleep(0.1)
        release.set()
        await stopper
        out: list[Any] = []
        for fut in (first, second):
            try:
                out.append(await asyncio.wait_for(asyncio.shield(fut), 10))
            except StoreBusyError as exc:
                out.append(exc)
        with pytest.raises(StoreBusyError):
            writer.submit(b"third")
        return out

    out = asyncio.run(scenario())
    assert out[0] == "first" and isinstance(out[1], StoreBusyError)
    assert writer.pending == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_writer_whose_thread_dies_answers_what_was_queued() -> None:
    def add_many(bodies: list[bytes]) -> list[Any]:
        raise SystemExit  # not an Exception: it ends the writer's thread

    writer = Writer(add_many)  # type: ignore[arg-type]

    async def post(body: bytes) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(writer.submit(body)), 10)
        except (StoreError, SystemExit) as exc:
            return exc

    first = asyncio.run(post(b"x"))
    assert isinstance(first, SystemExit)
    # queued before the dying thread looked a last time: it answers StoreError (nothing
    # written); queued after: a new thread takes it (and meets the same SystemExit)
    assert isinstance(asyncio.run(post(b"y")), (StoreError, SystemExit))
    assert isinstance(asyncio.run(post(b"z")), (StoreError, SystemExit))
    writer.stop(5)


def test_server_answers_503_when_a_write_is_not_answered_in_time(
        led: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    import ledger.server._app as app_module
    from ledger.server import build_app

    release = threading.Event()
    real = led.add_many

    def slow(bodies: list[bytes]) -> list[Any]:
        release.wait(10)
        return real(bodies)

    monkeypatch.setattr(led, "add_many", slow)
    monkeypatch.setattr(app_module, "ANSWER_MARGIN", 0.3)
    led.write_timeout = 0.2
    body = event(led, late=True)
    with TestClient(build_app(led), raise_server_exceptions=False) as client:
        r = client.post("/add", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 503 and r.json()["error"] == "Busy"
        assert "retry the same bytes" in r.json()["message"]
        release.set()
        # the write was committed meanwhile; the same bytes again get its receipt
        for _ in range(100):
            again = client.post("/add", content=body,
                                headers={"Content-Type": "application/json"})
            if again.status_code != 503:
                break
            time.sleep(0.05)
        assert again.status_code == 200, again.text
        assert again.json()["entry"]
