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
    """Held by the thread that has a write transaction open on the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def acquire(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds; StoreBusyError if the store stayed busy,
        ValueError if this thread holds it already."""
        me = threading.get_ident()
        if self._owner == me:
            raise ValueError("this thread already has a write transaction open on this store "
                             "(a batch): write through that batch, or end it first")
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise StoreBusyError(f"the store stayed busy for {timeout:g} s (a batch or another "
                                 "write held it): nothing was stored; try again")
        self._owner = me

    def release(self) -> None:
        """Release; only the owner calls this."""
        self._owner = None
        self._lock.release()
