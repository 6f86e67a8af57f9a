"""Group commit: many threads' writes, one synced LMDB transaction and one checkpoint.

Internal to the ledger. A caller queues its write and either becomes the *leader*
(no commit is under way) or waits. The leader takes every queued write, opens the
one write transaction, applies each write through the verifier's rules (a refused
write gets its own error and the others go on), signs one checkpoint, commits, and
only then hands each caller its own result. It repeats while writes are queued, but
gives up the lead once its own write is answered: the oldest waiting caller leads
next. A lone caller leads at once, with no thread hand-off.

Waits are bounded: a write still queued when its caller's wait ends is taken out of
the queue and the caller gets ``StoreBusyError`` (nothing stored). Once the leader
holds the transaction a write is in flight: its caller waits for the commit, whose
outcome is always delivered, also when the leader is interrupted (if the commit did
happen, each caller gets its result; if not, a ``StoreError`` saying nothing was
stored).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import StoreBusyError, StoreError

# A write's steps run inside the leader's transaction. ``Apply`` returns the caller's
# result; it raises a VerifierError to refuse the write (changing nothing), anything
# else to fail the whole group.
Apply = Callable[[Any], Any]

QUEUED, TAKEN, IN_FLIGHT, DONE, CANCELLED = range(5)
GATHER_STEP = 0.0001  # seconds
GATHER_STEPS = 10


@dataclass(eq=False)
class Write:
    """One caller's queued write and, once answered, its outcome."""

    apply: Apply
    deadline: float  # time.monotonic() by which the caller stops waiting for its turn
    state: int = QUEUED
    result: Any = None
    error: BaseException | None = None
    lead: bool = False  # set when this caller is handed the lead
    wake: _Wake = field(default_factory=lambda: _Wake())


class _Wake:
    """A one-shot wake-up for one waiting caller: a plain lock, held until ``set``.

    Lighter than ``threading.Event`` (no condition variable): the leader wakes each
    caller of a group, so this is on every write's path. ``set`` is idempotent."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            try:
                self._lock.release()
            except RuntimeError:  # a racing set() released it first
                pass

    def wait(self, timeout: float) -> bool:
        """True once ``set`` was called (at once if it was), False after ``timeout``."""
        if self._lock.acquire(timeout=timeout):
            self._lock.release()  # stays set for any later wait
            return True
        return False


class Status:
    """What ``run_group`` tells the committer: set ``committed`` as soon as the commit
    is known to have happened (also when an interrupt came right after it)."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False


RunGroup = Callable[[Callable[[], list[Write]], float, Status], BaseException | None]


class GroupCommitter:
    """Collects concurrent writes into group commits (see the module docstring).

    ``run_group(take, deadline, status)`` does the store work for one group: it waits
    for the store at most until ``deadline`` (time.monotonic()), opens the write
    transaction, calls ``take()`` for the writes whose callers still wait, sets
    ``result`` or ``error`` on each, commits and sets ``status.committed``. It returns
    None, or an interrupt that arrived after the commit (raised once the results are
    delivered); it raises only if nothing of the group was stored.
    """

    def __init__(self, run_group: RunGroup, *, max_group: int = 1024) -> None:
        self._run_group = run_group
        self._max_group = max_group
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: deque[Write] = deque()
        self._leading = False
        self._closed = False
        self._last_group = 0  # how many writes the last group answered

    def close(self, timeout: float) -> bool:
        """Refuse new writes, then wait (at most ``timeout`` seconds) until the writes
        already queued are committed. True if none is left."""
        with self._lock:
            self._closed = True
            return self._idle.wait_for(lambda: not self._leading and not self._queue,
                                       timeout=timeout)

    def submit(self, apply: Apply, timeout: float) -> Any:
        """Run ``apply`` in a group commit; return its result once committed.

        Raises what ``apply`` raised for this write, StoreBusyError if the store stayed
        busy for ``timeout`` seconds (nothing stored), or StoreError if the group failed
        (nothing stored). An interrupt while waiting takes the write out of the queue.
        """
        w = Write(apply, time.monotonic() + timeout)
        with self._lock:
            if self._closed:
                raise ValueError("the ledger is closed")
            self._queue.append(w)
            if not self._leading:
                self._leading = True
                w.lead = True
        if not w.lead:
            try:
                self._wait(w, timeout)
            except BaseException:
                self._abandon(w)
                raise
        if w.lead and w.state == QUEUED:
            self._lead(w)
        if w.error is not None:
            raise w.error
        return w.result

    def submit_many(self, applies: list[Apply], timeout: float
                    ) -> list[tuple[Any, BaseException | None]]:
        """Run each of ``applies``, queued at once and in order, in group commits; return
        each one's (result, error) once every one is answered: what ``submit`` would
        return or raise for it. One thread's writes share groups with each other and
        with other threads' writes; an interrupt takes those still queued out of the
        queue (never stored) and leaves those in flight to their commit."""
        deadline = time.monotonic() + timeout
        ws = [Write(apply, deadline) for apply in applies]
        if not ws:
            return []
        with self._lock:
            if self._closed:
                raise ValueError("the ledger is closed")
            self._queue.extend(ws)
            if not self._leading:
                self._leading = True
                ws[0].lead = True
        try:
            for w in ws:
                if w.state == DONE:
                    continue
                if not w.lead:
                    try:
                        self._wait(w, timeout)
                    except StoreBusyError as exc:  # this one waited too long: never stored
                        w.error = exc
                        continue
                if w.lead and w.state == QUEUED:
                    self._lead(w)
        except BaseException:
            for w in ws:
                self._abandon(w)
            raise
        return [(w.result, w.error) for w in ws]

    def _wait(self, w: Write, timeout: float) -> None:
        """Wait until ``w`` is answered or handed the lead; bounded while it is queued."""
        while True:
            w.wake.wait(max(0.0, min(1.0, w.deadline - time.monotonic())))
            with self._lock:
                if w.state == DONE or (w.lead and w.state == QUEUED):
                    return
                if w.state == QUEUED and time.monotonic() >= w.deadline:
                    self._queue.remove(w)
                    w.state = CANCELLED
                    self._idle.notify_all()
                    raise StoreBusyError(
                        f"the write waited {timeout:g} s for the store and was not stored "
                        "(another writer holds the store's write lock): try again")
                # taken by a leader, whose wait for the store is bounded: wait on

    def _abandon(self, w: Write) -> None:
        """The caller of ``w`` stopped waiting (an interrupt): if ``w`` is still queued,
        it is never stored; a lead handed to it goes on to the next write."""
        with self._lock:
            if w.state != QUEUED:
                return  # taken: its group's outcome stands, though nobody reads it
            self._queue.remove(w)
            w.state = CANCELLED
            if w.lead:
                self._pass_lead()
            self._idle.notify_all()

    def _pass_lead(self) -> None:
        """Hand the lead to the oldest queued write, or end it (holding ``_lock``)."""
        nxt = self._queue[0] if self._queue else None
        if nxt is None:
            self._leading = False
            self._idle.notify_all()
        else:
            nxt.lead = True
            nxt.wake.set()

    def _lead(self, mine: Write) -> None:
        """Commit groups until ``mine`` is answered, then pass the lead on."""
        group: list[Write] = []
        status = Status()
        try:
            while mine.state not in (DONE, CANCELLED):
                self._gather()
                with self._lock:
                    group = [self._queue.popleft()
                             for _ in range(min(len(self._queue), self._max_group))]
                    for w in group:
                        w.state = TAKEN
                if not group:  # unreachable while mine is queued; never spin
                    raise StoreError("internal error: the write queue lost a write")
                self._last_group = len(group)
                status = Status()
                self._commit(group, mine.deadline, status)
        finally:
            # after an interrupt anywhere above: answer what is unanswered, by the outcome
            _deliver(group, None if status.committed else
                     StoreError("nothing stored: the commit was interrupted"))
            with self._lock:
                if mine.state == QUEUED:  # interrupted before its group: never stored later
                    self._queue.remove(mine)
                    mine.state = CANCELLED
                self._pass_lead()

    def _gather(self) -> None:
        """Before taking a group, give the callers just answered a moment to queue their
        next writes: while the queue still grows, wait in steps of GATHER_STEP seconds
        (at most GATHER_STEPS). The group is fuller, and while it is applied no caller
        is waiting to run (each store call of the leader lets such a thread run first).
        A lone caller finds the queue still and does not wait."""
        for _ in range(GATHER_STEPS):
            before = len(self._queue)
            if before <= 1 and self._last_group <= 1:
                return
            time.sleep(GATHER_STEP)
            if len(self._queue) == before:
                return

    def _take(self, group: list[Write]) -> list[Write]:
        """The writes of ``group`` whose callers still wait (a cancelled one is left
        out); from now on they are in flight and cannot be cancelled."""
        with self._lock:
            live = [w for w in group if w.state == TAKEN]
            for w in live:
                w.state = IN_FLIGHT
        return live

    def _commit(self, group: list[Write], deadline: float, status: Status) -> None:
        late: BaseException | None = None
        failure: BaseException | None = None
        try:
            late = self._run_group(lambda: self._take(group), deadline, status)
        except BaseException as exc:
            failure = exc
        finally:
            _deliver(group, None if status.committed else failure)
        if late is not None:
            raise late
        if failure is not None and not isinstance(failure, Exception):
            raise failure


def _deliver(group: list[Write], failure: BaseException | None) -> None:
    """Answer every write of ``group`` not answered yet, and wake every answered one
    (idempotent, so a second call completes one that an interrupt cut short): its own
    outcome, or ``failure`` (nothing of the group was stored)."""
    for w in group:
        if w.state == CANCELLED:
            continue
        if w.state != DONE:
            if failure is not None:
                w.result = None
                w.error = failure if w.lead else _not_stored(failure)
            elif w.state == TAKEN:  # never reached the transaction
                w.error = StoreError("nothing stored: the commit ended before this write")
            w.state = DONE
        w.wake.set()


def _not_stored(exc: BaseException) -> BaseException:
    """The error a waiting caller gets when the group it was in failed."""
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"nothing stored: the group commit this write was in failed "
                       f"({type(exc).__name__}: {exc})")
    error.__cause__ = exc
    return error
