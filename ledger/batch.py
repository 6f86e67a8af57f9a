"""A caller's batch: one write transaction for many writes and one checkpoint.

``Ledger.batch()`` makes one and yields it. It belongs to the caller: to the thread
that opened it (LMDB ties a write transaction to its thread) and, through a context
variable, to that caller's context, so the ledger's own verbs called there join it;
other threads sharing the ledger never see it, and their writes wait for it to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import lmdb

from verifier import VerifierError, VerifierKey

from ._checks import Background, Deferred
from ._verbs import Make, Prepare, Verbs
from .errors import StoreError
from .keys import ActorKey, LogKey
from ._sodium import sodium_check
from .statements import Signed
from ._writer import Appender

if TYPE_CHECKING:
    from .ledger import Ledger


class Batch(Verbs):
    """Many writes, one transaction and one checkpoint. The writes are acknowledged
    when the ``with ledger.batch()`` block exits without an exception; if it raises,
    none of them is stored. A refused write raises at its call and leaves the batch's
    other writes in place. Reads through the ledger in the same context see the
    batch's writes. Use it only in the thread that opened it."""

    def __init__(self, ledger: Ledger, log_key: LogKey, now_ns: Callable[[], int]) -> None:
        self._ledger = ledger
        self._store = ledger._store
        self._log_key = log_key
        self._clock = now_ns
        self._thread = threading.get_ident()
        self._bg = Background()  # the own-signature checks deferred to the commit
        self._own: Signed | None = None  # the statement being appended, if this process signed it
        self._done = False
        self._lock = self._store.write_lock
        try:
            self._lock.acquire(ledger.write_timeout, holder=self)
            try:
                self.txn = self._store.begin(write=True)
            except lmdb.Error as exc:
                raise self._store.error(exc) from None
            try:
                self._app = Appender(self._store, self.txn, now_ns, self._check)
            except BaseException:
                self.txn.abort()
                raise
        except BaseException:
            self._lock.release_if_mine()
            raise

    # -- what Verbs needs ---------------------------------------------------------------

    def _identity(self) -> tuple[ActorKey | None, str, str]:
        return self._ledger._identity()

    def _now_ns(self) -> int:
        return self._clock()

    @contextmanager
    def _reader(self) -> Iterator[lmdb.Transaction]:
        self._usable()
        yield self.txn

    def _check(self, key: VerifierKey, sig: bytes, data: bytes) -> bool:
        """The batch's signature strategy: a statement this process signed is checked at
        commit (decision 10); any other at once."""
        own = self._own
        if own is not None and own.sig == sig and own.data == data:
            self._bg.checks.append(Deferred(key, sig, data, own.statement.actor,
                                           own.statement.id))
            return True
        return sodium_check(key, sig, data)

    def _write(self, statement: bytes | Make, prepare: Prepare | None = None,
               at: int | None = None) -> Any:
        self._usable()
        deferred = len(self._bg.checks)
        if isinstance(statement, bytes):
            signed: bytes | Signed = statement
        else:
            if at is None:
                at = self._now_ns()  # one reading: the claim and the log's time agree
            signed = statement(at)
        self._own = signed if isinstance(signed, Signed) else None
        try:
            if prepare is not None:
                found = prepare(self._app)
                if found is not None:
                    return found
            p, _ = self._app.append(signed, at)
        except VerifierError:
            del self._bg.checks[deferred:]  # refused before anything was stored
            raise
        except lmdb.Error as exc:
            self.abort()
            raise self._store.error(exc) from None
        except BaseException:
            self.abort()
            raise
        finally:
            self._own = None
        self._bg.pump()
        return self._app.snapshot(p)

    # -- life -----------------------------------------------------------------------

    def _usable(self) -> None:
        if threading.get_ident() != self._thread:
            raise ValueError("a batch is used only by the thread that opened it")
        if self._done:
            raise StoreError("this batch has ended (committed, or aborted by an error); "
                             "nothing more can be written to it")

    def abort(self) -> None:
        """Discard every write of the batch (idempotent)."""
        try:
            if not self._done:
                self._done = True
                self.txn.abort()
        finally:
            self._lock.release_if_mine()

    def commit(self) -> None:
        """Run the deferred checks, sign the checkpoint and commit: afterwards, every
        write of the batch is stored. On any failure, nothing of it is."""
        self._usable()
        try:
            self._bg.finish()
            self._app.finish(self._log_key)
            self._done = True  # from here the lock is free to reclaim, whatever happens
            self.txn.commit()  # (a failed commit aborts the transaction)
        except lmdb.Error as exc:
            self.abort()
            raise self._store.error(exc) from None
        except BaseException:
            self.abort()
            raise
        finally:
            self._done = True
            self._lock.release_if_mine()

    @property
    def start_size(self) -> int:
        """The log's size when the batch began."""
        return self._app.start_size

    def register_group(self, *, name: str, owner: str, model_type: str = "group",
                       tier: str, purpose: str, status: str = "active",
                       metadata: dict[str, Any] | None = None,
                       members: list[str] | None = None) -> Any:
        """Register a group and add its members (in this batch)."""
        return self._group(name, owner, model_type, tier, purpose, status, metadata, members)
