"""Issue 10: one Ledger shared by many threads (group commit), batches that belong to
their caller, registrations decided inside the write transaction."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from ledger import ActorKey, Ledger, StoreError, sign_statement
from ledger._commit import GroupCommitter
from ledger.errors import StoreBusyError
from tests.ledger_support import ORIGIN, Keys, fingerprint, register

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def shared(tmp_path: Path) -> Any:
    """A ledger on the real clock (callers read it from many threads), a writer key as
    signer, and three models."""
    keys = Keys()
    led = Ledger.create(tmp_path / "store", origin=ORIGIN, log_key=keys.log, admin=keys.admin)
    pipe = ActorKey.generate("ml-pipeline")
    led.grant(pipe.vkey, role="writer")
    led.signer = pipe
    for m in ("m0", "m1", "m2"):
        register(led, m)
    yield led
    led.close()


def _run(threads: list[threading.Thread], timeout: float = 60) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"


def _present_once(led: Ledger, snaps: list[str]) -> None:
    """Every acknowledged snapshot is in the log exactly once, at its own index."""
    all_snaps = Counter(v.parse_entry(led.entry(i)).snapshot_hash for i in range(led.size))
    for h in snaps:
        assert all_snaps[h] == 1, h
        assert v.parse_entry(led.entry(h)).snapshot_hash == h


# -- what was seen ---------------------------------------------------------------------

def test_seen_a_plain_write_in_another_thread_does_not_join_a_batch(shared: Ledger) -> None:
    """Thread A opens a batch; thread B's record() must not join it: B returns only after
    its own commit, and A's abort does not take B's write with it."""
    in_batch, b_called = threading.Event(), threading.Event()
    got: dict[str, Any] = {}
    start = shared.size

    def a() -> None:
        try:
            with shared.batch():
                shared.record("m0", "a_write")
                in_batch.set()
                b_called.wait(10)
                time.sleep(0.2)  # B is now waiting for the store, not inside A's batch
                raise RuntimeError("abort the batch")
        except RuntimeError:
            got["a"] = "aborted"

    def b() -> None:
        in_batch.wait(10)
        b_called.set()
        got["b"] = shared.record("m1", "b_write").snapshot_hash

    _run([threading.Thread(target=a), threading.Thread(target=b)])
    assert got["a"] == "aborted"
    assert shared.size == start + 1
    _present_once(shared, [got["b"]])
    assert [s.event_type for s in shared.history("m0")] == ["registered"]
    assert shared.audit() == shared.size


def test_seen_a_batch_object_refuses_another_thread(shared: Ledger) -> None:
    errors: list[BaseException] = []
    with shared.batch() as b:
        b.record("m0", "mine")

        def other() -> None:
            try:
                b.record("m0", "theirs")
            except ValueError as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
    assert len(errors) == 1 and "thread that opened it" in str(errors[0])
    assert [s.event_type for s in shared.history("m0")] == ["registered", "mine"]


def test_seen_same_registration_from_many_threads_returns_one_ref(shared: Ledger) -> None:
    """Same fields from 8 threads at once: one registration, every caller gets its ref
    (the existence check runs inside the write transaction)."""
    refs: list[Any] = []
    errors: list[BaseException] = []
    go = threading.Barrier(8)

    def reg() -> None:
        go.wait(10)
        try:
            refs.append(register(shared, "raced"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    _run([threading.Thread(target=reg) for _ in range(8)])
    assert errors == []
    assert len({r.snapshot.snapshot_hash for r in refs}) == 1
    assert len(shared.history("raced")) == 1


_REGISTER_CHILD = """
import sys, time
from ledger import ActorKey, Ledger, LogKey
store, log_key, key, t0 = sys.argv[1:5]
led = Ledger.open(store, log_key=LogKey.load(log_key), signer=ActorKey.load(key))
while time.time() < float(t0):
    pass
ref = led.register(name="raced", owner="risk-team", model_type="ml_model", tier="high",
                   purpose="scores raced")
print(ref.snapshot.snapshot_hash)
"""


def test_seen_same_registration_from_two_processes_returns_one_ref(tmp_path: Path) -> None:
    keys = Keys()
    with Ledger.create(tmp_path / "store", origin=ORIGIN, log_key=keys.log,
                       admin=keys.admin) as led:
        pass
    log_file = keys.log.save(tmp_path / "log.key")
    admin_file = keys.admin.save(tmp_path / "admin.key")
    for round_ in range(3):
        t0 = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, "-c", _REGISTER_CHILD, str(tmp_path / "store"),
                                   str(log_file), str(admin_file), str(t0)],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        assert outs[0][0] == outs[1][0], f"round {round_}: two refs"
    with Ledger.open(tmp_path / "store") as led:
        assert len(led.history("raced")) == 1


# -- group commit ----------------------------------------------------------------------

def test_many_threads_every_acknowledged_write_once(shared: Ledger) -> None:
    """16 threads x 60 writes: every acknowledged write present exactly once, audit
    clean, and writes were grouped (fewer checkpoints than writes)."""
    start = shared.size
    acked: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for i in range(60):
            snap = shared.record(f"m{(k + i) % 3}", "evaluated", {"k": k, "i": i})
            with lock:
                acked.append(snap.snapshot_hash)

    _run([threading.Thread(target=work, args=(k,)) for k in range(16)])
    assert len(acked) == 16 * 60 == shared.size - start
    _present_once(shared, acked)
    assert shared.audit() == shared.size
    store = shared._store
    with store.reader() as txn:
        checkpoints = txn.stat(store.db["checkpoints"])["entries"]
    assert checkpoints < shared.size, "no two writes were ever committed together"


def test_a_refused_write_does_not_sink_its_group(shared: Ledger) -> None:
    """Refused writes (unknown model) raise in their own thread; the others commit."""
    results: dict[int, Any] = {}
    go = threading.Barrier(12)

    def work(k: int) -> None:
        go.wait(10)
        try:
            results[k] = shared.record("m0" if k % 3 else "no_such_model", "evaluated",
                                       {"k": k}).snapshot_hash
        except v.RuleError as exc:
            results[k] = exc

    _run([threading.Thread(target=work, args=(k,)) for k in range(12)])
    refused = [k for k, r in results.items() if isinstance(r, v.RuleError)]
    assert sorted(refused) == [0, 3, 6, 9]
    _present_once(shared, [r for r in results.values() if isinstance(r, str)])
    assert shared.audit() == shared.size


def test_same_signed_bytes_from_many_threads_one_entry(shared: Ledger) -> None:
    assert shared.signer is not None
    signed = sign_statement(shared.signer, ORIGIN, "event", log_id=shared.log_id,
                            claimed_at=v.from_ns(time.time_ns()), model="m0",
                            event_type="evaluated", payload={})
    start = shared.size
    snaps: list[str | None] = []

    def work() -> None:
        snap = shared.submit(signed)
        snaps.append(snap.snapshot_hash if snap else None)

    _run([threading.Thread(target=work) for _ in range(8)])
    assert shared.size == start + 1
    assert len(set(snaps)) == 1 and snaps[0] is not None


def test_a_bad_signature_in_a_group_is_refused_alone(shared: Ledger) -> None:
    assert shared.signer is not None
    good = sign_statement(shared.signer, ORIGIN, "event", log_id=shared.log_id,
                          claimed_at=v.from_ns(time.time_ns()), model="m0",
                          event_type="evaluated", payload={})
    st, st_bytes, key_id, sig = v.parse_signed_statement(good)
    forged = v.signed_statement_bytes(st_bytes, key_id, bytes([sig[0] ^ 1]) + sig[1:])
    results: list[Any] = []
    go = threading.Barrier(6)

    def work(k: int) -> None:
        go.wait(10)
        try:
            results.append(shared.submit(forged) if k == 0 else shared.record("m1", "ok"))
        except v.SignatureError as exc:
            results.append(exc)

    before = shared.size
    _run([threading.Thread(target=work, args=(k,)) for k in range(6)])
    assert sum(isinstance(r, v.SignatureError) for r in results) == 1
    assert shared.size == before + 5
    assert shared.audit() == shared.size


def test_a_queued_write_gives_up_after_its_timeout(shared: Ledger) -> None:
    """While a batch holds the store, another thread's write waits at most the
    ledger's write_timeout, then raises StoreBusyError and is never stored."""
    shared.write_timeout = 0.5
    errors: list[BaseException] = []
    before = shared.size
    with shared.batch():
        def other() -> None:
            try:
                shared.record("m1", "late")
            except StoreBusyError as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t0 = time.monotonic()
        t.start()
        t.join(10)
        waited = time.monotonic() - t0
    assert len(errors) == 1 and "stored" in str(errors[0])
    assert waited < 5
    time.sleep(0.2)
    assert shared.size == before
    assert [s.event_type for s in shared.history("m1")] == ["registered"]


def test_a_batch_in_one_thread_does_not_block_readers(shared: Ledger) -> None:
    seen: list[int] = []
    with shared.batch():
        shared.record("m0", "in_batch")

        def read() -> None:
            seen.append(shared.size)
            seen.append(len(shared.inventory_at()))

        t = threading.Thread(target=read)
        t.start()
        t.join(5)
        assert not t.is_alive()
        inside = shared.size
    assert seen[0] == inside - 1  # the other thread sees the committed log only
    assert seen[1] == 3


def test_closed_ledger_refuses_writes(shared: Ledger, tmp_path: Path) -> None:
    shared.close()
    with pytest.raises((ValueError, StoreError)):
        shared.record("m0", "after_close")


# -- the committer alone -----------------------------------------------------------------

def test_committer_delivers_each_result_and_groups() -> None:
    groups: list[int] = []

    def run_group(take: Any, deadline: float, status: Any) -> None:
        live = take()
        groups.append(len(live))
        time.sleep(0.01)
        for w in live:
            w.result = w.apply(None)
        status.committed = True

    gc = GroupCommitter(run_group)
    out: dict[int, Any] = {}
    go = threading.Barrier(20)

    def work(k: int) -> None:
        go.wait(10)
        out[k] = gc.submit(lambda _: k * 10, timeout=10)

    _run([threading.Thread(target=work, args=(k,)) for k in range(20)])
    assert out == {k: k * 10 for k in range(20)}
    assert sum(groups) == 20 and max(groups) > 1


def test_committer_interrupt_in_the_leader_answers_every_waiter() -> None:
    """An interrupt (KeyboardInterrupt) in the leader's commit: the leader sees it, every
    waiter gets StoreError (nothing stored), and the next write works."""
    calls = [0]
    started = threading.Event()

    def run_group(take: Any, deadline: float, status: Any) -> None:
        calls[0] += 1
        live = take()
        if calls[0] == 1:
            started.set()
            time.sleep(0.3)  # the others queue meanwhile
            raise KeyboardInterrupt
        for w in live:
            w.result = w.apply(None)
        status.committed = True

    gc = GroupCommitter(run_group)
    got: dict[str, Any] = {}

    def leader() -> None:
        try:
            gc.submit(lambda _: "leader", timeout=10)
        except KeyboardInterrupt:
            got["leader"] = "interrupted"

    def follower(k: int) -> None:
        started.wait(10)
        try:
            got[f"f{k}"] = gc.submit(lambda _: k, timeout=10)
        except StoreError as exc:
            got[f"f{k}"] = exc

    _run([threading.Thread(target=leader)] +
         [threading.Thread(target=follower, args=(k,)) for k in range(4)])
    assert got["leader"] == "interrupted"
    # the followers queued during the interrupted group were committed by the next leader
    assert all(got[f"f{k}"] == k for k in range(4)), got
    assert gc.submit(lambda _: "after", timeout=5) == "after"


# -- work done in the caller's thread before queueing --------------------------------------

def _queued(led: Ledger, limit: float = 10) -> None:
    """Wait until a write is in the ledger's group commit (made and signed, queued or
    taken by its leader, who waits for the store)."""
    end = time.monotonic() + limit
    while not led._committer._leading:
        assert time.monotonic() < end, "the write never queued"
        time.sleep(0.005)


def test_a_write_made_before_it_queued_is_made_afresh_when_too_old(tmp_path: Path) -> None:
    """A write is signed (its claim read) before it queues. If it then waits past the
    log's claim_window (here 0: any wait), the leader makes it again at its turn, so it
    is stored, claim and record agreeing, instead of being refused."""
    keys = Keys()
    led = Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                        claim_window=timedelta(0))
    led.signer = keys.admin
    register(led, "m0")
    got: dict[str, Any] = {}

    def late() -> None:
        try:
            got["snap"] = led.record("m0", "waited")
        except BaseException as exc:  # noqa: BLE001 - reported below
            got["error"] = exc

    with led.batch():
        t = threading.Thread(target=late)
        t.start()
        _queued(led)  # its claim is read and signed; now the log moves on past it
        time.sleep(0.01)
        first = led.record("m0", "meanwhile")
    t.join(10)
    assert "error" not in got, got.get("error")
    snap = got["snap"]
    assert snap.claimed_at == snap.timestamp > first.timestamp
    assert led.audit() == led.size
    led.close()


def test_a_key_revoked_after_the_callers_check_is_refused(tmp_path: Path) -> None:
    """The caller's thread checks a submitted statement's signature against the key the
    keyring grants then; that is a hint only. Revoked before the statement's turn, it is
    refused by the rules, and nothing is stored."""
    keys = Keys()
    led = Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin)
    led.signer = keys.admin
    register(led, "m0")
    x = ActorKey.generate("pipeline-x")
    led.grant(x.vkey, role="writer")
    signed = sign_statement(x, ORIGIN, "event", log_id=led.log_id,
                            claimed_at=v.from_ns(time.time_ns()), model="m0",
                            event_type="evaluated", payload={})
    assert led._granted_key("pipeline-x") == x.public_bytes
    got: dict[str, Any] = {}

    def submit() -> None:
        try:
            got["snap"] = led.submit(signed)
        except BaseException as exc:  # noqa: BLE001 - reported below
            got["error"] = exc

    before = led.size
    with led.batch():
        t = threading.Thread(target=submit)
        t.start()
        _queued(led)  # checked against x's key, now waiting for the store
        led.revoke("pipeline-x", reason="left the team")
    t.join(10)
    assert isinstance(got.get("error"), v.AuthorizationError), got
    assert led.size == before + 1  # the revoke only
    assert led._granted_key("pipeline-x") is None
    assert led.audit() == led.size
    led.close()


def test_a_check_done_by_the_caller_counts_for_those_bytes_only() -> None:
    """The group's signature strategy skips a check only for the exact (key, signature,
    bytes) the caller's thread verified; anything else is deferred to the group's run."""
    from ledger._commit import Write
    from ledger.ledger import _GroupCheck

    key = ActorKey.generate("a").key
    check = _GroupCheck()
    w = Write(lambda _: None, time.monotonic() + 1)
    check.start(w)
    check.statement = v.parse_signed_statement(sign_statement(
        ActorKey.generate("a"), ORIGIN, "event", log_id="0" * 64,
        claimed_at=v.from_ns(time.time_ns()), model="m", event_type="e", payload={}))[0]
    check.verified = (key.public_key, b"s" * 64, b"data")
    assert check(key, b"s" * 64, b"data") is True and check.deferred == []
    for k, sig, data in [(key, b"s" * 64, b"datA"), (key, b"t" * 64, b"data"),
                         (ActorKey.generate("a").key, b"s" * 64, b"data")]:
        assert check(k, sig, data) is True  # deferred: answered by the group's run
    assert len(check.deferred) == 3
    check.start(w)
    assert check.verified is None  # a new write starts with nothing checked
