"""A batch: one write transaction for many writes and one checkpoint at the
end. If the map fills, the transaction is restarted and the batch's writes
replayed with the times they were given, so what was returned stays true."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lmdb

from verifier import VerifierError

from .errors import StoreError
from .keys import LogKey
from .sigcheck import BatchChecks, CheckHelper
from .statements import Signed
from .store import Store
from .writer import Appender


class Batch:
    """One open write transaction for many writes; replays them if the map must grow."""

    def __init__(self, store: Store, now_ns: Callable[[], int],
                 helper: CheckHelper | None = None) -> None:
        self.store, self.now_ns, self.helper = store, now_ns, helper
        self.items: list[tuple[bytes | Signed, int]] = []
        self.broken = False
        self._begin()

    def _abort(self) -> None:
        if not self.broken:
            self.broken = True
            self.txn.abort()
            self.checks.abandon()

    def _begin(self) -> None:
        self.txn = self.store.begin(write=True)
        self.checks = BatchChecks(self.helper)
        self.app = Appender(self.store, self.txn, self.now_ns, pending=self.checks)

    def _regrow(self) -> None:
        start = self.app.start_size
        self.txn.abort()
        self.checks.abandon()
        self.store._grow()
        self._begin()
        if self.app.start_size != start:
            # Another process appended while no transaction was open (LMDB grows the map
            # only then): replayed, every write of the batch would get another index and
            # hash than the snapshot already returned for it. Store none of it.
            self._abort()
            raise StoreError("the map had to grow during this batch and another writer "
                             "appended meanwhile; nothing of the batch was stored: run it again")
        for signed, at in self.items:
            self.app.append(signed, recorded_at=at)

    def append(self, signed: bytes | Signed, at: int | None = None) -> Any:
        """Check and append one statement (at the log's time ``at`` if given)."""
        if self.broken:
            raise StoreError("this batch failed earlier and was aborted; nothing was stored")
        try:
            try:
                p, dup = self.app.append(signed, at)
            except lmdb.MapFullError:
                self._regrow()
                p, dup = self.app.append(signed, at)
        except (VerifierError, ValueError, TypeError):
            raise  # a refusal: raised before anything of this write was stored
        except lmdb.Error as exc:
            self._abort()
            raise self.store.error(exc) from None
        except BaseException:
            self._abort()
            raise
        if not dup:
            self.items.append((signed, p.entry.recorded_at))
        self.checks.pump()
        return p

    def commit(self, log_key: LogKey) -> None:
        try:
            self.checks.finish()
        except BaseException:
            self._abort()
            raise
        try:
            try:
                self.app.finish(log_key)
                self.txn.commit()
            except lmdb.MapFullError:
                self._regrow()
                self.app.finish(log_key)
                self.txn.commit()
        except lmdb.Error as exc:
            self._abort()
            raise self.store.error(exc) from None
