"""Interrupts (Ctrl-C) at points of the group commit and of a batch."""
from __future__ import annotations

import _thread
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from ledger import Ledger, StoreError
from ledger import _commit
from ledger.batch import Batch
from ledger.errors import StoreBusyError
from tests.attack_issue10.common import interrupt_at, line_of, new_ledger


def _snaps(led: Ledger) -> Counter[str]:
    return Counter(v.parse_entry(led.entry(i)).snapshot_hash for i in range(led.size))


def test_ctrl_c_in_a_waiting_caller_wedges_the_ledger(tmp_path: Path) -> None:
    """The main thread's write waits behind a leader; Ctrl-C arrives in the main thread
    (the usual place for it). Its Write stays queued; the leader later hands the lead to
    it, but nobody runs it: ``_leading`` stays True and every later write of every
    thread is queued behind a leader that never comes -> StoreBusyError for ever."""
    led, _, _ = new_ledger(tmp_path / "s")
    led.write_timeout = 2.0
    in_batch, end_batch = threading.Event(), threading.Event()

    def holder() -> None:  # holds the store's write lock for a while (a long batch)
        with led.batch():
            in_batch.set()
            end_batch.wait(10)

    def leader() -> None:  # becomes the leader, takes its group, waits for the lock
        led.record("m1", "leader_write")

    th = threading.Thread(target=holder)
    th.start()
    in_batch.wait(5)
    tl = threading.Thread(target=leader)
    tl.start()
    time.sleep(0.3)  # tl is the leader, blocked in write_lock.acquire inside _run_group
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        led.record("m0", "main_write")  # queued behind tl; Ctrl-C while it waits
    end_batch.set()
    th.join(5)
    tl.join(5)
    # Expected: the ledger works again. Observed: StoreBusyError after write_timeout,
    # for ever (the lead was handed to the abandoned write).
    t0 = time.monotonic()
    try:
        snap = led.record("m2", "after")
    except StoreBusyError as exc:
        pytest.fail(f"ledger wedged after one Ctrl-C in a waiting caller: {exc!r} "
                    f"after {time.monotonic() - t0:.1f}s; "
                    f"_leading={led._committer._leading}, queue={len(led._committer._queue)}")
    assert snap is not None


def _leader_group(led: Ledger, n_others: int, trace: Any) -> tuple[list[Any], list[Any]]:
    """Main thread leads one group holding its own write and ``n_others`` writes of other
    threads, with ``trace`` (an injected interrupt) installed in the main thread.
    Returns (the other threads' outcomes, the threads)."""
    c = led._committer
    orig_gather = c._gather

    def gather() -> None:  # test scaffolding: wait until the others have queued
        deadline = time.monotonic() + 5
        while len(c._queue) < n_others + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        c._gather = orig_gather  # once

    c._gather = gather  # type: ignore[method-assign]
    outcomes: list[Any] = [None] * n_others
    started = threading.Event()

    def other(i: int) -> None:
        started.wait()
        try:
            outcomes[i] = led.record("m1", f"other_{i}").snapshot_hash
        except BaseException as exc:  # noqa: BLE001
            outcomes[i] = exc

    threads = [threading.Thread(target=other, args=(i,), daemon=True) for i in range(n_others)]
    for t in threads:
        t.start()

    def release_others() -> None:
        time.sleep(0.05)
        started.set()

    threading.Thread(target=release_others).start()
    sys.settrace(trace)
    try:
        led.record("m0", "main_leader")
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    return outcomes, threads


def _nth(line: int, n: int, cond: Any = None) -> Any:
    hits = {"k": 0}

    def pred(lineno: int, frame: Any) -> bool:
        if lineno != line or (cond is not None and not cond(frame)):
            return False
        hits["k"] += 1
        return hits["k"] == n
    return pred


def test_ctrl_c_while_leader_answers_reports_stored_writes_as_not_stored(tmp_path: Path) -> None:
    """Ctrl-C reaches the leader (main thread) after the commit, while ``_deliver`` answers
    the group. Documented (decisions §15): 'if the commit happened, every caller gets its
    result and the leader's caller the interrupt'. Observed: the callers not answered yet
    get StoreError('nothing stored: the commit was interrupted') although their entries
    are in the log."""
    led, _, _ = new_ledger(tmp_path / "s")
    line = line_of(_commit._deliver, "w.state = DONE")
    trace = interrupt_at("_deliver", _nth(line, 3, lambda f: f.f_locals.get("failure") is None))
    outcomes, threads = _leader_group(led, 6, trace)
    for t in threads:
        t.join(10)
    assert trace.fired["done"]
    stored = _snaps(led)
    events = Counter(v.parse_entry(led.entry(i)).statement.event_type
                     for i in range(led.size)
                     if isinstance(v.parse_entry(led.entry(i)).statement, v.Event))
    wrong = [o for o in outcomes if isinstance(o, BaseException)]
    print("outcomes:", outcomes, "events in log:", events)
    assert not wrong, (f"{len(wrong)} callers told 'nothing stored' but the log holds "
                       f"{sum(k.startswith('other_') for k in events)} of 6 other writes: {wrong[0]!r}")


def test_ctrl_c_while_leader_answers_can_leave_a_caller_waiting_for_ever(tmp_path: Path) -> None:
    """Same, with the interrupt between ``w.state = DONE`` and ``w.wake.set()``: the
    second _deliver (the leader's finally) skips that write (DONE) and never wakes it;
    its _wait loops for ever (state is not QUEUED, so the deadline is just renewed)."""
    led, _, _ = new_ledger(tmp_path / "s")
    line = line_of(_commit._deliver, "w.wake.set()")
    trace = interrupt_at("_deliver", _nth(line, 2, lambda f: f.f_locals.get("failure") is None))
    outcomes, threads = _leader_group(led, 4, trace)
    for t in threads:
        t.join(5)
    alive = [t for t in threads if t.is_alive()]
    assert trace.fired["done"]
    assert not alive, f"{len(alive)} caller(s) still waiting 5 s after the commit (for ever)"


def test_ctrl_c_right_after_a_batch_commits_leaks_the_write_lock(tmp_path: Path) -> None:
    """Ctrl-C between ``self.txn.commit()`` and the lock's release in Batch.commit. The batch is stored (documented: 'if it came after the commit,
    leaves it whole'), but the store's write lock stays held by this thread: every later
    write in this thread raises ValueError ('already has a write transaction open'), and
    every other thread's StoreBusyError, for ever."""
    led, _, _ = new_ledger(tmp_path / "s")
    led.write_timeout = 1.0
    # the finally after the commit (the first ``self._done = True`` precedes the commit)
    line = line_of(Batch.commit, "self._lock.release_if_mine()")
    trace = interrupt_at("commit", lambda ln, f: ln == line)
    sys.settrace(trace)
    try:
        with led.batch() as b:
            b.record("m0", "in_batch")
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    assert trace.fired["done"]
    assert any(v.parse_entry(led.entry(i)).statement.event_type == "in_batch"
               for i in range(3, led.size) if isinstance(v.parse_entry(led.entry(i)).statement,
                                                         v.Event))
    errors: list[BaseException] = []
    for fn in (lambda: led.record("m1", "after_same_thread"),):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def other() -> None:
        try:
            led.record("m2", "after_other_thread")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert not errors, f"ledger unusable after the interrupted (but committed) batch: {errors!r}"
