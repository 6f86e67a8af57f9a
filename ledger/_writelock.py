"""The process's turn to write to one store: a bounded, owner-aware lock. Internal.

LMDB lets one write transaction live per environment and makes others wait with no
bound (and a thread that asks again while it holds one waits for itself for ever).
Every write transaction this process begins on a store first takes this lock, with a
timeout, so a write in this process waits a bounded time for the others here, and a
thread that already holds a write transaction on the store (an open batch) gets a
clear ValueError instead of a deadlock. Other processes are still ordered by LMDB.
"""

from __future__ import annotations

import threading

from .errors import StoreBusyError


class WriteLock:
    """Held by the thread that has a write transaction open on the store.

    Built on an RLock only for its exact, interrupt-safe ownership (the owner is set in
    C, with the acquisition): a second acquisition by the owner is refused, never
    granted, because LMDB would wait for itself."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._holder: object | None = None  # the batch holding it, if a batch does

    def mine(self) -> bool:
        """Whether this thread holds it."""
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]

    def busy_here(self) -> bool:
        """Whether this thread holds it for a batch still open."""
        holder = self._holder
        return self.mine() and holder is not None and not getattr(holder, "_done", True)

    def acquire(self, timeout: float, holder: object | None = None) -> None:
        """Wait at most ``timeout`` seconds; StoreBusyError if the store stayed busy,
        ValueError if this thread holds it for an open batch. ``holder``: the batch
        that will hold it (None for a write that ends before its caller goes on)."""
        if self.busy_here():
            raise ValueError("this thread already has a write transaction open on this "
                             "store (a batch): write through that batch, or end it first")
        # held by something of this thread that has ended (an interrupt came between its
        # end and its release): nothing uses it, so it is released here
        self.release_if_mine()
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise StoreBusyError(f"the store stayed busy (a batch or another write held it) "
                                 f"for the {max(0.0, timeout):.3g} s this write could wait: "
                                 "nothing was stored; try again")
        self._holder = holder

    def release_if_mine(self) -> None:
        """Release it if this thread holds it (safe in any ``finally``, including after
        an interrupt that came between an acquisition and the code that tracks it)."""
        if self.mine():
            self._holder = None
            self._lock.release()
