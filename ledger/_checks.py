"""Signature checks a batch defers to its commit, run on threads. Internal.

In a batch, the signatures of statements the ledger signed itself are not checked
at each write (decision 10): each check is recorded, and at commit all of them run
at once on a few threads (libsodium releases the GIL, so they use every core) while
the committing thread takes its share. The checks fail closed: a check that fails
raises ``SignatureError`` naming its statement and the batch stores nothing; a
check that a worker has not answered within the bound is run in the committing
thread. Each run keeps its results in its own lists, so an interrupted run leaves
nothing that a later batch could read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from functools import partial
from typing import NamedTuple

from verifier import SignatureError, VerifierKey

from ._sodium import sodium_verify

MIN_PER_THREAD = 64  # below this, a thread costs more than it saves
CPUS = min(os.cpu_count() or 1, 4)  # read once: os.cpu_count() costs about 60 µs here
WAIT = 30.0  # seconds a run waits for the workers before checking the rest itself

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """The process's check threads (made on first need; the threads start lazily)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=CPUS,
                                       thread_name_prefix="modelseal-sigcheck")
        return _pool


class Deferred(NamedTuple):
    """One deferred check: the granted key, the signature, the exact signed bytes."""

    key: VerifierKey
    sig: bytes
    data: bytes
    actor: str
    statement_id: str

    def ok(self) -> bool:
        """True if the signature verifies (libsodium)."""
        return sodium_verify(self.key.public_key, self.sig, self.data)

    def error(self) -> SignatureError:
        """The refusal of a statement whose check failed (the rules' own words)."""
        return SignatureError(
            f"signature of {self.actor!r} on statement {self.statement_id} does not verify")


def _check_slice(checks: list[Deferred], start: int, step: int) -> list[bool]:
    return [c.ok() for c in checks[start::step]]


def _answer(fut: Future[list[bool]], redo: Callable[[], list[bool]]) -> list[bool]:
    """A worker's answers, or, if it has not answered (or raised), ``redo()`` here: the
    checks fail closed."""
    if fut.done() and not fut.cancelled() and fut.exception() is None:
        return fut.result()
    fut.cancel()
    return redo()


def _raise_first(checks: list[Deferred], oks: list[bool]) -> None:
    """Raise the SignatureError of the first check (in order) that failed."""
    for c, ok in zip(checks, oks, strict=True):
        if not ok:
            raise c.error()


def check_all(checks: list[Deferred], wait: float = WAIT) -> list[bool]:
    """Whether each check passes, in order.

    Uses up to 4 threads, this one included; waits at most ``wait`` seconds for the
    others, then checks what they have not answered here."""
    step = min(CPUS, max(1, len(checks) // MIN_PER_THREAD))
    futures: list[Future[list[bool]]] = []
    if step > 1:
        pool = _workers()
        futures = [pool.submit(_check_slice, checks, k, step) for k in range(1, step)]
    slices = [_check_slice(checks, 0, step)]
    wait_all(futures, timeout=wait)
    slices += [_answer(fut, partial(_check_slice, checks, k, step))
               for k, fut in enumerate(futures, start=1)]
    return [slices[i % step][i // step] for i in range(len(checks))]


def run_checks(checks: list[Deferred], wait: float = WAIT) -> None:
    """Raise the SignatureError of the first check (in order) that fails; else return."""
    _raise_first(checks, check_all(checks, wait))


class Background:
    """A batch's deferred checks, sent to the check threads in chunks as the batch goes
    on (py-lmdb gives up the GIL at every store call, so a worker gets it often), and
    collected at commit. Only checks of writes already accepted are sent."""

    CHUNK = 64

    def __init__(self) -> None:
        self.checks: list[Deferred] = []
        self._sent = 0
        self._futures: list[tuple[list[Deferred], Future[list[bool]]]] = []

    def pump(self) -> None:
        """Send every whole chunk not sent yet."""
        while len(self.checks) - self._sent >= self.CHUNK:
            chunk = self.checks[self._sent:self._sent + self.CHUNK]
            self._futures.append((chunk, _workers().submit(_check_slice, chunk, 0, 1)))
            self._sent += self.CHUNK

    def finish(self, wait: float = WAIT) -> None:
        """Raise the SignatureError of the first failing check (in order); else return.
        What the workers have not answered within ``wait`` is checked here."""
        wait_all([f for _, f in self._futures], timeout=wait)
        oks = [ok for chunk, fut in self._futures
               for ok in _answer(fut, partial(_check_slice, chunk, 0, 1))]
        oks += check_all(self.checks[self._sent:], wait)
        _raise_first(self.checks, oks)
