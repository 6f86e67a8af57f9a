"""The witness's state: per log origin, the latest checkpoint it cosigned, in a small
LMDB environment of its own. Internal.

Each row is ``origin -> (size, root, note)``; ``note`` is the checkpoint text with the
log's verified signatures and the witness's cosignature. ``update`` reads a row and
writes its successor in one write transaction (a compare-and-swap: two requests never
both advance from the same row), and returns only after LMDB's synced commit: a
cosignature leaves the witness only once the state that vouches for it is on disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import lmdb
import msgspec

from ..errors import StoreBusyError, StoreError, StoreLimitError

T = TypeVar("T")

FORMAT_KEY = b"\x00format"
FORMAT = b"modelseal-witness 1"
MAP_SIZE = 256 << 20  # address space; the file holds only the pages in use
WRITE_WAIT = 10.0  # seconds a request waits for another one's write


@dataclass(frozen=True)
class Record:
    """The latest checkpoint the witness cosigned for one log."""

    size: int
    root: bytes
    note: bytes


class _Row(msgspec.Struct, array_like=True, frozen=True):
    size: int
    root: bytes
    note: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Row).decode


class WitnessState:
    """An open witness state directory (created if missing). One process opens it at a
    time for writing (``modelseal witness serve`` holds a lock file for that)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._env = lmdb.open(str(self.path), map_size=MAP_SIZE, subdir=True, sync=True,
                                  metasync=True, max_dbs=0, lock=True)
        except lmdb.Error as exc:
            raise StoreError(f"cannot open the witness state {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open the witness state {self.path}: "
                             f"{exc.strerror}") from None
        self._lock = threading.Lock()
        try:
            self._check_format()
        except BaseException:
            self._env.close()
            raise

    def _check_format(self) -> None:
        with self._env.begin(write=True) as txn:
            mark = txn.get(FORMAT_KEY)
            if mark is None:
                if txn.stat()["entries"]:
                    raise StoreError(f"{self.path} holds another LMDB database (a log store?), "
                                     "not a witness state")
                txn.put(FORMAT_KEY, FORMAT)
            elif mark != FORMAT:
                raise StoreError(f"{self.path} is a witness state of another format "
                                 f"({mark[:40]!r})")

    def close(self) -> None:
        """Close the environment (idempotent)."""
        self._env.close()

    def get(self, origin: str) -> Record | None:
        """The latest record of ``origin``, or None if the witness never cosigned for it."""
        try:
            with self._env.begin() as txn:
                return self._row(txn, origin)
        except lmdb.Error as exc:
            raise StoreError(f"cannot read the witness state: {exc}") from None

    def origins(self) -> list[str]:
        """Every origin the witness cosigned for."""
        with self._env.begin() as txn:
            return [bytes(k).decode("utf-8") for k in txn.cursor().iternext(values=False)
                    if bytes(k) != FORMAT_KEY]

    def update(self, origin: str,
               fn: Callable[[Record | None], tuple[Record | None, T]]) -> T:
        """Run ``fn`` on the record of ``origin`` inside one write transaction; store the
        record it returns (None: store nothing) and return its result once the commit is
        on disk. An exception from ``fn`` stores nothing. StoreBusyError after WRITE_WAIT
        seconds waiting for another request's write."""
        if not self._lock.acquire(timeout=WRITE_WAIT):
            raise StoreBusyError(f"the witness state stayed busy for {WRITE_WAIT:g} s")
        try:
            with self._env.begin(write=True) as txn:
                new, result = fn(self._row(txn, origin))
                if new is not None:
                    txn.put(_key(origin), _encode(_Row(new.size, new.root, new.note)))
            return result
        except lmdb.MapFullError:
            raise StoreLimitError("the witness state is full") from None
        except lmdb.Error as exc:
            raise StoreError(f"cannot write the witness state: {exc}") from None
        finally:
            self._lock.release()

    def _row(self, txn: lmdb.Transaction, origin: str) -> Record | None:
        raw = txn.get(_key(origin))
        if raw is None:
            return None
        try:
            row = _decode(raw)
        except msgspec.DecodeError:
            raise StoreError(f"the witness state's row of {origin!r} is damaged") from None
        if row.size < 0 or len(row.root) != 32:
            raise StoreError(f"the witness state's row of {origin!r} is damaged")
        return Record(row.size, row.root, row.note)


def _key(origin: str) -> bytes:
    key = origin.encode("utf-8")
    if not key or len(key) > 500 or key == FORMAT_KEY:
        raise ValueError("an origin is 1..500 bytes of UTF-8")
    return key
