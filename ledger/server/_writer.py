"""The server's write path: one thread hands every queued ``POST /add`` to the group
commit at once. Internal to the server.

A request's task queues its body and awaits a future; the writer thread takes all that
is queued, calls ``Ledger.add_many`` (their group commits), and answers the whole lot
with one wake-up of the event loop. Compared with a worker thread per request, a
request costs no thread of its own and the loop is woken once a group, not once a
write (decisions §18). Every wait is bounded; a request whose client went away is
still committed, and its answer dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from verifier import VerifierError

from ..errors import StoreBusyError, StoreError
from ..results import Receipt

log = logging.getLogger("modelseal.server")
IDLE_WAIT = 1.0  # seconds the idle thread sleeps between looks at its stop flag

# One queued write: its body, its future, and the event loop that awaits it.
_Item = tuple[bytes, "asyncio.Future[Receipt]", asyncio.AbstractEventLoop]


class Writer:
    """Queues bodies from the event loop; one daemon thread commits them.

    ``add_many(bodies)`` is ``Ledger.add_many``. ``submit`` is called on an event loop
    (each answer goes to the loop that queued it); ``stop`` from any thread. A caller
    awaits the future through ``asyncio.shield``: a write in flight counts in
    ``pending`` until it is answered."""

    def __init__(self, add_many: Callable[[list[bytes]], list[Receipt | VerifierError]]
                 ) -> None:
        self._add_many = add_many
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: list[_Item] = []
        self._thread: threading.Thread | None = None
        self._running = False  # a thread runs _run and will take what is queued
        self._stopping = False
        self.pending = 0  # writes queued or committing (changed under the lock)

    def submit(self, body: bytes) -> asyncio.Future[Receipt]:
        """Queue ``body``; the future gets its receipt or its refusal. On the loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Receipt] = loop.create_future()
        with self._lock:
            if self._stopping:
                raise _stopping()
            if not self._running:  # the first write, or the thread ended (an error)
                self._thread = threading.Thread(target=self._run, name="modelseal-writer",
                                                daemon=True)
                self._thread.start()
                self._running = True
            self._queue.append((body, fut, loop))
            self.pending += 1
            self._ready.notify()
        fut.add_done_callback(self._done)
        return fut

    def _done(self, fut: asyncio.Future[Receipt]) -> None:
        with self._lock:
            self.pending -= 1
        if not fut.cancelled():
            fut.exception()  # retrieved: an answer nobody awaits any more is not logged

    def stop(self, timeout: float) -> None:
        """Answer nothing more: wait at most ``timeout`` seconds for the thread to finish
        what it holds (what is still queued is answered with an error)."""
        with self._lock:
            self._stopping = True
            self._ready.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._stopping:
                        self._ready.wait(IDLE_WAIT)
                    items, self._queue = self._queue, []
                    stopping = self._stopping
                if items:
                    self._commit(items, stopping)
                if stopping:
                    return
        finally:  # also after an error that ends the thread: nothing queued waits for ever
            with self._lock:  # under the lock: a later submit starts a new thread
                self._running = False
                left, self._queue = self._queue, []
            if left:
                self._answer(left, [StoreError("the server's writer stopped: nothing was "
                                               "written; retry the same bytes")] * len(left))

    def _commit(self, items: list[_Item], stopping: bool) -> None:
        """Commit ``items`` and answer every one of them, whatever happens."""
        outcomes: list[Any]
        if stopping:
            outcomes = [_stopping()] * len(items)
        else:
            try:
                outcomes = list(self._add_many([body for body, _, _ in items]))
                if len(outcomes) != len(items):  # a bug: never leave a request waiting
                    raise StoreError(f"internal error: {len(outcomes)} answers for "
                                     f"{len(items)} writes")
            except BaseException as exc:  # noqa: BLE001 - every request gets an answer
                outcomes = [exc] * len(items)
                if not isinstance(exc, Exception):
                    self._answer(items, outcomes)
                    raise
        self._answer(items, outcomes)

    def _answer(self, items: list[_Item], outcomes: list[Any]) -> None:
        """Answer each item on its own loop (one wake-up a loop)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Any]]] = {}
        for item, outcome in zip(items, outcomes, strict=True):
            by_loop.setdefault(item[2], []).append((item, outcome))
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                log.warning("an event loop closed before %d writes were answered",
                            len(answers))


def _stopping() -> StoreBusyError:
    return StoreBusyError("the server is stopping: nothing was written; retry the same bytes")


def _settle(answers: list[tuple[_Item, Any]]) -> None:
    """Give each future its outcome (on its loop); one already done is skipped."""
    for (_, fut, _), outcome in answers:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
